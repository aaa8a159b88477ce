"""A map summed up on one line: ``map of N, k succeeded, j failed, p50 .., p95 ..``.

``podium run``'s summary and ``podium show`` never print a map's items one by one (a map of
100,000 would bury the rest): ``map_notes`` sums them up per map, and the failed items are
listed below the table by the failure lines. Invariant: computed from the tasks given alone
(``TaskView``s or rows with ``task_id``, ``state``, ``duration``, ``children``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from podium.model import states as st


def is_item(task_id: str) -> bool:
    """``name[i]``: an item of a map."""
    return task_id.endswith("]") and "[" in task_id


def _ms(seconds: float) -> str:
    if seconds < 0.001:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 1.0:
        return f"{seconds * 1000:.3g} ms"
    return f"{seconds:.3g} s"


def _quantile(ordered: Sequence[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def map_notes(tasks: Iterable[Any]) -> dict[str, str]:
    """Per map (a task with ``children``): ``map of N, k succeeded, j failed, p50 .., p95 ..``
    from its items' states and the durations of those that succeeded."""
    sizes: dict[str, int] = {}
    states: dict[str, dict[str, int]] = {}
    durations: dict[str, list[float]] = {}
    for t in tasks:
        tid = t.task_id
        if t.children is not None:
            sizes[tid] = t.children
        if is_item(tid):
            name = tid[: tid.index("[")]
            counts = states.setdefault(name, {})
            counts[t.state] = counts.get(t.state, 0) + 1
            if t.duration is not None and t.state == st.SUCCEEDED:
                durations.setdefault(name, []).append(t.duration)
    out: dict[str, str] = {}
    for name, n in sizes.items():
        counts = states.get(name, {})
        parts = [f"map of {n}"]
        parts += [f"{counts[s]} {s}" for s in st.TASK_STATES if counts.get(s)]
        ds = sorted(durations.get(name, ()))
        if ds:
            parts.append(f"p50 {_ms(_quantile(ds, 0.5))}, p95 {_ms(_quantile(ds, 0.95))}")
        out[name] = ", ".join(parts)
    return out
