"""Lanes: ready tasks queued behind running calls on their worker (``podium.runtime.lanes``).

Run on a real SQLite store with a small queueing executor (``lane_executor``); verdicts come
from the durable event log and from what the executor really ran.
"""

from __future__ import annotations

import threading
import time
from collections import Counter

from lane_executor import LaneExecutor

from podium.model import Const, Node, Resources, TaskSpec, Workflow
from podium.model import events as ev
from podium.registry import REGISTRY
from podium.runtime.engine import Engine

_GATES: dict[str, threading.Event] = {}
_RUNS: Counter[str] = Counter()


def gate(name: str) -> str:
    """Wait until the test opens gate ``name``."""
    _RUNS[name] += 1
    _GATES[name].wait(10)
    return name


def tick(name: str, seconds: float = 0.002, fail: bool = False, gate: str = "") -> str:
    _RUNS[name] += 1
    if gate:
        _GATES[gate].wait(10)
    time.sleep(seconds)
    if fail:
        raise RuntimeError(f"{name} failed")
    return name


REGISTRY.register("lane_tasks:gate", gate)
REGISTRY.register("lane_tasks:tick", tick)


def _tick(name: str, cpu: float = 1, after: tuple[str, ...] = (), **kw: object) -> TaskSpec:
    args = {"name": Const(name), **{k: Const(v) for k, v in kw.items()}}
    return TaskSpec(name, call="lane_tasks:tick", args=args, resources=Resources(cpu=cpu), after=after)


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
    ex = LaneExecutor(Node("local", Resources(cpu=2)), depth=4)
    tasks = [_tick(f"t{i}") for i in range(80)]
    try:
        result = Engine(store, ex).run(Workflow.build("lanes", tasks))
    finally:
        ex.shutdown()
    assert result.ok
    assert len(ex.followed) >= 20  # lanes were used
    assert _capacity_holds(store, result.run_id, 2.0) == 2
    assert set(_starts(store, result.run_id).values()) == {1}
    assert Counter(r.task_id for r in ex.ran) == Counter(t.name for t in tasks)
    # a worker never ran two calls at once, and at most two calls ran at any instant
    for r in ex.ran:
        same = [o for o in ex.ran if o.worker == r.worker and o is not r]
        assert all(o.end <= r.start or o.start >= r.end for o in same)
    edges = sorted([(r.start, 1) for r in ex.ran] + [(r.end, -1) for r in ex.ran], key=lambda e: (e[0], e[1]))
    level = peak = 0
    for _, step in edges:
        level += step
        peak = max(peak, level)
    assert peak <= 2


def test_a_lane_only_takes_tasks_its_hold_covers(store) -> None:
    """cpu=2 and cpu=1 tasks on 3 cpus: a cpu=2 task never waits in a lane a cpu=1 call opened
    (the log would then show 4 cpus in use), while cpu=1 tasks do wait in lanes of cpu=2 calls.
    (A lane holds what its first call needs; the calls in it may follow each other in any mix
    that the hold covers.)"""
    ex = LaneExecutor(Node("local", Resources(cpu=3)), depth=4)
    tasks = [_tick(f"t{i}", cpu=2 if i % 3 == 0 else 1) for i in range(60)]
    needs = {t.name: t.resources.cpu for t in tasks}
    try:
        result = Engine(store, ex).run(Workflow.build("holds", tasks))
    finally:
        ex.shutdown()
    assert result.ok
    _capacity_holds(store, result.run_id, 3.0)
    assert ex.followed
    ahead_of = dict(ex.followed)

    def opener(task: str) -> str:  # the call that opened the lane ``task`` waited in
        while task in ahead_of:
            task = ahead_of[task]
        return task

    assert all(needs[task] <= needs[opener(ahead)] for task, ahead in ex.followed), ex.followed


def _gated_lane(name: str, followers: int, **kw: object) -> list[TaskSpec]:
    """On one cpu: ``head`` blocks on a gate (declared short, so tasks queue behind it)."""
    short = {"resources": Resources(cpu=1), "expected_duration": 0.001}
    start = TaskSpec("start", call="lane_tasks:tick", args={"name": Const(f"{name}-start")}, **short)
    head = TaskSpec("head", call="lane_tasks:gate", args={"name": Const(name)}, after=("start",), **short)
    rest = [
        TaskSpec(
            f"f{i}",
            call="lane_tasks:tick",
            args={"name": Const(f"{name}-f{i}"), **{k: Const(v) for k, v in kw.items()}},
            after=("start",),
            **short,
        )
        for i in range(followers)
    ]
    return [start, head, *rest]


