"""The engine end to end on a real SQLite store.

Tests of the engine's logic (readiness, retries, failures, dispatch order, capacity) run on the
inline executor with simulated call durations on a fake clock: they take no real time, and the
log's timestamps are exact, so schedules are checked to the instant. The test of what must hold
under real concurrency runs on the real local executor.

Each test reads its verdict from the durable event log (a fresh fold of what the store
holds), not from the engine's memory, so a test passes only if the log tells the truth.
"""

from __future__ import annotations

import pytest
from engine_helpers import simulated
from runtime_tasks import call

from podium.errors import SpecError
from podium.model import Const, Param, ParamSpec, Ref, Resources, RetryPolicy, TaskSpec, When, Workflow
from podium.model import events as ev
from podium.runtime.engine import Engine
from podium.runtime.view import fold


def demo_workflow() -> Workflow:
    r"""
    source -> square (map over source) -> total -> route -> big   (branch: label == big)
                                                       \-> small (branch: label == small)
    big, small -> final (none_failed: takes whichever ran);  flaky alone, fails twice
    """
    return Workflow.build(
        "demo",
        [
            TaskSpec("source", call=call("source"), args={"n": Const(3)}),
            TaskSpec("square", call=call("square"), args={"x": Ref("source")}, map_over="x"),
            TaskSpec("total", call=call("total"), args={"xs": Ref("square"), "k": Param("k")}),
            TaskSpec("route", call=call("route"), args={"t": Ref("total")}),
            TaskSpec(
                "big", call=call("big"), args={"t": Ref("total")}, when=When("route", "big", ("label",))
            ),
            TaskSpec(
                "small", call=call("small"), args={"t": Ref("total")}, when=When("route", "small", ("label",))
            ),
            TaskSpec(
                "final", call=call("final"), args={"a": Ref("big"), "b": Ref("small")}, trigger="none_failed"
            ),
            TaskSpec(
                "flaky",
                call=call("flaky"),
                args={"key": Param("key"), "fail_times": Const(2)},
                retry=RetryPolicy(attempts=3, delay=0.01, jitter=0.0),
            ),
        ],
        [ParamSpec("k", "int", 0), ParamSpec("key", "str")],
    )


def test_map_branch_join_and_retry(store, request) -> None:
    ex, clock = simulated()
    result = Engine(store, ex, clock=clock).run(demo_workflow(), {"k": "5", "key": request.node.name})
    assert result.ok
    assert result["square"] == [1, 4, 9]
    assert result["total"] == 19
    assert result["final"] == "big 19"
    view = fold(store.events(result.run_id))
    assert view.state == "succeeded"
    assert view.tasks["small"].state == "skipped"
    assert "branch" in (view.tasks["small"].skip_reason or "")
    assert view.tasks["flaky"].attempt == 3
    flaky = [e for e in store.events(result.run_id) if e.task_id == "flaky"]
    kinds = [e.type for e in flaky]
    assert kinds.count(ev.TASK_RETRYING) == 2 and kinds[-1] == ev.TASK_SUCCEEDED
    # each retry is queued again exactly its backoff after the failure, on the run's clock
    for i, e in enumerate(flaky):
        if e.type == ev.TASK_RETRYING:
            assert flaky[i + 1].type == ev.TASK_QUEUED
            assert flaky[i + 1].ts - e.ts == pytest.approx(e.data["delay"]) and e.data["delay"] > 0
    # every committed result reads back with a valid checksum
    results = store.results(result.run_id)
    assert {"source", "square[0]", "square[2]", "total", "big", "final"} <= set(results)
    assert all(r.verify() for r in results.values())


def test_success_is_durable_before_dependents_start(store, executor, request) -> None:
    """On the real local executor: completions arrive on worker threads, concurrently."""
    result = Engine(store, executor).run(demo_workflow(), {"key": request.node.name})
    seq = {(e.type, e.task_id): e.seq for e in store.events(result.run_id)}
    wf = demo_workflow()
    for name, spec in wf.tasks.items():
        start = seq.get((ev.TASK_STARTED, name))
        for dep in spec.deps:
            if start is not None:
                done = seq.get((ev.TASK_SUCCEEDED, dep)) or seq[(ev.TASK_SKIPPED, dep)]
                assert done < start, (dep, name)


