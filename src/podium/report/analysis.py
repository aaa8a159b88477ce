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

Detail = Mapping[str, Any]


def busy(task: Mapping[str, Any]) -> float:
    """Seconds a task instance spent running, over all its attempts."""
    return sum(a["duration"] or 0.0 for a in task["attempts_detail"])


def critical_path(detail: Detail) -> tuple[list[str], float] | None:
    """(task instance ids from first to last, total busy seconds), or None without deps."""
    tasks = {t["task_id"]: t for t in detail["tasks"]}
    if not tasks or any(t["deps"] is None for t in tasks.values()):
        return None
    items: dict[str, list[str]] = {}
    for t in tasks.values():
        if t["map_index"] is not None:
            items.setdefault(t["name"], []).append(t["task_id"])

    def instances(name: str) -> list[str]:
        """What a dependency on task ``name`` waits for: its items when it is an expanded map."""
        return items.get(name) or ([name] if name in tasks else [])

    def preds(tid: str) -> list[str]:
        t = tasks[tid]
        out: list[str] = []
        for d in t["deps"]:
            out += instances(d)
        return out

    best: dict[str, tuple[float, str | None]] = {}
    for tid in _topological(tasks, preds):
        before = max(((best[p][0], p) for p in preds(tid) if p in best), default=(0.0, None))
        own = 0.0 if items.get(tid) else busy(tasks[tid])  # an expanded map is its items
        best[tid] = (before[0] + own, before[1])
    if not best:
        return None
    end = max(best, key=lambda k: (best[k][0], k))
    path: list[str] = []
    cur: str | None = end
    while cur is not None:
        if not items.get(cur):
            path.append(cur)
        cur = best[cur][1]
    path.reverse()
    return path, best[end][0]


def _topological(tasks: Mapping[str, Any], preds: Any) -> list[str]:
    """Task instances, each after its predecessors (iterative: deep chains are fine)."""
    order: list[str] = []
    state: dict[str, int] = {}
    for root in tasks:
        if root in state:
            continue
        stack: list[tuple[str, bool]] = [(root, False)]
        while stack:
            tid, done = stack.pop()
            if done:
                state[tid] = 2
                order.append(tid)
                continue
            if state.get(tid):
                continue
            state[tid] = 1
            stack.append((tid, True))
            stack.extend((p, False) for p in preds(tid) if not state.get(p))
    return order


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
