"""The DAG's shape a resume after a fix must keep, and the set ``resume --from`` clears."""

from __future__ import annotations

import pytest

from podium.errors import UnknownNameError
from podium.model import events as ev
from podium.model.states import IllegalTransition
from podium.model.task import Ref, TaskSpec, When
from podium.model.workflow import Workflow
from podium.runtime.rerun import cleared, digest, downstream, recorded_shape, shape_changes
from podium.runtime.view import fold


def wf(*tasks: TaskSpec) -> Workflow:
    return Workflow.build("w", tasks)


def t(name: str, *after: str, **kw: object) -> TaskSpec:
    return TaskSpec(name, kind="shell", config={"argv": ["true"]}, after=after, **kw)  # type: ignore[arg-type]


BASE = wf(
    t("a"),
    t("b", "a"),
    TaskSpec("m", call="x:f", args={"xs": Ref("a")}, map_over="xs"),
    t("c", "b", when=When("b", True)),
    t("d", "c", "m"),
)


def created(workflow: Workflow, with_shape: bool = True) -> list[ev.Event]:
    data: dict[str, object] = {"deps": {n: list(s.deps) for n, s in workflow.tasks.items()}}
    if with_shape:
        data["shape"] = recorded_shape(workflow)
    return [ev.Event(1, ev.RUN_CREATED, None, 0, 0.0, data)]


def test_the_same_shape_in_another_order_is_no_change() -> None:
    again = wf(*reversed([BASE.tasks[n] for n in BASE.tasks]))
    assert digest(again) == digest(BASE)
    assert shape_changes(fold(created(BASE)), again) == []


def test_each_change_is_one_line() -> None:
    changed = wf(
        t("a"),
        t("b", "a"),
        TaskSpec("m", call="x:f", args={"xs": Ref("a")}),  # no longer a map
        t("c", "a", when=When("a", True)),  # other dependency, branch on another task
        t("e", "c"),  # d removed, e added
    )
    assert shape_changes(fold(created(BASE)), changed) == [
        "task 'e' added",
        "task 'd' removed",
        "task 'c': dependencies (b) -> (a)",
        "task 'm': a map over 'xs' -> not a map",
        "task 'c': a branch on 'b' -> a branch on 'a'",
    ]


def test_an_older_run_without_a_recorded_shape_is_compared_by_its_graph() -> None:
    old = fold(created(BASE, with_shape=False))
    assert shape_changes(old, BASE) is None  # the same graph, but maps and branches unknown
    assert shape_changes(old, wf(t("a"))) == [
        "task 'b' removed",
        "task 'c' removed",
        "task 'd' removed",
        "task 'm' removed",
    ]


def test_downstream_and_did_you_mean() -> None:
    assert downstream(BASE, "b") == ["b", "c", "d"]
    assert downstream(BASE, "a") == ["a", "b", "m", "c", "d"]
    with pytest.raises(UnknownNameError, match=r"no task 'bb' in workflow 'w'; did you mean 'b'\?"):
        downstream(BASE, "bb")
    with pytest.raises(UnknownNameError, match=r"a map item: give its map, 'm'"):
        downstream(BASE, "m[2]")


def test_cleared_takes_finished_tasks_and_items_back_to_pending() -> None:
    log = created(BASE)
    seq = 1

    def add(typ: str, tid: str | None, data: dict[str, object] | None = None) -> None:
        nonlocal seq
        seq += 1
        log.append(ev.Event(seq, typ, tid, 1, 0.0, data or {}))

    add(ev.RUN_STARTED, None)
    for name in ("a", "b"):
        add(ev.TASK_QUEUED, name)
        add(ev.TASK_STARTED, name)
        add(ev.TASK_SUCCEEDED, name)
    add(ev.TASK_EXPANDED, "m", {"count": 3})
    for i in range(3):
        add(ev.TASK_QUEUED, f"m[{i}]")
        add(ev.TASK_STARTED, f"m[{i}]")
        add(ev.TASK_SUCCEEDED, f"m[{i}]")
    add(ev.TASK_SUCCEEDED, "m")
    add(ev.TASK_SKIPPED, "c", {"reason": "branch: b is 1, not True"})
    add(ev.TASK_SKIPPED, "d", {"reason": "upstream 'c' skipped"})
    add(ev.RUN_SUCCEEDED, None)
    view = fold(log)
    got = cleared(view, BASE, "m")
    assert [tid for tid, _ in got] == ["m", "m[0]", "m[1]", "m[2]", "d"]
    assert got[-1][1] == {"from": "m", "was": "skipped"}
    for tid, data in got:
        add(ev.TASK_CLEARED, tid, data)
    add(ev.RUN_STARTED, None)  # a succeeded run starts again
    view = fold(log)
    assert {n: view.tasks[n].state for n in ("a", "b", "m", "m[1]", "c", "d")} == {
        "a": "succeeded",
        "b": "succeeded",
        "m": "pending",
        "m[1]": "pending",
        "c": "skipped",
        "d": "pending",
    }
    add(ev.TASK_EXPANDED, "m", {"count": 2})  # expanded again into fewer items: the third is gone
    view = fold(log)
    assert "m[2]" not in view.tasks and view.tasks["m"].children == 2
    with pytest.raises(IllegalTransition):  # a pending task has nothing to clear
        fold([*log, ev.Event(seq + 1, ev.TASK_CLEARED, "d", 0, 0.0, {})])