def test_failure_fail_fast_cancels_and_continue_keeps_going(store, request) -> None:
    """bad fails at once while slow runs (0.3 s): fail-fast kills slow and cancels what waits."""

    def wf(fail_fast: bool) -> Workflow:
        return Workflow.build(
            f"ff-{fail_fast}",
            [
                TaskSpec("bad", call=call("boom")),
                TaskSpec("after_bad", call=call("square"), args={"x": Ref("bad")}),
                TaskSpec("slow", call=call("sleep"), args={"seconds": Const(0.0)}),
                TaskSpec("after_slow", call=call("sleep"), args={"seconds": Const(0.0), "mark": Ref("slow")}),
            ],
            fail_fast=fail_fast,
        )

    ex, clock = simulated(cpu=4, durations={"slow": 0.3})
    kept = Engine(store, ex, clock=clock).run(wf(False))
    stopped = Engine(store, ex, clock=clock).run(wf(True))
    kv = fold(store.events(kept.run_id))
    assert kv.state == "failed"
    assert kv.tasks["bad"].state == "failed"
    assert kv.tasks["bad"].error["kind"] == "user" and "boom: bad input" in kv.tasks["bad"].error["message"]
    assert kv.tasks["after_bad"].state == "skipped"
    assert kv.tasks["after_slow"].state == "succeeded"  # the independent branch finished
    sv = fold(store.events(stopped.run_id))
    assert sv.state == "failed"
    assert sv.tasks["slow"].state == "cancelled"
    killed = next(
        e for e in store.events(stopped.run_id) if e.type == ev.TASK_CANCELLED and e.task_id == "slow"
    )
    assert killed.data["error"]["kind"] == "cancelled"  # it was running: the executor killed it
    assert sv.tasks["after_slow"].state == "cancelled"
    assert sv.finished_at - sv.started_at < 0.3  # it did not wait for slow


def test_non_retryable_input_error_names_the_path(store) -> None:
    wf = Workflow.build(
        "badpath",
        [
            TaskSpec("route", call=call("route"), args={"t": Const(3)}),
            TaskSpec("use", call=call("square"), args={"x": Ref("route", ("nope",))}),
        ],
    )
    ex, clock = simulated()
    result = Engine(store, ex, clock=clock).run(wf)
    err = fold(store.events(result.run_id)).tasks["use"].error
    assert err is not None and "route['nope']" in err["message"] and err["retryable"] is False


def test_unplaceable_task_is_rejected_before_any_run_is_written(store) -> None:
    wf = Workflow.build("huge", [TaskSpec("big", call=call("square"), resources=Resources.of(cpu=64))])
    ex, clock = simulated(cpu=2)
    with pytest.raises(SpecError, match="no node can ever satisfy"):
        Engine(store, ex, clock=clock).run(wf)
    assert store.list_runs() == []
    assert ex.calls == []


def test_running_tasks_never_exceed_node_capacity(store) -> None:
    """Tasks of mixed cpu/memory/custom needs on a small node: at every instant in the log the
    sum of what runs fits the node, and the node was actually shared (so the check has teeth)."""
    needs = [
        Resources.of(cpu=1, memory="1GiB"),
        Resources.of(cpu=2, memory="512MiB"),
        Resources.of(cpu=0.5, memory="2GiB", tpu=1),
        Resources.of(cpu=1, memory="256MiB", tpu=1),
    ]
    tasks = [
        TaskSpec(f"t{i}", call=call("square"), args={"x": Const(i)}, resources=needs[i % len(needs)])
        for i in range(24)
    ]
    capacity = {"cpu": 3.0, "memory": 3 * 1024**3, "tpu": 1.0}
    ex, clock = simulated(
        cpu=3, memory="3GiB", durations={f"t{i}": 0.05 + 0.01 * (i % 5) for i in range(24)}, tpu=1
    )
    result = Engine(store, ex, clock=clock).run(Workflow.build("cap", tasks))
    assert result.ok
    # Events are committed in order; a start's seq after another's finish means they did not overlap.
    events = store.events(result.run_id)
    running: dict[str, dict[str, float]] = {}
    peak_tasks = 0
    for e in events:
        if e.type == ev.TASK_STARTED:
            running[e.task_id] = e.data["res"]
            for k, cap in capacity.items():
                assert sum(r.get(k, 0.0) for r in running.values()) <= cap + 1e-9, (k, running)
            peak_tasks = max(peak_tasks, len(running))
        elif e.type in (ev.TASK_SUCCEEDED, ev.TASK_FAILED, ev.TASK_RETRYING):
            running.pop(e.task_id, None)
    assert peak_tasks >= 2


def _cp_vs_fifo_workflow() -> Workflow:
    r"""
    s1 s2 s3 s4 s5 s6        (six short independent tasks, declared first)
    c1 -> c2 -> c3 -> c4     (a chain: the critical path)
    On 2 cpus FIFO runs the six first and the chain after them (7 waves); critical-path
    dispatch starts c1 at once and overlaps the chain with the shorts (5 waves). Each task takes
    its expected 0.1 s on the fake clock.
    """
    shorts = [
        TaskSpec(f"s{i}", call=call("sleep"), args={"seconds": Const(0.0)}, expected_duration=0.1)
        for i in range(1, 7)
    ]
    chain = [
        TaskSpec(
            f"c{i}",
            call=call("sleep"),
            args={"seconds": Const(0.0)},
            after=(f"c{i - 1}",) if i > 1 else (),
            expected_duration=0.1,
        )
        for i in range(1, 5)
    ]
    return Workflow.build("cp-vs-fifo", [*shorts, *chain])


