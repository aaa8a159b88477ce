"""What the run report computes from an event log: T without crash downtime, per-attempt cost,
the plan (with planned spans when a run records them), measured usage from event data, the
critical path through a map, failures by kind. The log is written by hand so every expected
number is known."""

from __future__ import annotations

import re
from typing import Any

import pytest

from podium.model import Resources, TaskSpec, Workflow
from podium.model import events as ev
from podium.model.events import Event, RunRecord
from podium.report import analysis as an
from podium.report.data import run_detail
from podium.report.page import report_html
from podium.store.memory import MemoryStore

HOUR = 3600.0
RES = {"cpu": 1.0}
USAGE = {"cpu_time": 0.75, "peak_memory": 200 << 20, "wall_time": 1.0, "source": "process"}

#   load ── sq (map of 2 items) ── total
#     └──── side
WORKFLOW = Workflow.build(
    "hand",
    [
        TaskSpec("load", call="x:load"),
        TaskSpec("sq", call="x:sq", after=("load",)),
        TaskSpec("side", call="x:side", after=("load",), resources=Resources(cpu=2)),
        TaskSpec("total", call="x:total", after=("sq",)),
    ],
)


def _log() -> list[Event]:
    """Two starts: the orchestrator dies at t=3 (last event) and resumes at t=10."""
    rows: list[tuple[str, str | None, int, float, dict[str, Any]]] = [
        (ev.RUN_CREATED, None, 0, 0.0, {"workflow": "hand", "objective": {"alpha": 1.0, "beta": 10.0}}),
        (ev.RUN_STARTED, None, 0, 0.0, {"prices": {"a": {"cpu": HOUR}, "b": {"cpu": 2 * HOUR}}}),
        (
            ev.PLAN_MADE,
            None,
            0,
            0.0,
            {
                "T": 4.0,
                "R": 9.0,
                "F": 94.0,
                "lower_bound": 90.0,
                "gap": 0.04,
                "method": "list",
                "reason": "first plan",
                "nodes": {"load": "a", "sq": "a", "side": "b", "total": "a"},
                "spans": {"load": [0.0, 1.0], "side": [1.0, 2.0], "total": [3.0, 4.0]},
            },
        ),
        (ev.TASK_QUEUED, "load", 0, 0.0, {}),
        (ev.TASK_STARTED, "load", 1, 0.0, {"node": "a", "res": RES}),
        (ev.TASK_SUCCEEDED, "load", 1, 1.0, {"duration": 1.0, "usage": USAGE}),
        (ev.TASK_EXPANDED, "sq", 0, 1.0, {"count": 2}),
        (ev.TASK_QUEUED, "sq[0]", 0, 1.0, {}),
        (ev.TASK_QUEUED, "sq[1]", 0, 1.0, {}),
        (ev.TASK_QUEUED, "side", 0, 1.0, {}),
        (ev.TASK_STARTED, "sq[0]", 1, 1.0, {"node": "a", "res": RES}),
        (ev.TASK_STARTED, "side", 1, 1.0, {"node": "b", "res": {"cpu": 2.0}}),
        (
            ev.TASK_RETRYING,
            "side",
            1,
            1.5,
            {"duration": 0.5, "error": {"kind": "timeout", "message": "slow"}},
        ),
        (ev.TASK_SUCCEEDED, "sq[0]", 1, 3.0, {"duration": 2.0}),
        (ev.RUN_STARTED, None, 0, 10.0, {"prices": {"a": {"cpu": HOUR}, "b": {"cpu": 2 * HOUR}}}),
        (ev.TASK_QUEUED, "side", 0, 10.0, {}),
        (ev.TASK_STARTED, "sq[1]", 1, 10.0, {"node": "a", "res": RES}),
        (ev.TASK_STARTED, "side", 2, 10.0, {"node": "b", "res": {"cpu": 2.0}}),
        (ev.TASK_SUCCEEDED, "sq[1]", 1, 10.5, {"duration": 0.5}),
        (ev.TASK_SUCCEEDED, "side", 2, 11.0, {"duration": 1.0}),
        (ev.TASK_SUCCEEDED, "sq", 0, 10.5, {}),
        (ev.TASK_QUEUED, "total", 0, 10.5, {}),
        (ev.TASK_STARTED, "total", 1, 10.5, {"node": "a", "res": RES}),
        (ev.TASK_SUCCEEDED, "total", 1, 12.0, {"duration": 1.5}),
        (ev.RUN_SUCCEEDED, None, 0, 12.0, {}),
    ]
    return [Event(i + 1, typ, tid, att, ts, data) for i, (typ, tid, att, ts, data) in enumerate(rows)]


