"""Property tests: for random DAGs and clusters every plan is feasible and its figures are honest.

The checker (``plan_checker``) is independent of the planner. Under a deadline or a budget the
reported lower bound must also hold against every other feasible plan the tests can find.
"""

from __future__ import annotations

import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from plan_checker import GIB, check

from podium.errors import InfeasibleError
from podium.model.cluster import Cluster, Node
from podium.model.problem import PlanRequest, PlanTask
from podium.model.resources import Resources
from podium.model.workflow import Objective
from podium.planner.plan import plan


@st.composite
def instances(draw: st.DrawFn, min_tasks: int = 0) -> tuple[PlanRequest, Cluster]:
    m = draw(st.integers(1, 4))
    nodes = []
    for j in range(m):
        cpu = draw(st.sampled_from([1.0, 2.0, 4.0]))
        mem = draw(st.sampled_from([2, 8])) * GIB
        gpu = draw(st.sampled_from([0.0, 0.0, 1.0]))
        # 1/7 makes costs that no decimal scale turns into integers (the solver's inexact path)
        prices = {"cpu": draw(st.sampled_from([0.0, 0.5, 2.0, 1 / 7])), "memory": 0.1, "gpu": 3.0}
        speed = draw(st.sampled_from([0.5, 1.0, 2.0]))
        nodes.append(Node(f"n{j}", Resources(cpu=cpu, memory=mem, gpu=gpu), prices, speed))
    n = draw(st.integers(min_tasks, 14))
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


#: (speed, price per cpu-hour) of a cheap slow, a standard and a fast expensive node
KINDS = [(0.5, 0.01), (1.0, 0.04), (2.0, 0.12)]


@st.composite
def priced_instances(draw: st.DrawFn) -> tuple[PlanRequest, Cluster]:
    """Small DAGs on two or three nodes where faster costs more, so time and money trade off."""
    kinds = draw(st.lists(st.sampled_from(KINDS), min_size=2, max_size=3, unique=True))
    nodes = [
        Node(
            f"n{j}",
            Resources(cpu=draw(st.sampled_from([2.0, 4.0])), memory=8 * GIB),
            {"cpu": p, "memory": p / 8},
            s,
        )
        for j, (s, p) in enumerate(kinds)
    ]
    tasks = {}
    for i in range(draw(st.integers(2, 8))):
        deps = (
            tuple(sorted(draw(st.sets(st.sampled_from([f"t{k}" for k in range(i)]), max_size=2))))
            if i
            else ()
        )
        res = Resources(cpu=draw(st.sampled_from([1.0, 2.0])), memory=draw(st.sampled_from([1, 4])) * GIB)
        tasks[f"t{i}"] = PlanTask(float(draw(st.sampled_from([1, 2, 3, 5, 8]))), res, deps)
    return PlanRequest(tasks), Cluster.of(nodes)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(priced_instances(), st.sampled_from([0.3, 1.0, 3.0]))
def test_constrained_bounds_hold_against_a_trade_off_plan(
    inst: tuple[PlanRequest, Cluster], ratio: float
) -> None:
    """A plan q minimising T + beta*R gives a deadline (q's T) that some plan meets at cost q's
    R, and a budget (q's R) that some plan meets in q's T. So with CP-SAT the deadline plan's
    lower bound on R is at most q's R, and the budget plan's bound on T at most q's T: a bound
    above them (or a gap of 0 on a worse plan) is a claim the solver did not prove. ``beta``
    weighs relative changes (``ratio * T_fastest / R_cheapest``) so that q lies between the
    fastest and the cheapest plan."""
    req, cl = inst
    fastest = plan(req, cl, Objective()).makespan
    cheapest = plan(req, cl, Objective(alpha=0.0, beta=1.0)).cost
    q = plan(req, cl, Objective(alpha=1.0, beta=ratio * fastest / cheapest), time_limit=0.3)
    obj = Objective(deadline=q.makespan)
    p = plan(req, cl, obj, time_limit=1.0)
    check(p, req, cl, obj)
    assert p.objective <= heuristic(req, cl, obj) + 1e-12
    assert p.lower_bound <= q.cost * (1 + 1e-9), (q, p)
    obj = Objective(budget=q.cost)
    p = plan(req, cl, obj, time_limit=1.0)
    check(p, req, cl, obj)
    assert p.objective <= heuristic(req, cl, obj) + 1e-9
    assert p.lower_bound <= q.makespan + 1e-9, (q, p)


def heuristic(req: PlanRequest, cl: Cluster, obj: Objective) -> float:
    """The heuristic's value, or infinity when it misses the deadline that a search can meet."""
    try:
        return plan(req, cl, obj).objective
    except InfeasibleError as e:
        assert "no plan found that meets the deadline" in str(e)
        return math.inf


@settings(max_examples=60, deadline=None)
@given(instances(min_tasks=1))
def test_pinned_tasks_stay_put(inst: tuple[PlanRequest, Cluster]) -> None:
    req, cl = inst
    first = plan(req, cl, Objective())
    # pin the earliest-starting task where it was and re-plan from its start
    name = first.order()[0]
    s = first.slots[name]
    tasks = dict(req.tasks)
    t = tasks[name]
    tasks[name] = PlanTask(t.duration, t.resources, t.deps, pinned=(s.node, s.start), release=t.release)
    req2 = PlanRequest(tasks, now=s.start)
    p = plan(req2, cl, Objective())
    check(p, req2, cl, Objective())
