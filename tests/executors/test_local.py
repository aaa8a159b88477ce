"""detect_node and LocalExecutor: node detection with overrides, routing by isolation and node."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from executor_helpers import make_call, wait_until

from podium.errors import SpecError, TaskFailedError
from podium.executors import LocalExecutor, detect_node
from podium.model import Node, Resources
from podium.model.cluster import DEFAULT_PRICES
from podium.registry import Registry
from podium.types import Executor


def test_detect_node_measures_this_machine() -> None:
    node = detect_node()
    assert node.name == "local" and node.capacity.cpu == len(os.sched_getaffinity(0))
    assert node.capacity.memory > 0 and node.capacity.gpu == 0  # no GPU (nor pynvml) here
    assert dict(node.prices) == dict(DEFAULT_PRICES)


def test_detect_node_overrides_replace_detected_values() -> None:
    node = detect_node("box", {"cpu": 4, "memory": "8GiB", "gpu": 1, "tpu": 2}, prices={"cpu": 2.0})
    assert node.name == "box"
    assert node.capacity == Resources(cpu=4, memory=8 * 1024**3, gpu=1, custom=(("tpu", 2.0),))
    assert dict(node.prices) == {"cpu": 2.0}


def test_detect_node_bad_override_names_the_node() -> None:
    with pytest.raises(SpecError, match=r"nodes\.box: bad resource override .*malformed size '8 gigs'"):
        detect_node("box", {"memory": "8 gigs"})


@pytest.fixture
def local(registry: Registry) -> Iterator[LocalExecutor]:
    nodes = [detect_node("a", {"cpu": 2}), detect_node("b", {"cpu": 1})]
    ex = LocalExecutor(nodes, registry=registry)
    yield ex
    ex.shutdown()


def test_local_executor_routes_by_isolation_and_node(local: LocalExecutor) -> None:
    assert isinstance(local, Executor) and [n.name for n in local.nodes()] == ["a", "b"]
    assert local.submit(make_call("pid", node="a")).result(timeout=60) == os.getpid()
    in_process = local.submit(make_call("pid", isolation="process", node="b")).result(timeout=60)
    assert in_process != os.getpid()


def test_local_executor_rejects_unknown_node(local: LocalExecutor) -> None:
    with pytest.raises(ValueError, match="unknown node 'c'"):
        local.submit(make_call("pid", node="c"))


def test_local_executor_kill_reaches_the_right_pool(local: LocalExecutor) -> None:
    proc = local.submit(make_call("nap", isolation="process", node="b", s=60))
    thread = local.submit(make_call("nap", task_id="nap2", node="a", s=2))
    assert wait_until(lambda: "nap" in local.pids())
    local.kill(proc)
    local.kill(thread)
    for f in (proc, thread):
        exc = f.exception(timeout=60)
        assert isinstance(exc, TaskFailedError) and exc.record.kind == "cancelled"
    assert wait_until(lambda: local.pids() == {})


def test_local_executor_defaults_to_this_machine() -> None:
    ex = LocalExecutor(registry=Registry())
    try:
        (node,) = ex.nodes()
        assert isinstance(node, Node) and node.name == "local"
    finally:
        ex.shutdown()
