"""Figures derived from a run: per-attempt spans, map aggregates and the critical path.

Pure functions of a ``RunView`` (and, for the critical path, the workflow's graph): no store,
no clock. A map is summarised by its items' counts per state and duration quantiles, so a page
never needs to draw 10,000 rows to show one map.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from podium.model import events as ev
from podium.model.events import Event
from podium.model.graph import critical_path as graph_critical_path


def _quantile(xs: list[float], q: float) -> float | None:
    if not xs:
        return None
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * (len(xs) - 1) + 0.5))]


def map_rows(view: Any) -> list[dict[str, Any]]:
    out = []
    for tid, t in view.tasks.items():
        if t.children is None:
            continue
        counts: dict[str, int] = {}
        durations = []
        for i in range(t.children):
            c = view.tasks.get(f"{tid}[{i}]")
            if c is None:
                continue
            counts[c.state] = counts.get(c.state, 0) + 1
            if c.duration is not None:
                durations.append(c.duration)
        out.append(
            {
                "name": tid,
                "children": t.children,
                "counts": counts,
                "duration_p50": _quantile(durations, 0.5),
                "duration_p95": _quantile(durations, 0.95),
            }
        )
    return out


def critical_path(view: Any, graph: Sequence[dict[str, Any]] | None) -> list[str]:
    """The run's critical path so far (``model.graph.critical_path``: the longest path through
    the task instances that have run, weighted by their busy seconds). Empty without the
    workflow's graph."""
    if not graph:
        return []
    tasks = view.tasks
    deps = {g["name"]: g["deps"] for g in graph if g["name"] in tasks}
    items = {tid: [f"{tid}[{i}]" for i in range(t.children)] for tid, t in tasks.items() if t.children}
    path, _ = graph_critical_path(deps, items, lambda tid: tasks[tid].busy if tid in tasks else 0.0)
    return path


@dataclass
class Attempt:
    attempt: int
    node: str | None
    started_at: float
    resources: dict[str, float]
    finished_at: float | None = None
    outcome: str | None = None  # "succeeded" or a failure kind ("user", "timeout", ...)
    error: dict[str, Any] | None = None


def track(attempts: dict[str, list[Attempt]], e: Event) -> None:
    """Per-attempt spans, kept beside the view (the view keeps only the last attempt)."""
    tid = e.task_id
    if tid is None:
        return
    typ = e.type
    if typ == ev.TASK_STARTED:
        attempts.setdefault(tid, []).append(
            Attempt(e.attempt, e.data.get("node"), e.ts, dict(e.data.get("res") or {}))
        )
        return
    if typ not in (ev.TASK_SUCCEEDED, ev.TASK_FAILED, ev.TASK_RETRYING, ev.TASK_CANCELLED, ev.TASK_RESET):
        return
    runs = attempts.get(tid)
    if not runs or runs[-1].finished_at is not None:
        return
    a = runs[-1]
    a.finished_at = e.ts
    if typ == ev.TASK_SUCCEEDED:
        a.outcome = "succeeded"
    elif typ == ev.TASK_RESET:
        a.outcome = "interrupted"
    elif typ == ev.TASK_CANCELLED:
        a.outcome = "cancelled"
    else:
        a.error = e.data.get("error")
        a.outcome = str((a.error or {}).get("kind") or "user")