@pytest.mark.parametrize("renamed", [False, True])
def test_critical_path_dispatch_beats_fifo(store, renamed: bool) -> None:
    wf = _cp_vs_fifo_workflow()
    if renamed:  # same DAG, other names: the order must come from the graph, not the names
        ren = {n: f"z{i:02d}" for i, n in enumerate(reversed(list(wf.tasks)))}
        wf = Workflow.build(
            wf.name,
            [
                TaskSpec(
                    ren[n],
                    call=t.call,
                    args=t.args,
                    after=tuple(ren[a] for a in t.after),
                    expected_duration=t.expected_duration,
                )
                for n, t in wf.tasks.items()
            ],
        )
        chain_head = ren["c1"]
        shorts = {ren[f"s{i}"] for i in range(1, 7)}
    else:
        chain_head, shorts = "c1", {f"s{i}" for i in range(1, 7)}
    ex, clock = simulated(cpu=2)
    cp = Engine(store, ex, clock=clock, dispatch="critical_path").run(wf)
    fifo = Engine(store, ex, clock=clock, dispatch="fifo").run(wf)

    def start_order(run_id: str) -> list[str]:
        return [e.task_id for e in store.events(run_id) if e.type == ev.TASK_STARTED]

    cp_order, fifo_order = start_order(cp.run_id), start_order(fifo.run_id)
    assert chain_head in cp_order[:2]
    assert set(fifo_order[:6]) == shorts
    # the log's own timestamps: the critical-path run is two waves shorter
    assert cp.summary.makespan == pytest.approx(0.5)
    assert fifo.summary.makespan == pytest.approx(0.7)


@pytest.mark.parametrize("fail_fast", [True, False])
def test_failure_handlers_run_after_a_failure_and_are_skipped_otherwise(store, fail_fast: bool) -> None:
    r"""
    bad (fails)   good
       \   /  \
      on_error  notify (one_failed: runs only if an upstream failed -> skipped)
       cleanup (all_done after bad: runs whatever happened)
    """
    wf = Workflow.build(
        f"handlers-{fail_fast}",
        [
            TaskSpec("bad", call=call("boom")),
            TaskSpec("good", call=call("sleep"), args={"seconds": Const(0.0), "mark": Const("g")}),
            TaskSpec(
                "on_error",
                call=call("sleep"),
                args={"seconds": Const(0.0)},
                after=("bad", "good"),
                trigger="one_failed",
            ),
            TaskSpec(
                "notify",
                call=call("sleep"),
                args={"seconds": Const(0.0)},
                after=("good",),
                trigger="one_failed",
            ),
            TaskSpec(
                "cleanup",
                call=call("sleep"),
                args={"seconds": Const(0.0)},
                after=("bad",),
                trigger="all_done",
            ),
        ],
        fail_fast=fail_fast,
    )
    ex, clock = simulated(cpu=4, durations={"good": 0.05})
    result = Engine(store, ex, clock=clock).run(wf)
    view = fold(store.events(result.run_id))
    assert view.state == "failed"  # handlers do not turn a failed run into a success
    assert view.tasks["bad"].state == "failed"
    assert view.tasks["on_error"].state == "succeeded"
    assert view.tasks["cleanup"].state == "succeeded"
    assert view.tasks["notify"].state in ("skipped", "cancelled")
    if not fail_fast:
        assert view.tasks["notify"].skip_reason == "no upstream failed"


def test_an_all_done_task_reading_a_failed_upstream_fails_with_an_input_error(store) -> None:
    """``trigger: all_done`` runs a task after a failed upstream; if it reads that upstream's
    result, it fails as an ``InputError`` naming it (the run ends failed; it never crashes)."""
    wf = Workflow.build(
        "reads-failed",
        [
            TaskSpec("bad", call=call("boom")),
            TaskSpec("after", call=call("square"), args={"x": Ref("bad")}, trigger="all_done"),
        ],
        fail_fast=False,
    )
    ex, clock = simulated(cpu=2)
    result = Engine(store, ex, clock=clock).run(wf)
    view = fold(store.events(result.run_id))
    assert view.state == "failed"
    err = view.tasks["after"].error
    assert view.tasks["after"].state == "failed" and err is not None
    assert err["type"] == "InputError" and "'bad' has no result" in err["message"]


def test_estimates_are_declared_else_the_median_of_past_runs_else_the_default(store) -> None:
    """Durations measured on the run's clock feed later runs' estimates (one rule:
    ``planner.estimates``): three runs of 1, 2 and 6 s give a median of 2 s."""
    wf = Workflow.build(
        "learn",
        [
            TaskSpec("measured", call=call("square"), args={"x": Const(2)}),
            TaskSpec("declared", call=call("square"), args={"x": Const(3)}, expected_duration=7.0),
        ],
    )
    for seconds in (1.0, 2.0, 6.0):
        ex, clock = simulated(durations={"measured": seconds, "declared": 0.5})
        engine = Engine(store, ex, clock=clock, default_duration=4.0)
        assert engine.run(wf).ok
    assert engine.estimates(wf) == {"measured": 2.0, "declared": 7.0}
    fresh = Workflow.build("never-ran", [TaskSpec("new", call=call("square"), args={"x": Const(1)})])
    assert engine.estimates(fresh) == {"new": 4.0}
    assert engine.estimates(fresh, None) == {}
