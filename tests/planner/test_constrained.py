"""Deadline and budget forms on a priced cluster: the search runs on the real problem and its
bound is proven.

The case: a prep task, four trainers of 30-120 s with different cpu/memory needs, an evaluation
after each and a report, on a cheap slow node, a standard node and a fast expensive one. Under
a 200 s deadline the cheapest plan found to exist (``DEMO``, checked here by the independent
checker) costs R = 0.01164028; before the solver's model bounded every end by the deadline it
proved a relaxation optimal in a fraction of a second, the plan it found missed the deadline
and was dropped, and the planner returned R = 0.01213 with a 4.5% gap. A budget equal to
DEMO's cost admits DEMO's 200 s; before costs were exact integers in the model, rounding shut
it out and the planner returned 202.5 s with no bound from the solver (gap 63%).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from plan_checker import GIB, check, feasible

from podium.cli import main
from podium.model.cluster import Cluster, Node
from podium.model.problem import PlanRequest, PlanTask
from podium.model.resources import Resources
from podium.model.workflow import Objective
from podium.planner import exact
from podium.planner.bounds import cost_bound
from podium.planner.instance import compile_instance
from podium.planner.plan import Slot, plan
from podium.planner.search import Goal, Search

#: (cpu, memory GiB, declared seconds, after)
TASKS = {
    "prep": (1, 2, 10, ()),
    "t1": (4, 8, 120, ("prep",)),
    "t2": (2, 16, 90, ("prep",)),
    "t3": (2, 4, 60, ("prep",)),
    "t4": (1, 4, 30, ("prep",)),
    "e1": (1, 2, 15, ("t1",)),
    "e2": (1, 2, 15, ("t2",)),
    "e3": (1, 2, 10, ("t3",)),
    "e4": (1, 2, 10, ("t4",)),
    "report": (1, 1, 5, ("e1", "e2", "e3", "e4")),
}
#: name: (cpu, memory GiB, price per cpu-hour, per GiB-hour, speed)
NODES = {
    "eco": (4, 16, 0.01, 0.001, 0.5),
    "std": (8, 32, 0.04, 0.005, 1.0),
    "fast": (8, 32, 0.12, 0.01, 2.0),
}
REQ = PlanRequest(
    {
        n: PlanTask(float(d), Resources(cpu=float(c), memory=m * GIB), deps)
        for n, (c, m, d, deps) in TASKS.items()
    }
)
CLUSTER = Cluster.of(
    Node(n, Resources(cpu=float(c), memory=m * GIB), {"cpu": pc, "memory": pm}, s)
    for n, (c, m, pc, pm, s) in NODES.items()
)
DEMO = {
    "prep": Slot("std", 0.0, 10.0),
    "t1": Slot("std", 10.0, 130.0),
    "t2": Slot("eco", 10.0, 190.0),
    "t3": Slot("std", 10.0, 70.0),
    "t4": Slot("std", 10.0, 40.0),
    "e1": Slot("std", 130.0, 145.0),
    "e2": Slot("fast", 190.0, 197.5),
    "e3": Slot("std", 140.0, 150.0),
    "e4": Slot("std", 80.0, 90.0),
    "report": Slot("fast", 197.5, 200.0),
}
#: CI can afford it; the solver proves this case in well under a second once ortools is loaded
TIME_LIMIT = 4.0


def demo_cost() -> float:
    makespan, cost = feasible(DEMO, REQ, CLUSTER)
    assert makespan == 200.0
    return cost


def test_the_demonstrated_plan_meets_200s_at_r_0_01164() -> None:
    assert demo_cost() == pytest.approx(41.905 / 3600, rel=1e-12)


@pytest.mark.parametrize("deadline", [200.0, 205.0])
def test_deadline_case_reaches_the_demonstrated_cost_and_proves_it(deadline: float) -> None:
    pytest.importorskip("ortools")
    obj = Objective(deadline=deadline)
    p = plan(REQ, CLUSTER, obj, time_limit=TIME_LIMIT)
    check(p, REQ, CLUSTER, obj)
    assert p.cost <= demo_cost() * (1 + 1e-12), p
    assert p.method == "cpsat-optimal" and p.gap == 0.0
    assert p.lower_bound == pytest.approx(p.cost, rel=1e-9)


def test_budget_case_reaches_the_demonstrated_makespan_and_proves_it() -> None:
    pytest.importorskip("ortools")
    obj = Objective(budget=demo_cost())
    p = plan(REQ, CLUSTER, obj, time_limit=TIME_LIMIT)
    check(p, REQ, CLUSTER, obj)
    assert p.makespan <= 200.0, p
    assert p.method == "cpsat-optimal" and p.gap == 0.0 and p.lower_bound == p.makespan


def test_the_solver_never_returns_a_plan_past_the_deadline() -> None:
    """The cause of the early stop: every end, not only every start, is within the deadline."""
    pytest.importorskip("ortools")
    inst = compile_instance(REQ, CLUSTER)
    obj = Objective(deadline=200.0)
    search = Search(inst, Goal(obj), cost_bound(inst))
    search.portfolio()
    best = search.best
    assert best is not None
    res = exact.solve(inst, obj, best.schedule, best.score[1], TIME_LIMIT)
    assert res is not None and res.schedule is not None
    assert res.schedule.makespan() <= 200.0
    assert res.optimal and res.bound == pytest.approx(demo_cost(), rel=1e-9)


def test_without_a_search_the_gap_is_the_bounds_gap_not_zero() -> None:
    """The heuristic alone cannot prove this case: its bound is every task on its cheapest node."""
    obj = Objective(deadline=200.0)
    p = plan(REQ, CLUSTER, obj)
    check(p, REQ, CLUSTER, obj)
    assert p.method == "heuristic"
    assert p.lower_bound == pytest.approx(cost_bound(compile_instance(REQ, CLUSTER)))
    assert p.lower_bound < demo_cost() <= p.cost and p.gap > 0.1


def test_the_command_line_plans_the_spec_to_the_demonstrated_cost(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("ortools")
    spec = {
        "name": "trainers",
        "tasks": {
            n: {
                "argv": ["echo", n],
                "resources": {"cpu": c, "memory": f"{m}GiB"},
                "expected_duration": f"{d}s",
                **({"after": list(deps)} if deps else {}),
            }
            for n, (c, m, d, deps) in TASKS.items()
        },
    }
    nodes = [
        {
            "name": n,
            "capacity": {"cpu": c, "memory": f"{m}GiB"},
            "prices": {"cpu": pc, "memory": pm},
            "speed": s,
        }
        for n, (c, m, pc, pm, s) in NODES.items()
    ]
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    (tmp_path / "cluster.yaml").write_text(yaml.safe_dump({"nodes": nodes}))
    argv = ["plan", str(tmp_path / "spec.yaml"), "--cluster", str(tmp_path / "cluster.yaml")]
    argv += ["--allow-program", "echo"]  # the spec's tasks run echo
    main([*argv, "--deadline", "200s", "--time-limit", str(TIME_LIMIT), "--json"])  # errors exit
    out = json.loads(capsys.readouterr().out)
    assert out["makespan"] <= 200.0
    assert out["cost"] <= demo_cost() * (1 + 1e-12)
    assert out["lower_bound"] == pytest.approx(out["cost"], rel=1e-9)
