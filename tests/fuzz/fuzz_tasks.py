"""Tiny deterministic tasks the fuzzed workflows run (``fuzz_tasks:<fn>``)."""

from __future__ import annotations

from typing import Any


def contrib(v: Any) -> int:
    """What an upstream value adds to a sum: lists their sum, echoes their ``c``, skipped (None) 0."""
    if v is None:
        return 0
    if isinstance(v, list):
        return sum(v)
    if isinstance(v, dict):  # an echo
        return int(v["c"])
    return int(v)


def add(k: int, xs: list[Any] | None = None) -> int:
    return k + sum(contrib(x) for x in xs or [])


def seq(n: int) -> list[int]:
    return list(range(n))


def item(x: int, k: int) -> int:
    return 2 * x + k


def echo(**kw: Any) -> dict[str, Any]:
    return kw
