"""Figures the report derives from a ``RunDetail``: critical path, slowest tasks, costs, failures.

Pure functions of the detail dict (no store, no clock). Invariants: the critical path is the
longest path through the run's DAG of task instances weighted by each instance's actual busy
time (the durations of all its attempts, retries included); a map's items stand in for the
map (its downstream waits for every item, each item waits for the map's upstreams); without
the tasks' ``deps`` there is no critical path (``None``), never a guessed one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from podium.model.graph import critical_path as graph_critical_path

Detail = Mapping[str, Any]


def busy(task: Mapping[str, Any]) -> float:
    """Seconds a task instance spent running, over all its attempts."""
    return sum(a["duration"] or 0.0 for a in task["attempts_detail"])


def critical_path(detail: Detail) -> tuple[list[str], float] | None:
    """(task instance ids from first to last, total busy seconds), or None without deps
    (``model.graph.critical_path`` over the run's instances)."""
    tasks = {t["task_id"]: t for t in detail["tasks"]}
    if not tasks or any(t["deps"] is None for t in tasks.values()):
        return None
    deps: dict[str, list[str]] = {}
    items: dict[str, list[str]] = {}
    for t in tasks.values():
        deps.setdefault(t["name"], t["deps"])
        if t["map_index"] is not None:
            items.setdefault(t["name"], []).append(t["task_id"])
    path, total = graph_critical_path(deps, items, lambda tid: busy(tasks[tid]))
    return (path, total) if path else None


def slowest(detail: Detail, limit: int = 10) -> list[Mapping[str, Any]]:
    """The task instances that ran longest (busy time), longest first."""
    ran = [t for t in detail["tasks"] if t["attempts_detail"]]
    return sorted(ran, key=lambda t: (-busy(t), t["task_id"]))[:limit]


def cost_by(detail: Detail, key: str) -> list[tuple[str, float]]:
    """Cost per node (``key="node"``) or per task name (``key="name"``; a map's items add up
    under the map), largest first."""
    out: dict[str, float] = {}
    for t in detail["tasks"]:
        for a in t["attempts_detail"]:
            k = (a["node"] or "-") if key == "node" else t["name"]
            out[k] = out.get(k, 0.0) + a["cost"]
    return sorted(out.items(), key=lambda kv: (-kv[1], kv[0]))


def failed_attempts(detail: Detail) -> list[tuple[Mapping[str, Any], Mapping[str, Any]]]:
    """(task, attempt) for every attempt that did not succeed, in start order."""
    out = [
        (t, a)
        for t in detail["tasks"]
        for a in t["attempts_detail"]
        if a["outcome"] not in (None, "succeeded")
    ]
    return sorted(out, key=lambda ta: (ta[1]["started_at"], ta[0]["task_id"]))


def failure_kinds(detail: Detail) -> dict[str, int]:
    kinds: dict[str, int] = {}
    for _t, a in failed_attempts(detail):
        kinds[a["outcome"]] = kinds.get(a["outcome"], 0) + 1
    return kinds