def _run_gated(store, ex: LaneExecutor, wf: Workflow, name: str, when_queued) -> object:
    _GATES[name] = threading.Event()
    out: dict[str, object] = {}
    t = threading.Thread(target=lambda: out.setdefault("r", Engine(store, ex).run(wf)), daemon=True)
    t.start()
    deadline = time.monotonic() + 10
    while ex.queued_behind("head") < 3 and time.monotonic() < deadline:
        time.sleep(0.005)
    assert ex.queued_behind("head") == 3, "tasks did not queue behind the gated call"
    when_queued()
    _GATES[name].set()
    t.join(20)
    assert "r" in out
    return out["r"]


def test_a_lost_worker_requeues_waiting_tasks_without_using_an_attempt(store) -> None:
    name = "lost"
    ex = LaneExecutor(Node("local", Resources(cpu=1)), depth=8)
    wf = Workflow.build("lost-lane", _gated_lane(name, 3))
    try:
        result = _run_gated(store, ex, wf, name, lambda: ex.lose("head"))
    finally:
        ex.shutdown()
    assert result.ok
    starts = _starts(store, result.run_id)
    assert starts["head"] == 2  # lost once (a free retry), then ran
    assert all(starts[f"f{i}"] == 1 for i in range(3))  # they never ran on the lost worker
    assert all(_RUNS[f"{name}-f{i}"] == 1 for i in range(3))
    retry = [e for e in store.events(result.run_id) if e.type == ev.TASK_RETRYING]
    assert [e.task_id for e in retry] == ["head"]
    _capacity_holds(store, result.run_id, 1.0)


def test_a_failed_call_lets_its_lane_go_on_when_the_run_keeps_going(store) -> None:
    """The task's own error leaves its worker alive: the tasks behind it run there."""
    name = "keep"
    ex = LaneExecutor(Node("local", Resources(cpu=1)), depth=8)
    tasks = _gated_lane(name, 3)
    wf = Workflow.build("keep-going", tasks, fail_fast=False)
    try:
        result = _run_gated(store, ex, wf, name, lambda: None)
    finally:
        ex.shutdown()
    assert result.ok
    lane_worker = {r.worker for r in ex.ran if r.task_id in {"head", "f0", "f1", "f2"}}
    assert len(lane_worker) == 1  # all on the head's worker, after it
    assert all(r.followed for r in ex.ran if r.task_id.startswith("f"))


def test_fail_fast_cancels_the_tasks_waiting_in_a_lane(store) -> None:
    """The call ahead fails the run: the tasks waiting behind it are cancelled unrun."""
    name = "fast"
    ex = LaneExecutor(Node("local", Resources(cpu=1)), depth=8)
    tasks = _gated_lane(name, 3)
    tasks[1] = TaskSpec(
        "head",
        call="lane_tasks:tick",
        args={"name": Const("fast-head"), "seconds": Const(0.3), "fail": Const(True)},
        resources=Resources(cpu=1),
        expected_duration=0.001,
        after=("start",),
    )
    wf = Workflow.build("fail-fast", tasks)
    try:
        out: dict[str, object] = {}
        t = threading.Thread(target=lambda: out.setdefault("r", Engine(store, ex).run(wf)), daemon=True)
        t.start()
        t.join(20)
        result = out["r"]
    finally:
        ex.shutdown()
    assert not result.ok
    assert len(ex.followed) == 3
    states = {t: v.state for t, v in result.view.tasks.items()}
    assert states["head"] == "failed"
    assert all(states[f"f{i}"] == "cancelled" for i in range(3))
    assert all(_RUNS[f"{name}-f{i}"] == 0 for i in range(3))


def test_a_lane_whose_call_is_overdue_takes_no_more_tasks(store) -> None:
    """A call of a function that usually takes 2 ms hangs: tasks stop joining its lane once it
    is overdue by the horizon (20 ms here) and go to the other worker instead."""
    ex = LaneExecutor(Node("local", Resources(cpu=2)), depth=32, rtt=0.001)
    tasks = [_tick(f"t{i}") for i in range(20)]
    tasks.append(_tick("slow", gate="stuck"))
    tasks += [_tick(f"u{i}") for i in range(120)]
    _GATES["stuck"] = threading.Event()
    out: dict[str, object] = {}
    runner = threading.Thread(
        target=lambda: out.setdefault("r", Engine(store, ex).run(Workflow.build("stuck", tasks)))
    )
    runner.start()
    try:
        deadline = time.monotonic() + 10
        while _RUNS["slow"] == 0 and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(0.5)  # the other worker runs what is left meanwhile
        behind = ex.queued_behind("slow")
        done_meanwhile = sum(1 for r in ex.ran if r.task_id.startswith("u"))
    finally:
        _GATES["stuck"].set()
        runner.join(20)
        ex.shutdown()
    assert out["r"].ok
    assert behind <= 24, behind  # without the overdue rule it fills up to the depth (32)
    assert done_meanwhile >= 120 - behind - 2
