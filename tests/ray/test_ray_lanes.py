"""Ray lanes on a real three-node cluster: short tasks queue behind running calls on their
worker actor and travel in batches; what waits on a killed or timed-out actor fails unrun.

Verdicts come from the event log (capacity per node, one start per task), from a ledger file
each task run appends to (how often each really ran) and from the executor's lane counters.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from ray_helpers import task

from podium.errors import CANCELLED, TIMEOUT, WORKER_LOST, TaskFailedError
from podium.model import Const, Resources, TaskSpec, Workflow
from podium.model import events as ev
from podium.model.task import TaskCall
from podium.runtime.engine import Engine
from podium.store.sqlite import SqliteStore

pytestmark = pytest.mark.ray


def _call(name: str, node: str, timeout: float | None = None, **kwargs: Any) -> TaskCall:
    spec = TaskSpec(name, call=task(name), timeout=timeout)
    return TaskCall("r1", name, 1, spec, kwargs, {}, Resources(cpu=1.0), node, timeout)


def test_short_tasks_queue_in_lanes_and_run_once(executor, tmp_path: Path) -> None:
    """300 short tasks on three 1-cpu nodes: after the first round trips are measured, tasks
    queue behind running calls and leave in batches; each ran exactly once, and the log never
    shows more than one task running on a node."""
    ledger = tmp_path / "ledger"
    tasks = [
        TaskSpec(
            f"t{i}",
            call=task("count"),
            args={"tag": Const(f"t{i}"), "ledger": Const(str(ledger))},
            resources=Resources(cpu=1.0),
        )
        for i in range(300)
    ]
    store = SqliteStore(str(tmp_path / "podium.db"))
    try:
        result = Engine(store, executor).run(Workflow.build("ray-lanes", tasks))
        events = store.events(result.run_id)
    finally:
        store.close()
    assert result.ok, result.status
    wrong = {i: result[f"t{i}"] for i in range(300) if result[f"t{i}"] != f"T{i}"}
    assert not wrong, wrong
    ran = Counter(ledger.read_text().split())
    assert ran == Counter(f"t{i}" for i in range(300))
    running: dict[str, str] = {}
    for e in events:
        if e.type == ev.TASK_STARTED:
            assert e.task_id not in running
            assert e.data["node"] not in running.values(), "two tasks running on one 1-cpu node"
            running[e.task_id] = e.data["node"]
        elif e.type in (ev.TASK_SUCCEEDED, ev.TASK_FAILED):
            running.pop(e.task_id, None)
    assert Counter(e.task_id for e in events if e.type == ev.TASK_STARTED) == Counter(t.name for t in tasks)
    stats = executor.lane_stats()
    assert stats["queued"] >= 30, stats  # tasks waited behind running calls ...
    assert stats["batches"] < stats["calls"], stats  # ... and several left in one batch
    assert stats["lanes"] <= 9, stats  # idle lanes were reused, not remade (300 tasks)


def test_killing_a_call_fails_what_waits_behind_it_unrun(executor, tmp_path: Path) -> None:
    ledger = tmp_path / "ledger"
    signals = tmp_path / "signals"
    signals.mkdir()
    head = executor.submit(_call("hold", "node-a", tag="head", signals=str(signals)))
    behind = [
        executor.submit(_call("count", "node-a", tag=f"b{i}", ledger=str(ledger)), follow=head)
        for i in range(3)
    ]
    deadline = time.monotonic() + 60
    while not list(signals.glob("head.*.started")) and time.monotonic() < deadline:
        time.sleep(0.02)
    executor.kill(head)
    with pytest.raises(TaskFailedError) as info:
        head.result(timeout=30)
    assert info.value.record.kind == CANCELLED
    for f in behind:
        with pytest.raises(TaskFailedError) as info:
            f.result(timeout=30)
        assert info.value.record.kind == WORKER_LOST
    assert not ledger.exists()  # none of them ran
    # the node is still usable: a new lane takes the next call
    assert executor.submit(_call("where", "node-a", tag="after")).result(timeout=60)["tag"] == "after"


def test_a_queued_call_times_out_from_when_it_started(executor, tmp_path: Path) -> None:
    """A call with a timeout queued behind a 1 s call: its deadline runs from its own start
    (the actor replies before starting it), so it times out after about 1 + 0.5 s, and the
    call queued behind it fails unrun with the actor."""
    ledger = tmp_path / "ledger"
    first = executor.submit(_call("nap", "node-b", seconds=1.0))
    timed = executor.submit(_call("nap", "node-b", timeout=0.5, seconds=30.0), follow=first)
    last = executor.submit(_call("count", "node-b", tag="last", ledger=str(ledger)), follow=timed)
    t0 = time.monotonic()
    assert first.result(timeout=60) == 1.0
    with pytest.raises(TaskFailedError) as info:
        timed.result(timeout=60)
    waited = time.monotonic() - t0
    assert info.value.record.kind == TIMEOUT
    assert 1.4 < waited < 20, waited  # not before its own start + 0.5 s, far before its 30 s
    with pytest.raises(TaskFailedError) as info:
        last.result(timeout=60)
    assert info.value.record.kind == WORKER_LOST
    assert not ledger.exists()


def test_replies_are_handled_in_the_order_their_batches_were_sent(executor) -> None:
    """A batch's reply can reach the driver in another thread before the reply of the batch
    sent before it is handled: results still go to the calls they belong to."""
    from concurrent.futures import Future

    from podium.executors.ray.base import Attempt, Lane

    lane = Lane(None, executor.node_id("node-a"))
    lane.warm = True
    atts = []
    for tag in ("a", "b"):
        att = Attempt(_call("where", "node-a", tag=tag), Future())
        att.lane = lane
        atts.append(att)
    lane.assigned.extend(atts)
    lane.inflight = lane.sent = 2
    replies = []
    for tag in ("a", "b"):
        reply: Future[Any] = Future()
        reply.set_result(([(f"value-{tag}", {"node_id": lane.node_id, "seconds": 0.0})], 0))
        replies.append(reply)
    executor._lanes.on_reply(lane, 1, replies[1], None)  # b's reply first: it must wait for a's
    assert not atts[0].future.done() and not atts[1].future.done()
    executor._lanes.on_reply(lane, 0, replies[0], None)
    assert atts[0].future.result(timeout=5) == "value-a"
    assert atts[1].future.result(timeout=5) == "value-b"