@pytest.fixture
def detail() -> dict[str, Any]:
    store = MemoryStore()
    events = _log()
    store.create_run(RunRecord("h1", "hand", "created", 0.0, 0.0, {"token": "s3cret", "n": 2}), events[:1])
    store.append("h1", events[1:])
    return run_detail(store, "h1", WORKFLOW)


def test_summary_figures(detail: dict[str, Any]) -> None:
    assert detail["status"] == "succeeded"
    assert detail["T"] == pytest.approx(3.0 + 2.0)  # 0..3 before the crash, 10..12 after
    assert detail["wall_time"] == pytest.approx(12.0)
    # cost per attempt: node a 1/s per cpu, node b 2/s per cpu (side: 2 cpus)
    r = 1.0 + 2.0 + 0.5 + 1.5 + 2 * 2 * (0.5 + 1.0)
    assert detail["R"] == pytest.approx(r)
    assert detail["F"] == pytest.approx(5.0 + 10.0 * r)
    assert detail["params"] == {"token": "***", "n": 2}
    plan = detail["plan"]
    assert (plan["T"], plan["lower_bound"], plan["gap"], plan["replans"]) == (4.0, 90.0, 0.04, 0)
    assert plan["spans"]["side"] == [1.0, 2.0] and plan["origin"] == 0.0
    assert [n["name"] for n in detail["nodes"]] == ["a", "b"]
    assert detail["maps"] == [
        {"name": "sq", "children": 2, "counts": {"succeeded": 2}, "duration_p50": 2.0, "duration_p95": 2.0}
    ]


def test_attempts_usage_and_failures(detail: dict[str, Any]) -> None:
    tasks = {t["task_id"]: t for t in detail["tasks"]}
    load, side = tasks["load"], tasks["side"]
    assert load["usage"] == USAGE  # recorded in the event: it flows in unchanged
    assert tasks["total"]["usage"]["source"] is None
    assert [a["outcome"] for a in side["attempts_detail"]] == ["timeout", "succeeded"]
    assert side["attempts"] == 2 and side["deps"] == ["load"]
    assert tasks["sq[1]"]["deps"] == ["load"] and tasks["sq[1]"]["map_index"] == 1
    assert an.failure_kinds(detail) == {"timeout": 1}
    assert an.cost_by(detail, "node") == [("b", pytest.approx(6.0)), ("a", pytest.approx(5.0))]
    assert dict(an.cost_by(detail, "name"))["sq"] == pytest.approx(2.5)


def test_critical_path_goes_through_the_slowest_item(detail: dict[str, Any]) -> None:
    path, total = an.critical_path(detail)  # type: ignore[misc]
    assert path == ["load", "sq[0]", "total"]
    assert total == pytest.approx(1.0 + 2.0 + 1.5)
    no_deps = dict(detail, tasks=[dict(t, deps=None) for t in detail["tasks"]])
    assert an.critical_path(no_deps) is None


def test_page_shows_measured_and_planned_data(detail: dict[str, Any]) -> None:
    page = report_html(detail)
    assert page.count('class="bar planned"') == 3
    assert page.count('class="bar actual') == 6  # one per attempt
    assert len(re.findall(r'class="bar actual critical" data-task="(load|sq\[0\]|total)"', page)) == 3
    assert "0.75 cores" in page and "200MiB" in page
    assert "not measured" in page  # the tasks without a usage record
    assert "s3cret" not in page


def test_a_run_without_a_plan_or_spans_says_so() -> None:
    store = MemoryStore()
    events = [e for e in _log() if e.type != ev.PLAN_MADE]
    events = [e._replace(seq=i + 1) for i, e in enumerate(events)]
    store.create_run(RunRecord("h2", "hand", "created", 0.0, 0.0), events[:1])
    store.append("h2", events[1:])
    d = run_detail(store, "h2")
    assert d["plan"] is None
    page = report_html(d)
    assert "No plan recorded" in page and "Planned spans were not recorded" in page
    assert "could not be loaded" in page  # no workflow given: no critical path
