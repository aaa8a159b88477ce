"""The plan beside the run: what the planner schedules for a run's workflow, for the Gantt.

For a run of a registered workflow on this machine's node (``local``), the planner is given
the workflow's tasks with the durations the engine would estimate (declared, else the median
of past runs, else 1 s; a map the run expanded counts its items in waves of what the node's
cpus hold at once), this machine's capacity and the run's prices; its spans (seconds from
the run's start) are drawn beside the real ones. A run on other nodes gets its recorded plan
summary only (their capacities are not known here). Pure but for reading history; computed
once per run and kept.
"""

from __future__ import annotations

import math
import statistics
import threading
from collections import OrderedDict
from typing import Any

from podium.model.workflow import Workflow

_KEEP = 128
_cache: OrderedDict[str, dict[str, Any] | None] = OrderedDict()
_lock = threading.Lock()


def planned(store: Any, workflow: Workflow, detail: dict[str, Any]) -> dict[str, Any] | None:
    # a map that expands changes the plan: the key holds the maps' sizes
    key = f"{detail['run_id']} {sorted((m['name'], m['children']) for m in detail.get('maps') or [])}"
    with _lock:
        if key in _cache:
            return _cache[key]
    out = _plan(store, workflow, detail)
    with _lock:
        _cache[key] = out
        while len(_cache) > _KEEP:
            _cache.popitem(last=False)
    return out


def _plan(store: Any, workflow: Workflow, detail: dict[str, Any]) -> dict[str, Any] | None:
    from podium.errors import PodiumError
    from podium.executors.local import detect_node
    from podium.model.cluster import DEFAULT_PRICES, Cluster
    from podium.model.problem import PlanRequest, PlanTask
    from podium.planner.plan import plan

    names = [n["name"] for n in detail.get("nodes") or []]
    if names and names != ["local"]:
        return None
    prices = (detail.get("nodes") or [{}])[0].get("prices") or DEFAULT_PRICES
    node = detect_node(prices=prices)
    try:
        history = store.history(workflow.name)
    except PodiumError:
        history = {}
    items = {m["name"]: m["children"] for m in detail.get("maps") or []}
    cpus = node.capacity.cpu
    tasks = {}
    for name, t in workflow.tasks.items():
        past = history.get(name)
        d = (
            t.expected_duration
            if t.expected_duration is not None
            else (statistics.median(past) if past else 1.0)
        )
        if name in items:  # a map the run expanded: its items, as many at once as the node's cpus hold
            waves = math.ceil(items[name] / max(1, int(cpus // max(t.resources.cpu, 1e-9))))
            d *= max(1, waves)
        tasks[name] = PlanTask(max(float(d), 1e-6), t.resources, t.deps, workers=t.workers)
    try:
        p = plan(PlanRequest(tasks), Cluster.of([node]), workflow.objective)
    except PodiumError:
        return None
    return {
        "T": p.makespan,
        "R": p.cost,
        "F": p.objective,
        "lower_bound": p.lower_bound,
        "gap": p.gap,
        "method": p.method,
        "spans": {t: [s.start, s.end] for t, s in p.slots.items()},
    }
