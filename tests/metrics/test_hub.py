"""The metrics hub fed by a real engine run (memory store, thread and process executors): every
figure is checked against the run's own event log and summary."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import pytest
from metrics_tasks import STATE_OF, TRIES

from podium.executors.local import LocalExecutor, detect_node
from podium.metrics import MetricsHub
from podium.model import TaskSpec, Workflow
from podium.model import events as ev
from podium.model.resources import Resources
from podium.model.task import RetryPolicy
from podium.runtime.engine import Engine
from podium.runtime.view import base_name
from podium.store.memory import MemoryStore

#   a ─┬─ b (flaky: retried once)
#      ├─ c (broken: fails for good; the run keeps going)
#      └─ d ── e
WORKFLOW = Workflow.build(
    "hubtest",
    [
        TaskSpec("a", call="metrics_tasks:nap", resources=Resources(cpu=1, memory=64 << 20)),
        TaskSpec(
            "b",
            call="metrics_tasks:flaky",
            args={"key": "b"},
            after=("a",),
            retry=RetryPolicy(attempts=2, delay=0.0, jitter=0.0),
        ),
        TaskSpec("c", call="metrics_tasks:broken", after=("a",), retry=RetryPolicy(attempts=1)),
        TaskSpec("d", call="metrics_tasks:nap", after=("a",), resources=Resources(cpu=0.5)),
        TaskSpec("e", call="metrics_tasks:nap", after=("d",)),
    ],
    fail_fast=False,
)


def _run(hub: MetricsHub, run_id: str, hooks: list[Any] | None = None) -> tuple[Any, MemoryStore]:
    TRIES.clear()
    store = MemoryStore()
    executor = LocalExecutor([detect_node()])
    engine = Engine(
        hub.wrap_store(store),
        hub.wrap_executor(executor),
        hooks=[hub.track(run_id, len(WORKFLOW.tasks)), *(hooks or [])],
    )
    try:
        result = engine.run(WORKFLOW, run_id=run_id)
    finally:
        executor.shutdown()
    return result, store


def test_counters_match_the_event_log() -> None:
    hub = MetricsHub()
    result, store = _run(hub, "r1")
    assert result.status == "failed"
    events = store.events("r1")
    snap = hub.snapshot()
    expected = Counter(("hubtest", base_name(e.task_id), STATE_OF[e.type]) for e in events if e.task_id)
    assert snap["podium_task_transitions_total"] == dict(expected)
    assert snap["podium_attempts_total"] == {
        ("hubtest", "a", "succeeded"): 1,
        ("hubtest", "b", "user"): 1,
        ("hubtest", "b", "succeeded"): 1,
        ("hubtest", "c", "user"): 1,
        ("hubtest", "d", "succeeded"): 1,
        ("hubtest", "e", "succeeded"): 1,
    }
    assert snap["podium_task_failures_total"] == {("hubtest", "c", "user"): 1}
    assert snap["podium_runs_started_total"] == {("hubtest",): 1}
    assert snap["podium_runs_total"] == {("hubtest", "failed"): 1}
    # durations: the histogram's sum and count are the TaskSucceeded durations of each task
    for name in "ade":
        durations = [e.data["duration"] for e in events if e.type == ev.TASK_SUCCEEDED and e.task_id == name]
        buckets, total = snap["podium_task_duration_seconds"][("hubtest", name)]
        assert buckets[-1] == ("+Inf", len(durations)) and total == pytest.approx(sum(durations))
    waits, _ = snap["podium_task_queue_wait_seconds"][("hubtest",)]
    assert waits[-1][1] == sum(1 for e in events if e.type == ev.TASK_STARTED)
    # cost: what the engine's own summary says R is
    assert sum(snap["podium_cost_total"].values()) == pytest.approx(result.summary.cost, rel=1e-9)
    assert result.summary.cost > 0


def test_live_series_exist_only_while_the_run_lives() -> None:
    hub = MetricsHub()
    seen: list[dict[str, Any]] = []

    def look(events: Any, view: Any) -> None:  # a second hook: snapshots mid-run
        if any(e.type == ev.TASK_STARTED and e.task_id == "e" for e in events):
            seen.append(hub.snapshot())

    _run(hub, "r2", [look])
    assert seen, "the run never started e"
    mid = seen[0]
    assert mid["podium_runs_active"] == {("hubtest",): 1}
    assert set(mid["podium_run_cost"]) == {("hubtest", "r2")}
    assert mid["podium_run_elapsed_seconds"][("hubtest", "r2")] > 0
    assert mid["podium_tasks"][("hubtest", "running")] == 1
    assert sum(v for (_wf, _s), v in mid["podium_tasks"].items()) == len(WORKFLOW.tasks)
    node = detect_node().name
    assert mid["podium_node_allocated"][(node, "cpu")] == pytest.approx(1.0)
    after = hub.snapshot()
    for name in ("podium_runs_active", "podium_tasks", "podium_run_cost", "podium_run_objective"):
        assert after[name] == {}, name
    assert after["podium_node_allocated"][(node, "cpu")] == 0
    assert after["podium_node_capacity"][(node, "cpu")] == detect_node().capacity.cpu


def test_process_workers_report_peak_memory_through_the_executor() -> None:
    wf = Workflow.build(
        "mem",
        [TaskSpec("p", call="metrics_tasks:nap", isolation="process", resources=Resources(memory=256 << 20))],
    )
    hub = MetricsHub()
    store, executor = MemoryStore(), LocalExecutor([detect_node()])
    engine = Engine(hub.wrap_store(store), hub.wrap_executor(executor), hooks=[hub.track("m1")])
    try:
        result = engine.run(wf, run_id="m1")
    finally:
        executor.shutdown()
    assert result.ok
    snap = hub.snapshot()
    peak = snap["podium_task_peak_memory_bytes"][("mem", "p")]
    assert peak > 1 << 20  # a Python interpreter's resident memory, as the worker measured it
    assert snap["podium_task_memory_requested_bytes"][("mem", "p")] == 256 << 20
    trips, _ = snap["podium_executor_round_trip_seconds"][("local",)]
    assert trips[-1][1] == 1


def test_usage_recorded_in_event_data_flows_in_without_the_executor() -> None:
    """The contract for the runtime: ``data["usage"]`` of the event that ends an attempt."""
    hub = MetricsHub()
    usage = {"cpu_time": 1.5, "peak_memory": 300 << 20, "wall_time": 2.0, "source": "process"}
    res = {"cpu": 2.0, "memory": float(512 << 20)}
    events = [
        ev.Event(1, ev.RUN_CREATED, None, 0, 100.0, {"workflow": "w", "objective": {"alpha": 1, "beta": 1}}),
        ev.Event(2, ev.RUN_STARTED, None, 0, 100.0, {"prices": {"n1": {"cpu": 3600.0}}}),
        ev.Event(3, ev.TASK_QUEUED, "t[0]", 0, 100.0),
        ev.Event(4, ev.TASK_STARTED, "t[0]", 1, 100.5, {"node": "n1", "res": res}),
        ev.Event(5, ev.TASK_SUCCEEDED, "t[0]", 1, 102.5, {"duration": 2.0, "usage": usage}),
    ]
    hub.observe("x", events)
    snap = hub.snapshot()
    assert snap["podium_task_cpu_seconds_total"] == {("w", "t"): 1.5}
    assert snap["podium_task_cpu_requested_seconds_total"] == {("w", "t"): 4.0}
    assert snap["podium_task_peak_memory_bytes"] == {("w", "t"): 300 << 20}
    assert snap["podium_cost_total"] == {("w", "n1"): pytest.approx(4.0)}  # 2 cpu * 1/s * 2 s
    waits, total = snap["podium_task_queue_wait_seconds"][("w",)]
    assert waits[-1][1] == 1 and total == pytest.approx(0.5)
    assert snap["podium_run_objective"][("w", "x")] > 4.0  # alpha*elapsed + beta*R, live


def test_hub_is_safe_under_concurrent_scrapes() -> None:
    hub = MetricsHub()
    stop = threading.Event()
    errors: list[BaseException] = []

    def scrape() -> None:
        while not stop.is_set():
            try:
                hub.snapshot()
            except BaseException as e:  # pragma: no cover - the failure this test looks for
                errors.append(e)
                return

    t = threading.Thread(target=scrape)
    t.start()
    try:
        for i in range(3):
            _run(hub, f"c{i}")
    finally:
        stop.set()
        t.join()
    assert not errors
    assert hub.snapshot()["podium_runs_total"] == {("hubtest", "failed"): 3}


def _transitions(events: Any) -> dict[tuple[str, str, str], int]:
    return dict(Counter(("hubtest", base_name(e.task_id), STATE_OF[e.type]) for e in events if e.task_id))


def test_a_scrape_mid_run_counts_every_event_committed_so_far() -> None:
    hub = MetricsHub()
    committed: list[Any] = []
    checks: list[tuple[dict[Any, Any], dict[Any, Any]]] = []

    def look(events: Any, view: Any) -> None:  # runs after the metrics hook, with the same batch
        committed.extend(events)
        if view.finished_at is None:
            checks.append((hub.snapshot()["podium_task_transitions_total"], _transitions(committed)))

    result, store = _run(hub, "mid", [look])
    assert result.status == "failed"
    assert len(checks) > 3
    for seen, expected in checks:
        assert seen == expected
    assert hub.snapshot()["podium_task_transitions_total"] == _transitions(store.events("mid"))


def test_concurrent_runs_of_one_workflow_add_up() -> None:
    """Each run counts into its own counters; the hub adds them up at scrapes and at run ends."""
    hub = MetricsHub()
    stores: dict[str, MemoryStore] = {}

    def one(run_id: str) -> None:
        store, executor = MemoryStore(), LocalExecutor([detect_node()])
        stores[run_id] = store
        hooks = [hub.track(run_id, len(WORKFLOW.tasks))]
        try:
            Engine(hub.wrap_store(store), hub.wrap_executor(executor), hooks=hooks).run(
                WORKFLOW, run_id=run_id
            )
        finally:
            executor.shutdown()

    TRIES.clear()
    threads = [threading.Thread(target=one, args=(f"p{i}",)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    snap = hub.snapshot()
    logs = [store.events(run_id) for run_id, store in stores.items()]
    expected: Counter[tuple[str, str, str]] = Counter()
    for events in logs:
        expected.update(_transitions(events))
    assert snap["podium_task_transitions_total"] == dict(expected)
    started = sum(1 for events in logs for e in events if e.type == ev.TASK_STARTED)
    waits, _ = snap["podium_task_queue_wait_seconds"][("hubtest",)]
    assert waits[-1][1] == started
    assert snap["podium_runs_total"] == {("hubtest", "failed"): 3}
    assert snap["podium_runs_active"] == {}


def _events(tasks: int, first: int = 1, name: str = "t", end: str = ev.RUN_SUCCEEDED) -> list[ev.Event]:
    """A run part from its start: ``tasks`` tasks queued, run for 1 s on node n, then ``end``."""
    out = [ev.Event(first, ev.RUN_STARTED, None, 0, 10.0, {})]
    for i in range(tasks):
        seq = first + 1 + 3 * i
        out += [
            ev.Event(seq, ev.TASK_QUEUED, f"{name}{i}", 0, 10.0),
            ev.Event(seq + 1, ev.TASK_STARTED, f"{name}{i}", 1, 10.5, {"node": "n", "res": {"cpu": 1.0}}),
            ev.Event(seq + 2, ev.TASK_SUCCEEDED, f"{name}{i}", 1, 11.5, {"duration": 1.0}),
        ]
    return [*out, ev.Event(first + 1 + 3 * tasks, end, None, 0, 12.0, {})]


def test_ended_runs_wait_for_a_scrape_but_never_more_than_retired() -> None:
    hub = MetricsHub()
    runs = hub.RETIRED * 2 + 3
    for r in range(runs):
        created = ev.Event(1, ev.RUN_CREATED, None, 0, 10.0, {"workflow": "w"})
        hub.observe(f"r{r}", [created, *_events(2, first=2)])
        assert len(hub.retired) <= hub.RETIRED
    snap = hub.snapshot()
    assert not hub.retired
    assert snap["podium_runs_total"] == {("w", "succeeded"): runs}
    assert snap["podium_task_transitions_total"][("w", "t1", "succeeded")] == runs
    assert snap["podium_cost_total"] == {("w", "n"): pytest.approx(runs * 2 * 1.0 / 3600)}
    waits, total = snap["podium_task_queue_wait_seconds"][("w",)]
    assert waits[-1][1] == runs * 2 and total == pytest.approx(runs * 2 * 0.5)


def test_a_run_resumed_on_the_same_hook_counts_both_parts() -> None:
    from podium.runtime.view import fold

    hub = MetricsHub()
    hook = hub.track("r")
    created = ev.Event(1, ev.RUN_CREATED, None, 0, 10.0, {"workflow": "w"})
    first = [created, *_events(2, first=2, end=ev.RUN_FAILED)]
    hook(first[1:], fold(first))  # ended: waits for a scrape
    assert hub.retired == [hook.__self__]  # type: ignore[attr-defined]
    second = _events(1, first=len(first) + 1, name="u")
    hook(second, fold([*first, *second]))  # a resume before any scrape
    snap = hub.snapshot()
    assert snap["podium_runs_started_total"] == {("w",): 2}
    transitions = snap["podium_task_transitions_total"]
    assert {k: v for k, v in transitions.items() if k[2] == "running"} == {
        ("w", "t0", "running"): 1,
        ("w", "t1", "running"): 1,
        ("w", "u0", "running"): 1,
    }
    assert snap["podium_runs_total"] == {("w", "failed"): 1, ("w", "succeeded"): 1}
    assert snap["podium_cost_total"] == {("w", "n"): pytest.approx(3 * 1.0 / 3600)}


@pytest.mark.parametrize(
    ("record", "cpu", "peak"),
    [
        ({"cpu_time": 1.5, "peak_memory": 0, "wall_time": 2.0, "source": "thread"}, 1.5, None),
        ({"cpu_time": 2, "peak_memory": None, "wall_time": 2, "source": "process"}, 2.0, None),
        ({"cpu_time": -1.0, "peak_memory": 7 << 20, "wall_time": 2.0, "source": "process"}, None, 7 << 20),
        ({"cpu_time": float("nan"), "peak_memory": None, "wall_time": 2.0, "source": "x"}, None, None),
        ({"cpu_time": True, "peak_memory": 1.5e6, "wall_time": None, "source": None}, None, 1500000),
        ("not a record", None, None),
    ],
)
def test_usage_is_read_as_attempt_usage_reads_it_over_two_runs(
    record: object, cpu: float | None, peak: int | None
) -> None:
    """The hook's quick reading of a usage record agrees with ``attempt_usage`` on odd ones, and a
    label's usage adds up over runs (one settled, one live)."""
    hub = MetricsHub()
    res = {"cpu": 2.0, "memory": float(512 << 20)}
    for run, ended in (("a", True), ("b", False)):
        events = [
            ev.Event(1, ev.RUN_CREATED, None, 0, 100.0, {"workflow": "w"}),
            ev.Event(2, ev.RUN_STARTED, None, 0, 100.0, {}),
            ev.Event(3, ev.TASK_QUEUED, "t", 0, 100.0),
            ev.Event(4, ev.TASK_STARTED, "t", 1, 100.0, {"node": "n1", "res": res}),
            ev.Event(5, ev.TASK_SUCCEEDED, "t", 1, 102.0, {"duration": 2.0, "usage": record}),
        ]
        if ended:
            events.append(ev.Event(6, ev.RUN_SUCCEEDED, None, 0, 102.0, {}))
        hub.observe(run, events)
    snap = hub.snapshot()
    if cpu is None:
        assert ("w", "t") not in snap["podium_task_cpu_seconds_total"]
    else:
        assert snap["podium_task_cpu_seconds_total"] == {("w", "t"): 2 * cpu}
        assert snap["podium_task_cpu_requested_seconds_total"] == {("w", "t"): 2 * 2.0 * 2.0}
    if peak is None:
        assert ("w", "t") not in snap["podium_task_peak_memory_bytes"]
    else:
        assert snap["podium_task_peak_memory_bytes"] == {("w", "t"): peak}
        assert snap["podium_task_memory_requested_bytes"] == {("w", "t"): 512 << 20}
