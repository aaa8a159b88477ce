"""Task functions the metrics tests run, registered by name (process workers resolve them)."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from podium.registry import REGISTRY

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


for _fn in (nap, flaky, broken):
    REGISTRY.register(f"metrics_tasks:{_fn.__name__}", _fn)
REGISTRY.allow("metrics_tasks")
