"""Task functions the engine tests run (registered by name, as users' tasks are)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from podium.registry import REGISTRY

_flaky_calls: dict[str, int] = {}


def source(n: int) -> list[int]:
    return list(range(1, n + 1))


def square(x: int) -> int:
    return x * x


def total(xs: list[int], k: int) -> int:
    return sum(xs) + k


def route(t: int) -> dict[str, Any]:
    return {"label": "big" if t > 10 else "small", "t": t}


def big(t: int) -> str:
    return f"big {t}"


def small(t: int) -> str:
    return f"small {t}"


def final(a: Any = None, b: Any = None) -> Any:
    return a if a is not None else b


def flaky(key: str, fail_times: int) -> int:
    n = _flaky_calls[key] = _flaky_calls.get(key, 0) + 1
    if n <= fail_times:
        raise RuntimeError(f"flake {n}")
    return n


def boom() -> None:
    raise ValueError("boom: bad input")


def sleep(seconds: float, mark: str = "", log: str = "") -> str:
    if log:
        with open(log, "a", encoding="utf-8") as f:
            f.write(f"start {mark} {time.monotonic()}\n")
    time.sleep(seconds)
    return mark


def side_effect(path: str, name: str, seconds: float = 0.0) -> str:
    time.sleep(seconds)
    with Path(path).open("a", encoding="utf-8") as f:
        f.write(name + "\n")
    return name


for _fn in (source, square, total, route, big, small, final, flaky, boom, sleep, side_effect):
    REGISTRY.register(f"runtime_tasks:{_fn.__name__}", _fn)


def call(name: str) -> str:
    return f"runtime_tasks:{name}"


def hog(megabytes: int, log: str) -> int:
    """Allocate ``megabytes`` MB (touching every page) and note each attempt in ``log``."""
    with open(log, "a", encoding="utf-8") as f:
        f.write("attempt\n")
    block = bytearray(megabytes * 1024 * 1024)
    for i in range(0, len(block), 4096):
        block[i] = 1
    return len(block) // (1024 * 1024)


def counted(log: str, x: int) -> int:
    with open(log, "a", encoding="utf-8") as f:
        f.write(f"{x}\n")
    return x * 10


for _fn in (hog, counted):
    REGISTRY.register(f"runtime_tasks:{_fn.__name__}", _fn)


def suicide() -> None:
    import os
    import signal

    os.kill(os.getpid(), signal.SIGKILL)


REGISTRY.register("runtime_tasks:suicide", suicide)

# process-isolated tasks are resolved by name in a fresh worker process: allow this module there
REGISTRY.allow("runtime_tasks")


def gated_sum(gate: str, a: int, b: int) -> int:
    import os

    if not os.path.exists(gate):
        raise RuntimeError("gate closed")
    return a + b


REGISTRY.register("runtime_tasks:gated_sum", gated_sum)
