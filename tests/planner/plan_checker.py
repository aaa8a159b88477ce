"""An independent checker of plans, shared by the planner tests.

It does not use the planner's code: it sweeps each node's task intervals to check capacity at
every instant, checks every dependency, release and pin, and recomputes T, R and F from the
slots with the cost model's definition (resources x seconds x the node's hourly prices / 3600,
memory per GiB).
"""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from podium.model.cluster import Cluster
from podium.model.problem import PlanRequest
from podium.model.workflow import Objective
from podium.planner.plan import Plan, Slot

GIB = 1024**3


def feasible(slots: Mapping[str, Slot], req: PlanRequest, cl: Cluster) -> tuple[float, float]:
    """Assert that ``slots`` is a feasible schedule of ``req`` on ``cl``; return its (T, R)."""
    nodes = {nd.name: nd for nd in cl.nodes}
    assert set(slots) == set(req.tasks)
    for name, t in req.tasks.items():
        s = slots[name]
        nd = nodes[s.node]
        assert s.end - s.start == pytest.approx(t.duration / nd.speed, abs=1e-9)
        assert s.start >= t.release - 1e-9 and s.start >= req.now - 1e-9
        if t.pinned is not None:
            assert (s.node, s.start) == t.pinned
        for d in t.deps:
            assert slots[d].end <= s.start + 1e-9, f"{name} starts before its dependency {d} ends"
    for nd in cl.nodes:
        mine = [(slots[n], req.tasks[n].resources) for n in req.tasks if slots[n].node == nd.name]
        # usage only rises at a start, so checking just after every start covers every instant
        for s0, _ in mine:
            if s0.end <= s0.start:
                continue
            cpu = mem = gpu = 0.0
            for s1, r in mine:
                if s1.start <= s0.start < s1.end:
                    cpu, mem, gpu = cpu + r.cpu, mem + r.memory, gpu + r.gpu
            cap = nd.capacity
            assert cpu <= cap.cpu + 1e-9 and mem <= cap.memory + 1e-6 and gpu <= cap.gpu + 1e-9
    makespan = max((s.end for s in slots.values()), default=0.0)
    cost = 0.0
    for name, t in req.tasks.items():
        s = slots[name]
        pr = nodes[s.node].prices
        hourly = t.resources.cpu * pr.get("cpu", 0) + t.resources.memory / GIB * pr.get("memory", 0)
        hourly += t.resources.gpu * pr.get("gpu", 0)
        cost += hourly / 3600 * (s.end - s.start)
    return makespan, cost


def check(p: Plan, req: PlanRequest, cl: Cluster, obj: Objective) -> None:
    """Assert that ``p`` is feasible, meets its constraint and reports its own figures honestly."""
    makespan, cost = feasible(p.slots, req, cl)
    assert p.makespan == pytest.approx(makespan, rel=1e-9, abs=1e-9)
    assert p.cost == pytest.approx(cost, rel=1e-9, abs=1e-12)
    if obj.deadline is not None:
        assert p.makespan <= obj.deadline + 1e-9
        value = cost
    elif obj.budget is not None:
        assert cost <= obj.budget * (1 + 1e-9) + 1e-12
        value = makespan
    else:
        value = obj.alpha * makespan + obj.beta * cost
    assert p.objective == pytest.approx(value, rel=1e-9, abs=1e-12)
    assert p.lower_bound <= p.objective + 1e-9
    assert 0.0 <= p.gap <= 1.0
    if p.objective > 0:
        assert p.gap == pytest.approx((p.objective - p.lower_bound) / p.objective, abs=1e-9)
    if p.method == "cpsat-optimal":
        assert p.gap == 0.0  # a claim of optimality is a proof: its bound meets the plan
