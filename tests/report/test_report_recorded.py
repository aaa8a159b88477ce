"""What a real run records for the report: the plan's spans in ``PlanMade`` and the task graph
in ``RunCreated`` (a critical path without the spec)."""

from __future__ import annotations

from pathlib import Path

import pytest

from podium.executors.inline import InlineExecutor
from podium.model import Node, Resources, TaskSpec, Workflow
from podium.model import events as ev
from podium.registry import REGISTRY
from podium.report import analysis as an
from podium.report.data import run_detail
from podium.runtime.engine import Engine
from podium.store import open_store
from podium.testing import FakeClock

REGISTRY.register("report_recorded:work", lambda: "ok")

#  a(2) -> b(5) -> d(1);  a -> c(1)
WORKFLOW = Workflow.build(
    "recorded",
    [
        TaskSpec("a", call="report_recorded:work", expected_duration=2.0),
        TaskSpec("b", call="report_recorded:work", after=("a",), expected_duration=5.0),
        TaskSpec("c", call="report_recorded:work", after=("a",), expected_duration=1.0),
        TaskSpec("d", call="report_recorded:work", after=("b",), expected_duration=1.0),
    ],
)


def test_a_planned_run_records_spans_and_its_graph(tmp_path: Path) -> None:
    clock = FakeClock()
    nodes = [Node("n1", Resources.of(cpu=1)), Node("n2", Resources.of(cpu=1))]
    executor = InlineExecutor(nodes, clock=clock)
    store = open_store(str(tmp_path / "r.db"))
    try:
        assert Engine(store, executor, clock=clock).run(WORKFLOW, run_id="r1").ok
        events = store.events("r1")
        assert events[0].data["deps"] == {"a": [], "b": ["a"], "c": ["a"], "d": ["b"]}
        plan = next(e.data for e in events if e.type == ev.PLAN_MADE)
        assert set(plan["spans"]) == {"a", "b", "c", "d"}
        assert plan["spans"]["b"][0] >= plan["spans"]["a"][1]  # b starts after a ends
        detail = run_detail(store, "r1")  # no workflow: the recorded graph serves
        assert detail["plan"]["spans"] == plan["spans"]
        path, total = an.critical_path(detail)  # type: ignore[misc]
        assert path == ["a", "b", "d"] and total == pytest.approx(8.0)
    finally:
        store.close()
