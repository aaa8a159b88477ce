"""The engine follows the planner on several nodes, and re-plans when reality drifts.

Two nodes described by a cluster file. The event log shows where each task started and every
plan in force (``PlanMade``), so the tests check both from the log alone. Following a plan is
logic: it runs on the inline executor with simulated durations on a fake clock. Re-planning
happens in a background thread while tasks run, so that test runs on the real local executor.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from runtime_tasks import call

from podium.executors.inline import InlineExecutor
from podium.executors.local import LocalExecutor
from podium.load.cluster import load_cluster
from podium.model import Const, Node, Ref, TaskSpec, Workflow
from podium.model import events as ev
from podium.runtime.engine import Engine
from podium.runtime.view import fold
from podium.testing import FakeClock

CLUSTER = """
nodes:
  - name: fast
    capacity: {cpu: 1, memory: 4GiB}
    prices: {cpu: 2.0}
    speed: 1.0
  - name: cheap
    capacity: {cpu: 1, memory: 4GiB}
    prices: {cpu: 0.5}
    speed: 1.0
"""


def _nodes(tmp_path: Path) -> list[Node]:
    path = tmp_path / "cluster.yaml"
    path.write_text(CLUSTER, encoding="utf-8")
    return list(load_cluster(str(path)).nodes)


def _plans_and_starts(events: list[ev.Event]) -> tuple[list[dict], list[tuple[str, str, dict]]]:
    """Every PlanMade, and for every TaskStarted the plan in force at that moment."""
    plans: list[dict] = []
    starts = []
    for e in events:
        if e.type == ev.PLAN_MADE:
            plans.append(e.data)
        elif e.type == ev.TASK_STARTED:
            starts.append((e.task_id, e.data["node"], plans[-1]["nodes"]))
    return plans, starts


def test_tasks_run_on_their_planned_nodes(store, tmp_path: Path) -> None:
    tasks = [
        TaskSpec(f"t{i}", call=call("square"), args={"x": Const(i)}, expected_duration=0.05) for i in range(8)
    ]
    tasks.append(
        TaskSpec("join", call=call("final"), args={"a": Ref("t0"), "b": Ref("t7")}, expected_duration=0.05)
    )
    clock = FakeClock()
    ex = InlineExecutor(_nodes(tmp_path), clock=clock)
    result = Engine(store, ex, clock=clock).run(Workflow.build("placed", tasks))
    assert result.ok
    plans, starts = _plans_and_starts(store.events(result.run_id))
    assert plans and plans[0]["reason"] == "start" and plans[0]["method"].startswith(("heuristic", "cpsat"))
    assert {node for _, node, _ in starts} == {"fast", "cheap"}  # both nodes used
    for task, node, planned in starts:
        assert planned[task] == node, f"{task} ran on {node}, planned on {planned[task]}"
    assert {c.task_id: c.node for c in ex.calls} == {t: n for t, n, _ in starts}  # and ran there
    assert result.summary.makespan == pytest.approx(plans[0]["T"])  # as planned, to the instant


def test_a_task_running_3x_its_estimate_triggers_a_replan_that_moves_later_tasks(
    store, tmp_path: Path
) -> None:
    r"""
    slow (estimated 0.2 s, really 0.6 s) -> tail
    x1 x2 x3 (0.2 s each, independent)
    The first plan puts two of the five tasks after slow on slow's node. Once slow has run
    for twice its estimate the remaining work is planned again with slow pinned where it is,
    and the tasks still waiting for slow's node move to the other one.
    """
    tasks = [
        TaskSpec("slow", call=call("sleep"), args={"seconds": Const(0.6)}, expected_duration=0.2),
        TaskSpec(
            "tail", call=call("sleep"), args={"seconds": Const(0.2)}, after=("slow",), expected_duration=0.2
        ),
        *[
            TaskSpec(f"x{i}", call=call("sleep"), args={"seconds": Const(0.2)}, expected_duration=0.2)
            for i in (1, 2, 3)
        ],
    ]
    ex = LocalExecutor(_nodes(tmp_path))
    try:
        result = Engine(store, ex).run(Workflow.build("drift", tasks))
    finally:
        ex.shutdown()
    assert result.ok
    events = store.events(result.run_id)
    plans, starts = _plans_and_starts(events)
    assert len(plans) >= 2, plans
    replan = next(p for p in plans[1:] if "slow" in p["reason"])
    assert replan["reason"].startswith("drift")
    slow_node = plans[0]["nodes"]["slow"]
    started_before = set()
    for e in events:  # tasks not started when the re-plan was made
        if e.type == ev.PLAN_MADE and e.data is replan:
            break
        if e.type == ev.TASK_STARTED:
            started_before.add(e.task_id)
    moved = [
        t
        for t, node in plans[0]["nodes"].items()
        if t not in started_before and t != "slow" and node == slow_node and replan["nodes"][t] != slow_node
    ]
    assert moved, (plans[0]["nodes"], replan["nodes"], started_before)
    for task, node, planned in starts:
        assert planned[task] == node
    view = fold(events)
    assert view.state == "succeeded"
