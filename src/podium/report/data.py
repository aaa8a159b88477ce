"""``run_detail``: everything the report shows about one run, read from the store in one call.

The shape is the run read model's ``RunDetail`` (schema ``podium.run/1``: ``RunSummary`` fields,
``plan``, ``nodes``, ``tasks`` of ``TaskRow`` with ``attempts_detail``, ``maps``), plus a few
added fields: per attempt its ``resources`` and ``cost``, per task its ``deps``, per plan its
``spans`` (when the run recorded them), ``method``, ``reason`` and ``replans``. When the read
model is a library function, the report calls it instead and this module goes.

Invariants: read-only (nothing written, nothing from the store executed); every number is
derived from the event log: an attempt is what a ``TaskStarted`` opened, T sums the run's
active spans (no downtime between a crash and its resume), R prices each attempt's duration
at its node's prices, F = alpha*T + beta*R; usage comes only through ``attempt_usage``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from podium.model import events as ev
from podium.model.cluster import DEFAULT_PRICES, price_per_second
from podium.model.usage import attempt_usage
from podium.runtime.view import recorded_deps, task_row

SCHEMA = "podium.run/1"
_NO_USAGE = {"cpu_time": None, "peak_memory": None, "wall_time": None, "source": None}
_ENDS = {
    ev.TASK_SUCCEEDED: "succeeded",
    ev.TASK_FAILED: "user",
    ev.TASK_RETRYING: "user",
    ev.TASK_CANCELLED: "cancelled",
    ev.TASK_RESET: "interrupted",
}
_RUN_END = (ev.RUN_SUCCEEDED, ev.RUN_FAILED, ev.RUN_CANCELLED)
_SECRET_KEY = re.compile(r"pass(word|wd|phrase)?|secret|token|api[_-]?key|credential", re.IGNORECASE)


def run_detail(store: Any, run_id: str, workflow: Any = None) -> dict[str, Any]:
    """The ``RunDetail`` of ``run_id`` (``NotFoundError`` if unknown). ``workflow``, when the
    run's spec could be loaded, adds each task's ``deps`` (for the critical path)."""
    from podium.runtime.view import fold

    record = store.get_run(run_id)
    events = store.events(run_id)
    view = fold(events)
    prices = {n: p for n, p in ((view.meta or {}).get("prices") or {}).items() if isinstance(p, Mapping)}
    attempts = _attempts(events, prices)
    obj = (view.meta or {}).get("objective") or {}
    alpha, beta = float(obj.get("alpha", 1.0)), float(obj.get("beta", 0.0))
    makespan, wall = _active_time(events)
    cost = sum(a["cost"] for runs in attempts.values() for a in runs)
    deps = recorded_deps(view) if workflow is None else {n: list(t.deps) for n, t in workflow.tasks.items()}
    tasks = [_row(tid, t, attempts.get(tid, []), deps) for tid, t in view.tasks.items()]
    counts = {k: v for k, v in view.counts().items() if v}
    return {
        "schema": SCHEMA,
        "run_id": record.run_id,
        "workflow": record.workflow,
        "status": view.state or record.status,
        "attention": None,
        "params": {k: "***" if _SECRET_KEY.search(str(k)) else v for k, v in record.params.items()},
        "created_at": record.created_at,
        "started_at": view.started_at,
        "finished_at": view.finished_at,
        "updated_at": record.updated_at,
        "wall_time": wall,
        "T": makespan,
        "R": cost,
        "F": alpha * makespan + beta * cost,
        "alpha": alpha,
        "beta": beta,
        "counts": counts,
        "tasks_total": len(view.tasks),
        "owner": record.owner,
        "plan": _plan(events),
        "nodes": _nodes(prices, attempts),
        "tasks": tasks,
        "maps": _maps(tasks),
    }


def _attempts(events: Iterable[Any], prices: Mapping[str, Mapping[str, float]]) -> dict[str, list[dict]]:
    """Every attempt of every task instance, in order, with its outcome, usage and cost."""
    out: dict[str, list[dict[str, Any]]] = {}
    for e in events:
        tid = e.task_id
        if tid is None:
            continue
        if e.type == ev.TASK_STARTED:
            res = dict(e.data.get("res") or {})
            out.setdefault(tid, []).append(
                {
                    "attempt": e.attempt,
                    "node": e.data.get("node"),
                    "started_at": e.ts,
                    "finished_at": None,
                    "duration": None,
                    "outcome": None,
                    "error": None,
                    "usage": dict(_NO_USAGE),
                    "resources": res,
                    "cost": 0.0,
                    "log_bytes": 0,
                }
            )
            continue
        runs = out.get(tid)
        if e.type not in _ENDS or not runs or runs[-1]["finished_at"] is not None:
            continue
        a = runs[-1]
        a["finished_at"] = e.ts
        a["node"] = e.data.get("node") or a["node"]  # the executor may have moved it
        error = e.data.get("error")
        a["error"] = _error(error) if error else None
        a["outcome"] = _ENDS[e.type] if not error else str(error.get("kind") or "user")
        d = e.data.get("duration")
        a["duration"] = float(d) if isinstance(d, int | float) else max(0.0, e.ts - a["started_at"])
        usage = attempt_usage(e.data)
        if usage is not None:
            a["usage"] = usage.as_dict()
        if isinstance(d, int | float) and e.type not in (ev.TASK_CANCELLED, ev.TASK_RESET):
            # priced as the run summary prices it: the recorded duration at the node's prices
            a["cost"] = price_per_second(a["resources"], prices.get(a["node"] or "", DEFAULT_PRICES)) * d
    return out


def _error(error: Mapping[str, Any]) -> dict[str, Any]:
    tb = str(error.get("traceback") or "")
    frames = re.findall(r'File "([^"]+)", line (\d+), in (\S+)', tb)
    frame = f"{frames[-1][0].rsplit('/', 1)[-1]}:{frames[-1][1]} in {frames[-1][2]}" if frames else None
    return {
        "type": str(error.get("type") or "Error"),
        "message": str(error.get("message") or ""),
        "kind": str(error.get("kind") or "user"),
        "traceback": tb,
        "frame": frame,
    }


def _row(tid: str, t: Any, runs: list[dict[str, Any]], deps: Mapping[str, list[str]] | None) -> dict:
    row = task_row(t)
    last = runs[-1] if runs else None
    row["attempts"] = len(runs)
    row["usage"] = dict(last["usage"]) if last else dict(_NO_USAGE)
    row["error"] = {k: v for k, v in _error(t.error).items() if k != "traceback"} if t.error else None
    row["deps"] = (deps.get(row["name"]) or []) if deps is not None else None
    row["attempts_detail"] = runs
    return row


def _active_time(events: Sequence[Any]) -> tuple[float, float | None]:
    """(T, wall time): T sums the spans from each ``RunStarted`` to the run's end or, after a
    crash, to its last event before the next start; wall time runs from the first start."""
    total, start, last, first, end = 0.0, None, 0.0, None, None
    for e in events:
        if e.type == ev.RUN_STARTED:
            if start is not None:
                total += max(0.0, last - start)
            start = e.ts
            first = e.ts if first is None else first
            end = None
        elif e.type in _RUN_END and start is not None:
            total += max(0.0, e.ts - start)
            start, end = None, e.ts
        last = e.ts
    if start is not None:
        total += max(0.0, last - start)
    wall = (end if end is not None else last) - first if first is not None else None
    return total, wall


def _plan(events: Sequence[Any]) -> dict[str, Any] | None:
    """The run's first plan (what it set out to do), with the count of re-plans after it.
    Spans are seconds from the run start that made the plan."""
    plans: list[Mapping[str, Any]] = []
    origin = first_origin = None
    for e in events:
        if e.type == ev.RUN_STARTED:
            origin = e.ts
        elif e.type == ev.PLAN_MADE:
            if not plans:
                first_origin = origin
            plans.append(e.data)
    if not plans:
        return None
    p = plans[0]
    raw = p.get("spans")
    spans: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    return {
        "T": p.get("T"),
        "R": p.get("R"),
        "F": p.get("F"),
        "lower_bound": p.get("lower_bound"),
        "gap": p.get("gap"),
        "method": p.get("method"),
        "reason": p.get("reason"),
        "nodes": dict(p.get("nodes") or {}),
        "spans": {k: list(v) for k, v in spans.items() if isinstance(v, list | tuple) and len(v) == 2},
        "origin": first_origin,
        "replans": len(plans) - 1,
    }


def _nodes(prices: Mapping[str, Mapping[str, float]], attempts: Mapping[str, list[dict]]) -> list[dict]:
    names = dict.fromkeys(prices)
    for runs in attempts.values():
        for a in runs:
            if a["node"]:
                names.setdefault(a["node"], None)
    return [{"name": n, "capacity": {}, "prices": dict(prices.get(n, {})), "speed": None} for n in names]


def _maps(tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    by_map: dict[str, list[dict[str, Any]]] = {}
    for t in tasks:
        if t["map_index"] is not None:
            by_map.setdefault(t["name"], []).append(t)
    for t in tasks:
        if t["children"] is None:
            continue
        items = by_map.get(t["task_id"], [])
        counts: dict[str, int] = {}
        for i in items:
            counts[i["status"]] = counts.get(i["status"], 0) + 1
        durations = sorted(i["duration"] for i in items if i["duration"] is not None)
        out.append(
            {
                "name": t["task_id"],
                "children": t["children"],
                "counts": counts,
                "duration_p50": _quantile(durations, 0.5),
                "duration_p95": _quantile(durations, 0.95),
            }
        )
    return out


def _quantile(xs: list[float], q: float) -> float | None:
    return xs[min(len(xs) - 1, int(q * (len(xs) - 1) + 0.5))] if xs else None


__all__ = ["SCHEMA", "run_detail"]
