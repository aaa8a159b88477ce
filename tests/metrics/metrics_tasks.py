"""Task functions the metrics tests run, registered by name (process workers resolve them), and
the state each task event leads to, written out here (not read from the code under test)."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from podium.model import events as ev
from podium.registry import REGISTRY

#: The ``state`` label of ``podium_task_transitions_total`` for each task event type.
STATE_OF = {
    ev.TASK_QUEUED: "queued",
    ev.TASK_STARTED: "running",
    ev.TASK_SUCCEEDED: "succeeded",
    ev.TASK_FAILED: "failed",
    ev.TASK_RETRYING: "retrying",
    ev.TASK_SKIPPED: "skipped",
    ev.TASK_CANCELLED: "cancelled",
}

TRIES: Counter[str] = Counter()


def nap(*args: Any, seconds: float = 0.05, **kwargs: Any) -> str:
    time.sleep(seconds)
    return "ok"


def flaky(key: str) -> str:
    TRIES[key] += 1
    if TRIES[key] == 1:
        raise RuntimeError("first attempt fails")
    return "ok"


def broken() -> None:
    raise ValueError("always fails")


def burn(seconds: float = 0.2) -> int:
    """Keep one CPU busy for ``seconds`` of wall time."""
    end, n = time.perf_counter() + seconds, 0
    while time.perf_counter() < end:
        n += 1
    return n


def spin(n: int = 3_000_000) -> int:
    """A fixed amount of CPU work (however busy the machine is)."""
    return sum(i & 7 for i in range(n))


def hog(mib: int = 200) -> int:
    """Touch ``mib`` MiB of memory (every page), then let it go."""
    block = bytearray(mib << 20)
    for i in range(0, len(block), 4096):
        block[i] = 1
    return len(block)


def hog_and_fail(mib: int = 120) -> None:
    hog(mib)
    raise RuntimeError("failed after allocating")


for _fn in (nap, flaky, broken, burn, spin, hog, hog_and_fail):
    REGISTRY.register(f"metrics_tasks:{_fn.__name__}", _fn)
REGISTRY.allow("metrics_tasks")
