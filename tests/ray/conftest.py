"""A real multi-node Ray cluster on this machine, started once per test session.

``ray.cluster_utils.Cluster``: a head node (1 cpu, custom resource ``head``) and two worker
nodes (1 cpu each, custom resources ``nodeA`` / ``nodeB``), each labelled with its Podium name
(``podium-node``: head, node-a, node-b). Everything listens on 127.0.0.1 only
(``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` before ``ray`` is imported), uses token auth with a
random token, a private temp dir (``RAY_TMPDIR``) and ports Ray picks, and is torn down at the end.
Tests that change the topology (remove a node, restart the cluster) restore it before they end.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import pytest
from ray_helpers import TASKS_FILE, TASKS_MODULE

from podium.registry import Registry

#: Podium name -> (custom resources, cpus) of each node of a cluster.
Topology = dict[str, tuple[dict[str, float], int]]
#: The test cluster's topology.
TOPOLOGY: Topology = {
    "head": ({"head": 1.0}, 1),
    "node-a": ({"nodeA": 1.0}, 1),
    "node-b": ({"nodeB": 1.0}, 1),
}

#: Ray's health checks as the tests usually run them: a killed node is declared dead in about
#: 1.5 s instead of Ray's default 15 s or more (tests of Podium's own detection use the defaults).
TUNED_HEALTH = {"health_check_period_ms": 500, "health_check_failure_threshold": 3}

if importlib.util.find_spec("ray") is None:  # pragma: no cover - the ray extra is not installed
    if os.environ.get("CI"):
        raise RuntimeError("the Ray tests need ray: scripts/test.sh installs it with the test extra")
    collect_ignore_glob = ["test_*.py"]


class RayHarness:
    """The session's cluster: start, stop, remove and add nodes by Podium name."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.cluster: Any = None
        self.nodes: dict[str, Any] = {}  # Podium name -> ray._private.node.Node
        self.starts = 0
        self.topology = TOPOLOGY
        self.gpus: dict[str, int] = {}

    def start(
        self, topology: Topology = TOPOLOGY, tuned: bool = True, gpus: dict[str, int] | None = None
    ) -> None:
        """Start a cluster of ``topology`` (the head is ``"head"``), with ``TUNED_HEALTH`` or,
        unless ``tuned``, Ray's default health checks; ``gpus`` declares GPUs on nodes by name
        (Ray counts them; no device is needed)."""
        from ray.cluster_utils import Cluster

        import ray

        self.starts += 1
        temp_dir = os.path.join(self.root, f"ray{self.starts}")
        os.makedirs(temp_dir)
        self.topology = topology
        self.gpus = dict(gpus or {})
        resources, cpus = topology["head"]
        head_args: dict[str, Any] = {
            "num_cpus": cpus,
            "num_gpus": self.gpus.get("head", 0),
            "resources": resources,
            "labels": {"podium-node": "head"},
            "include_dashboard": False,
            "temp_dir": temp_dir,
        }
        if tuned:
            head_args["_system_config"] = TUNED_HEALTH
        self.cluster = Cluster(initialize_head=True, connect=False, head_node_args=head_args)
        self.nodes = {"head": self.cluster.head_node}
        for name in topology:
            if name != "head":
                self.add(name)
        ray.init(address=self.cluster.address, log_to_driver=False)
        self.cluster.wait_for_nodes()

    def add(self, name: str) -> Any:
        resources, cpus = self.topology[name]
        node = self.cluster.add_node(
            num_cpus=cpus, num_gpus=self.gpus.get(name, 0), resources=resources, labels={"podium-node": name}
        )
        self.nodes[name] = node
        return node

    def remove(self, name: str) -> str:
        """Kill node ``name`` (no grace); return its Ray node id."""
        node = self.nodes.pop(name)
        self.cluster.remove_node(node, allow_graceful=False)
        return node.node_id

    def wait_dead(self, node_id: str, timeout: float = 30.0) -> None:
        import ray

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not any(n["NodeID"] == node_id and n["Alive"] for n in ray.nodes()):
                return
            time.sleep(0.1)
        raise AssertionError(f"Ray still lists node {node_id} as alive after {timeout}s")

    def stop(self) -> None:
        import ray

        ray.shutdown()
        if self.cluster is not None:
            self.cluster.shutdown()
            self.cluster = None

    def restart(
        self, topology: Topology = TOPOLOGY, tuned: bool = True, gpus: dict[str, int] | None = None
    ) -> None:
        self.stop()
        self.start(topology, tuned, gpus)


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[RayHarness]:
    root = tempfile.mkdtemp(prefix="podium-ray-")  # short: Ray's socket paths live under it
    os.environ.update(
        {
            "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
            "RAY_USAGE_STATS_ENABLED": "0",
            "RAY_TMPDIR": root,
            "RAY_AUTH_MODE": "token",
            "RAY_AUTH_TOKEN": secrets.token_hex(32),
        }
    )
    os.makedirs(os.path.join(root, "ray"))  # where Ray writes its current-cluster address
    harness = RayHarness(root)
    harness.start()
    try:
        yield harness
    finally:
        with contextlib.suppress(Exception):
            harness.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def registry() -> Registry:
    reg = Registry()
    reg.allow(TASKS_MODULE, TASKS_FILE)
    return reg


@pytest.fixture
def executor(ray_cluster: RayHarness, registry: Registry) -> Iterator[Any]:
    from podium.executors.ray import RayExecutor

    ex = RayExecutor(registry=registry)
    yield ex
    ex.shutdown()
