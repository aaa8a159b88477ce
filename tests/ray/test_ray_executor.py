"""RayExecutor on a real three-node Ray cluster: nodes, placement, data, failures.

Where a task ran is read twice and compared: from the durable event log (``TaskStarted.node``,
the Podium node the engine chose) and from the task itself (the Ray node id it reported).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from ray_helpers import task

from podium.errors import CANCELLED, TIMEOUT, USER_ERROR, InvalidValueError, ShutDownError, TaskFailedError
from podium.executors.ray import RayExecutor
from podium.model import Const, Ref, Resources, TaskSpec, Workflow
from podium.model import events as ev
from podium.model.cluster import Cluster, Node
from podium.model.task import TaskCall
from podium.runtime.engine import Engine
from podium.runtime.view import fold
from podium.store.sqlite import SqliteStore
from podium.types import AttemptFuture, meta_of, outcome_of

pytestmark = pytest.mark.ray


def _call(name: str, node: str, timeout: float | None = None, **kwargs: Any) -> TaskCall:
    spec = TaskSpec(name, call=task(name), timeout=timeout)
    return TaskCall("r1", name, 1, spec, kwargs, {}, Resources(cpu=1.0), node, timeout)


def test_ray_nodes_become_podium_nodes(ray_cluster, registry) -> None:
    described = Cluster.of(
        [
            Node("node-a", Resources(cpu=1.0), prices={"cpu": 3.0}, speed=2.0),  # by name
            Node("labelled", Resources(cpu=1.0), prices={"cpu": 4.0}, labels={"podium-node": "head"}),
            Node("b-like", Resources(cpu=1.0, custom=(("nodeB", 1.0),)), prices={"cpu": 5.0}),
        ]
    )
    ex = RayExecutor(cluster=described, registry=registry)
    try:
        nodes = {n.name: n for n in ex.nodes()}
        assert set(nodes) == {"head", "node-a", "node-b"}
        for name, custom in (("head", "head"), ("node-a", "nodeA"), ("node-b", "nodeB")):
            cap = nodes[name].capacity
            assert cap.cpu == 1.0
            assert dict(cap.custom) == {custom: 1.0}  # Ray's node:<ip> and object store are not capacity
            assert cap.memory > 0
            assert ex.node_id(name) == ray_cluster.nodes[name].node_id
        assert nodes["node-a"].prices["cpu"] == 3.0 and nodes["node-a"].speed == 2.0
        assert nodes["head"].prices["cpu"] == 4.0
        assert nodes["node-b"].prices["cpu"] == 5.0
    finally:
        ex.shutdown()


def test_tasks_run_on_the_nodes_the_engine_chose(executor, tmp_path: Path) -> None:
    r"""
    at_head (head=1)   at_a (nodeA=1)   at_b (nodeB=1)   free0..free3 (cpu=1, anywhere)
    big (1 MiB, nodeA=1) -> measure(big) (nodeB=1): the bytes reach node-b through Ray's object store
    """
    one_mib = 1024 * 1024

    def pinned(name: str, fn: str, res: str, **args: Any) -> TaskSpec:
        return TaskSpec(name, call=task(fn), args=args, resources=Resources(cpu=1.0, custom=((res, 1.0),)))

    specs = [
        pinned("at_head", "where", "head", tag=Const("h")),
        pinned("at_a", "where", "nodeA", tag=Const("a")),
        pinned("at_b", "where", "nodeB", tag=Const("b")),
        *[TaskSpec(f"free{i}", call=task("where"), args={"tag": Const(str(i))}) for i in range(4)],
        pinned("big", "blob", "nodeA", n=Const(one_mib)),
        pinned("measure", "measure", "nodeB", data=Ref("big")),
    ]
    wf = Workflow.build("placement", specs)
    store = SqliteStore(str(tmp_path / "podium.db"))
    try:
        result = Engine(store, executor).run(wf)
        events = store.events(result.run_id)
    finally:
        store.close()
    assert result.ok, [e.data["error"]["message"] for e in events if "error" in e.data]
    assert fold(events).state == "succeeded"
    started = {e.task_id: e.data["node"] for e in events if e.type == ev.TASK_STARTED}
    assert set(started) == {s.name for s in specs}
    for name, node in started.items():
        if name == "big":
            continue
        assert result[name]["node_id"] == executor.node_id(node), f"{name} ran off its planned node {node}"
    assert started["at_head"] == "head" and started["at_a"] == "node-a" and started["at_b"] == "node-b"
    assert started["measure"] == "node-b"
    assert result["measure"]["len"] == one_mib
    assert result["measure"]["sum"] == sum(bytes(range(256)) * 4)
    assert result["big"] == bytes(range(256)) * (one_mib // 256)  # the driver got the value too
    assert executor.held() >= 1  # ... and kept its ObjectRef for the downstream task


def test_user_error_crosses_as_a_record(executor) -> None:
    fut = executor.submit(_call("boom", "node-a", x=3))
    with pytest.raises(TaskFailedError) as info:
        fut.result(timeout=60)
    rec = info.value.record
    assert rec.kind == USER_ERROR and rec.type == "ValueError"
    assert "bad x=3" in rec.message
    assert "boom" in rec.traceback  # the worker's traceback travels as text
    # the run loop's contract: an AttemptFuture whose outcome and metadata it reads in place
    assert isinstance(fut, AttemptFuture)
    assert outcome_of(fut)[1] is info.value
    meta = meta_of(fut)
    assert meta is not None and meta["node_id"] == executor.node_id("node-a") and meta["node"] == "node-a"
    assert rec.frame.startswith("ray_tasks.py:") or "/ray_tasks.py:" in rec.frame
    assert meta["log"].text == "about to fail with x=3\n"  # captured on the worker


def test_timeout_and_kill_stop_the_ray_task(executor) -> None:
    timed = executor.submit(_call("nap", "head", timeout=0.5, seconds=300))
    killed = executor.submit(_call("nap", "node-b", seconds=300))
    time.sleep(0.5)
    executor.kill(killed)
    with pytest.raises(TaskFailedError) as t_info:
        timed.result(timeout=60)
    with pytest.raises(TaskFailedError) as k_info:
        killed.result(timeout=60)
    assert t_info.value.record.kind == TIMEOUT and "timed out after 0.5s" in t_info.value.record.message
    assert k_info.value.record.kind == CANCELLED
    # both Ray tasks are gone, not just abandoned: their 1-cpu nodes run new tasks at once
    again = [executor.submit(_call("nap", n, seconds=0)) for n in ("head", "node-b")]
    assert [f.result(timeout=60) for f in again] == [0, 0]


def test_unknown_node_and_a_shut_down_executor_are_refused(executor) -> None:
    """As by every executor: an unknown node is an ``InvalidValueError`` (a ``ValueError``),
    use after shutdown a ``ShutDownError`` (a ``RuntimeError``); nothing is submitted."""
    with pytest.raises(InvalidValueError, match="unknown node 'nowhere'") as info:
        executor.submit(_call("where", "nowhere", tag="x"))
    assert isinstance(info.value, ValueError)
    executor.shutdown()
    with pytest.raises(ShutDownError, match="executor 'ray' is shut down") as down:
        executor.submit(_call("where", "head", tag="x"))
    assert isinstance(down.value, RuntimeError)


def test_calls_reuse_warm_worker_actors_and_a_kill_replaces_one(executor) -> None:
    first = executor.submit(_call("where", "node-a", tag="1"))
    first.result(timeout=60)
    second = executor.submit(_call("where", "node-a", tag="2"))
    second.result(timeout=60)
    pid = first.podium_meta["pid"]
    assert second.podium_meta["pid"] == pid  # the same warm worker process ran both calls
    killed = executor.submit(_call("nap", "node-a", seconds=300))
    time.sleep(0.5)
    executor.kill(killed)
    with pytest.raises(TaskFailedError) as info:
        killed.result(timeout=60)
    assert info.value.record.kind == CANCELLED
    after = executor.submit(_call("where", "node-a", tag="3"))
    assert after.result(timeout=60)["node_id"] == executor.node_id("node-a")
    assert after.podium_meta["pid"] != pid  # the killed actor's process is gone; a new one ran it
