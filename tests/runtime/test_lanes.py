"""Lanes: ready tasks queued behind running calls on their worker (``podium.runtime.lanes``).

Run on a real SQLite store with a simulated queueing executor (``lane_executor``) on a fake
clock: calls take simulated time, so the run takes no real time and every check is exact.
Verdicts come from the durable event log and from what the executor ran, where and when.
"""

from __future__ import annotations

from collections import Counter

import pytest
from lane_executor import LaneExecutor

from podium.model import Const, Node, Resources, TaskSpec, Workflow
from podium.model import events as ev
from podium.registry import REGISTRY
from podium.runtime.engine import Engine
from podium.runtime.lanes import LOOKAHEAD
from podium.testing import FakeClock

_RUNS: Counter[str] = Counter()


def tick(name: str, seconds: float = 0.002, fail: bool = False) -> str:
    """A task body: count the run (its simulated ``seconds`` are the executor's business)."""
    _RUNS[name] += 1
    if fail:
        raise RuntimeError(f"{name} failed")
    return name


REGISTRY.register("lane_tasks:tick", tick)


def _tick(name: str, cpu: float = 1, after: tuple[str, ...] = (), **kw: object) -> TaskSpec:
    args = {"name": Const(name), **{k: Const(v) for k, v in kw.items()}}
    return TaskSpec(name, call="lane_tasks:tick", args=args, resources=Resources(cpu=cpu), after=after)


def _run(store, wf: Workflow, cpu: float, depth: int, before=None) -> tuple[object, LaneExecutor]:
    clock = FakeClock()
    ex = LaneExecutor(Node("local", Resources(cpu=cpu)), clock, depth=depth)
    if before is not None:
        before(ex, clock)
    return Engine(store, ex, clock=clock).run(wf), ex


def _capacity_holds(store, run_id: str, cpus: float) -> int:
    """Replay the log: the started tasks' cpus never exceed the node's; return the peak count."""
    running: dict[str, float] = {}
    peak = 0
    for e in store.events(run_id):
        if e.type == ev.TASK_STARTED:
            running[e.task_id] = e.data["res"]["cpu"]
            assert sum(running.values()) <= cpus + 1e-9, running
            peak = max(peak, len(running))
        elif e.type in (ev.TASK_SUCCEEDED, ev.TASK_FAILED, ev.TASK_RETRYING, ev.TASK_CANCELLED):
            running.pop(e.task_id, None)
    return peak


def _starts(store, run_id: str) -> Counter[str]:
    return Counter(e.task_id for e in store.events(run_id) if e.type == ev.TASK_STARTED)


def test_short_tasks_wait_in_lanes_and_the_log_keeps_capacity(store) -> None:
    """Many short tasks on 2 cpus: once their run time is known, tasks queue behind running
    calls; each runs once, after the call it follows on the same worker, never beside it."""
    tasks = [_tick(f"t{i}") for i in range(80)]
    result, ex = _run(store, Workflow.build("lanes", tasks), cpu=2, depth=4)
    assert result.ok
    # the first two calls open lanes with no known run time; later a task starts afresh only
    # when a lane has run dry, so nearly every task waits in one
    assert len(ex.followed) >= 70
    assert _capacity_holds(store, result.run_id, 2.0) == 2
    assert set(_starts(store, result.run_id).values()) == {1}
    assert Counter(r.task_id for r in ex.ran) == Counter(t.name for t in tasks)
    # a worker never ran two calls at once, and at most two calls ran at any instant
    for r in ex.ran:
        same = [o for o in ex.ran if o.worker == r.worker and o is not r]
        assert all(o.end <= r.start or o.start >= r.end for o in same)
    edges = sorted([(r.start, 1) for r in ex.ran] + [(r.end, -1) for r in ex.ran])
    level = peak = 0
    for _, step in edges:
        level += step
        peak = max(peak, level)
    assert peak <= 2
    assert result.summary.makespan == pytest.approx(40 * 0.002)  # two workers never idle


def test_a_lane_only_takes_tasks_its_hold_covers(store) -> None:
    """cpu=2 and cpu=1 tasks on 3 cpus: a cpu=2 task never waits in a lane a cpu=1 call opened
    (the log would then show 4 cpus in use). (A lane holds what its first call needs; the calls
    in it may follow each other in any mix that the hold covers.)"""
    tasks = [_tick(f"t{i}", cpu=2 if i % 3 == 0 else 1) for i in range(60)]
    needs = {t.name: t.resources.cpu for t in tasks}
    result, ex = _run(store, Workflow.build("holds", tasks), cpu=3, depth=4)
    assert result.ok
    _capacity_holds(store, result.run_id, 3.0)
    ahead_of = dict(ex.followed)

    def opener(task: str) -> str:  # the call that opened the lane ``task`` waited in
        while task in ahead_of:
            task = ahead_of[task]
        return task

    assert all(needs[task] <= needs[opener(ahead)] for task, ahead in ex.followed), ex.followed
    assert any(needs[t] == 2 for t, _ in ex.followed)  # big tasks wait in lanes too


