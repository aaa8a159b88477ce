"""What a run cost: makespan T, resource cost R and the objective F = alpha*T + beta*R.

T is the run's active time: the sum of its active spans, each from a ``RunStarted`` to the run's
end, or to the last event of a span whose orchestrator crashed, so the idle time between a crash
and its resume is not in T; ``wall`` (first start to the end, that idle time included) is
reported beside it. R sums, over task attempts, the seconds each held its resources times its
node's price per resource-second (memory priced per GiB); a gang's workers each hold the task's
resources on their own node. Pure: computed from the view alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from podium.model.cluster import DEFAULT_PRICES, Node
from podium.model.resources import Resources
from podium.model.workflow import Objective, Workflow
from podium.runtime.readmodel import RunTotals
from podium.runtime.view import RunView

_GIB = 1024.0**3


@dataclass(frozen=True)
class Summary:
    makespan: float
    cost: float
    objective: float
    alpha: float
    beta: float
    wall: float = 0.0


def per_hour(res: Mapping[str, float], node: Node | None) -> float:
    prices = node.prices if node is not None else DEFAULT_PRICES
    per_hour = 0.0
    for k, v in res.items():
        p = prices.get(k, 0.0)
        if p:
            per_hour += p * (v / _GIB if k == "memory" else v)
    return per_hour


def summarize(view: RunView, wf: Workflow, nodes: Mapping[str, Node]) -> Summary:
    start, end = view.started_at, view.finished_at
    wall = 0.0
    if start is not None:
        if end is None:
            end = view.last_ts if view.last_ts is not None else start
        wall = max(0.0, end - start)
    makespan = view.active_time()
    cost = 0.0
    rates: dict[tuple[int, str | None], float] = {}  # tasks share resource dicts: price each once
    for t in view.tasks.values():
        if t.busy and t.resources:
            key = (id(t.resources), t.node)
            rate = rates.get(key)
            if rate is None:
                rate = rates[key] = per_hour(t.resources, nodes.get(t.node or ""))
            if t.ranks:  # a gang: every worker holds the resources on its node
                rate = sum(per_hour(t.resources, nodes.get(str(node))) for node, _ in t.ranks)
            cost += rate * t.busy / 3600.0
    o = wf.objective
    return Summary(makespan, cost, o.alpha * makespan + o.beta * cost, o.alpha, o.beta, wall)


def recorded_pricing(meta: Mapping[str, Any] | None) -> tuple[Objective, dict[str, Node]]:
    """The objective and the nodes' prices a run recorded when it started (``RunCreated``,
    ``RunStarted``)."""
    meta = meta or {}
    o = meta.get("objective") or {}
    objective = Objective(alpha=float(o.get("alpha", 1.0)), beta=float(o.get("beta", 0.0)))
    prices: Mapping[str, Any] = meta.get("prices") or {}
    return objective, {
        name: Node(name, Resources(), p) for name, p in prices.items() if isinstance(p, Mapping)
    }


def run_totals(view: RunView, cost: float, counts: Mapping[str, int], tasks_total: int) -> RunTotals:
    """The read model's totals of a run: its status, times and T from the run's own fields of
    ``view`` (its tasks need not be there), with its cost R, task counts and task total, and F
    at the objective it recorded. The time of its last event ends the wall time of a run that
    has not ended."""
    objective, _ = recorded_pricing(view.meta)
    start = view.started_at
    end = view.finished_at if view.finished_at is not None else view.last_ts
    wall = None if start is None else max(0.0, (end if end is not None else start) - start)
    makespan = view.active_time()
    return RunTotals(
        view.state,
        start,
        view.finished_at,
        wall,
        makespan,
        cost,
        objective.alpha * makespan + objective.beta * cost,
        objective.alpha,
        objective.beta,
        counts,
        tasks_total,
    )
