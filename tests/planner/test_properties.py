"""Property tests: for random DAGs and clusters every plan is feasible and its figures are honest.

The checker here is independent of the planner: it sweeps each node's task intervals to check
capacity at every instant, checks every dependency, and recomputes T, R and F from the slots
with the cost model's definition (resources x seconds x the node's hourly prices / 3600).
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from podium.model.cluster import Cluster, Node
from podium.model.problem import PlanRequest, PlanTask
from podium.model.resources import Resources
from podium.model.workflow import Objective
from podium.planner.plan import Plan, plan

GIB = 1024**3


@st.composite
def instances(draw: st.DrawFn) -> tuple[PlanRequest, Cluster]:
    m = draw(st.integers(1, 4))
    nodes = []
    for j in range(m):
        cpu = draw(st.sampled_from([1.0, 2.0, 4.0]))
        mem = draw(st.sampled_from([2, 8])) * GIB
        gpu = draw(st.sampled_from([0.0, 0.0, 1.0]))
        prices = {"cpu": draw(st.sampled_from([0.0, 0.5, 2.0])), "memory": 0.1, "gpu": 3.0}
        speed = draw(st.sampled_from([0.5, 1.0, 2.0]))
        nodes.append(Node(f"n{j}", Resources(cpu=cpu, memory=mem, gpu=gpu), prices, speed))
    n = draw(st.integers(0, 14))
    tasks = {}
    for i in range(n):
        deps = (
            tuple(sorted(draw(st.sets(st.sampled_from([f"t{k}" for k in range(i)]), max_size=3))))
            if i
            else ()
        )
        node = draw(st.sampled_from(nodes))  # keep every task placeable somewhere
        cap = node.capacity
        res = Resources(
            cpu=draw(st.sampled_from([0.5, 1.0, cap.cpu])),
            memory=draw(st.sampled_from([0, GIB, cap.memory])),
            gpu=draw(st.sampled_from([0.0, cap.gpu])),
        )
        dur = draw(st.sampled_from([0.0, 1.0, 2.5, 3.0, 7.0]))
        release = draw(st.sampled_from([0.0, 0.0, 4.0]))
        tasks[f"t{i}"] = PlanTask(dur, res, deps, release=release)
    return PlanRequest(tasks), Cluster.of(nodes)


def check(p: Plan, req: PlanRequest, cl: Cluster, obj: Objective) -> None:
    nodes = {nd.name: nd for nd in cl.nodes}
    assert set(p.slots) == set(req.tasks)
    for name, t in req.tasks.items():
        s = p.slots[name]
        nd = nodes[s.node]
        assert s.end - s.start == pytest.approx(t.duration / nd.speed, abs=1e-9)
        assert s.start >= t.release - 1e-9 and s.start >= req.now - 1e-9
        if t.pinned is not None:
            assert (s.node, s.start) == t.pinned
        for d in t.deps:
            assert p.slots[d].end <= s.start + 1e-9, f"{name} starts before its dependency {d} ends"
    for nd in cl.nodes:
        mine = [(p.slots[n], req.tasks[n].resources) for n in req.tasks if p.slots[n].node == nd.name]
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
    makespan = max((s.end for s in p.slots.values()), default=0.0)
    cost = 0.0
    for name, t in req.tasks.items():
        s = p.slots[name]
        pr = nodes[s.node].prices
        hourly = t.resources.cpu * pr.get("cpu", 0) + t.resources.memory / GIB * pr.get("memory", 0)
        hourly += t.resources.gpu * pr.get("gpu", 0)
        cost += hourly / 3600 * (s.end - s.start)
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


objectives = st.sampled_from(
    [
        Objective(),
        Objective(alpha=1.0, beta=1000.0),
        Objective(alpha=0.0, beta=1.0),
        Objective(alpha=2.0, beta=50.0),
    ]
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instances(), objectives)
def test_heuristic_plans_are_feasible_and_honest(inst: tuple[PlanRequest, Cluster], obj: Objective) -> None:
    req, cl = inst
    p = plan(req, cl, obj)
    check(p, req, cl, obj)
    assert plan(req, cl, obj) == p  # pure: same inputs, same plan


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instances(), objectives)
def test_improved_and_cpsat_plans_are_feasible_and_no_worse(
    inst: tuple[PlanRequest, Cluster], obj: Objective
) -> None:
    req, cl = inst
    base = plan(req, cl, obj)
    p = plan(req, cl, obj, time_limit=0.3)
    check(p, req, cl, obj)
    assert p.objective <= base.objective + 1e-9


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instances(), st.sampled_from([1.0, 1.3, 2.0]))
def test_deadline_and_budget_forms(inst: tuple[PlanRequest, Cluster], slack: float) -> None:
    req, cl = inst
    fastest = plan(req, cl, Objective())
    cheapest = plan(req, cl, Objective(alpha=0.0, beta=1.0))
    obj = Objective(deadline=max(fastest.makespan * slack, 1e-3))
    check(plan(req, cl, obj), req, cl, obj)
    obj = Objective(budget=cheapest.cost * slack)
    check(plan(req, cl, obj), req, cl, obj)


@settings(max_examples=60, deadline=None)
@given(instances())
def test_pinned_tasks_stay_put(inst: tuple[PlanRequest, Cluster]) -> None:
    req, cl = inst
    first = plan(req, cl, Objective())
    if not first.slots:
        return
    # pin the earliest-starting task where it was and re-plan from its start
    name = first.order()[0]
    s = first.slots[name]
    tasks = dict(req.tasks)
    t = tasks[name]
    tasks[name] = PlanTask(t.duration, t.resources, t.deps, pinned=(s.node, s.start), release=t.release)
    req2 = PlanRequest(tasks, now=s.start)
    p = plan(req2, cl, Objective())
    check(p, req2, cl, Objective())