def _gated_lane(name: str, followers: int, **head: object) -> list[TaskSpec]:
    """On one cpu: ``head`` runs 1 s although declared short, so tasks queue behind it."""
    short = {"resources": Resources(cpu=1), "expected_duration": 0.001}
    start = TaskSpec("start", call="lane_tasks:tick", args={"name": Const(f"{name}-start")}, **short)
    head_args = {
        "name": Const(f"{name}-head"),
        "seconds": Const(1.0),
        **{k: Const(v) for k, v in head.items()},
    }
    first = TaskSpec("head", call="lane_tasks:tick", args=head_args, after=("start",), **short)
    rest = [
        TaskSpec(
            f"f{i}", call="lane_tasks:tick", args={"name": Const(f"{name}-f{i}")}, after=("start",), **short
        )
        for i in range(followers)
    ]
    return [start, first, *rest]


def test_a_lost_worker_requeues_waiting_tasks_without_using_an_attempt(store) -> None:
    name = "lost"
    seen: dict[str, int] = {}

    def lose_head_at_half_a_second(ex: LaneExecutor, clock: FakeClock) -> None:
        def lose() -> None:
            seen["behind"] = ex.queued_behind("head")
            ex.lose("head")

        clock.call_at(0.5, lose)

    wf = Workflow.build("lost-lane", _gated_lane(name, 3))
    result, _ = _run(store, wf, cpu=1, depth=8, before=lose_head_at_half_a_second)
    assert result.ok
    assert seen["behind"] == 3  # the three followers waited behind head when its worker died
    starts = _starts(store, result.run_id)
    assert starts["head"] == 2  # lost once (a free retry), then ran
    assert all(starts[f"f{i}"] == 1 for i in range(3))  # they never ran on the lost worker
    assert all(_RUNS[f"{name}-f{i}"] == 1 for i in range(3))
    retry = [e for e in store.events(result.run_id) if e.type == ev.TASK_RETRYING]
    assert [e.task_id for e in retry] == ["head"]
    _capacity_holds(store, result.run_id, 1.0)


def test_a_failed_call_lets_its_lane_go_on_when_the_run_keeps_going(store) -> None:
    """The task's own error leaves its worker alive: the tasks behind it run there."""
    wf = Workflow.build("keep-going", _gated_lane("keep", 3, fail=True), fail_fast=False)
    result, ex = _run(store, wf, cpu=1, depth=8)
    assert result.view.tasks["head"].state == "failed"
    assert all(result.view.tasks[f"f{i}"].state == "succeeded" for i in range(3))
    lane_worker = {r.worker for r in ex.ran if r.task_id in {"head", "f0", "f1", "f2"}}
    assert len(lane_worker) == 1  # all on the head's worker, after it
    assert all(r.followed for r in ex.ran if r.task_id.startswith("f"))
    head = next(r for r in ex.ran if r.task_id == "head")
    assert all(r.start >= head.end for r in ex.ran if r.task_id.startswith("f"))


def test_fail_fast_cancels_the_tasks_waiting_in_a_lane(store) -> None:
    """The call ahead fails the run: the tasks waiting behind it are cancelled unrun."""
    name = "fast"
    wf = Workflow.build("fail-fast", _gated_lane(name, 3, fail=True))
    result, ex = _run(store, wf, cpu=1, depth=8)
    assert not result.ok
    assert len(ex.followed) == 3
    states = {t: v.state for t, v in result.view.tasks.items()}
    assert states["head"] == "failed"
    assert all(states[f"f{i}"] == "cancelled" for i in range(3))
    assert all(_RUNS[f"{name}-f{i}"] == 0 for i in range(3))


def test_a_lane_whose_call_is_overdue_takes_no_more_tasks(store) -> None:
    """A call of a function that usually takes 2 ms runs 100 s: tasks stop joining its lane once
    it is overdue by the horizon (20 ms with a 1 ms round trip) and go to the other worker."""
    tasks = [_tick(f"t{i}") for i in range(20)]
    tasks.append(_tick("slow", seconds=100.0))
    tasks += [_tick(f"u{i}") for i in range(120)]
    result, ex = _run(store, Workflow.build("stuck", tasks), cpu=2, depth=32)
    assert result.ok
    slow = next(r for r in ex.ran if r.task_id == "slow")
    ahead_of = dict(ex.followed)

    def behind_slow(task: str) -> bool:
        while task in ahead_of:
            task = ahead_of[task]
            if task == "slow":
                return True
        return False

    joined = [j for j in ex.joined if behind_slow(j.task_id)]
    expected_end = slow.start + 0.002  # what the function took so far in this run
    assert joined, "nothing queued behind the slow call at all: the test has no teeth"
    assert all(j.at <= expected_end + LOOKAHEAD + 1e-9 for j in joined), joined
    assert len(joined) < 32  # it did not fill up to the depth
    others = [r for r in ex.ran if r.task_id.startswith("u") and not behind_slow(r.task_id)]
    assert len(others) == 120 - len(joined) and all(r.end < slow.end for r in others)
