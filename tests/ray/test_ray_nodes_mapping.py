"""How entries of ``ray.nodes()`` become Podium nodes (pure: plain dicts in, no Ray needed)."""

from __future__ import annotations

from podium.executors.ray.cluster import capacity, ray_bundle, ray_nodes, ray_options
from podium.model.cluster import DEFAULT_PRICES, Cluster, Node
from podium.model.resources import Resources


def _raw(node_id: str, alive: bool = True, labels: dict | None = None, **resources: float) -> dict:
    base = {"CPU": 4.0, "memory": 8.0 * 1024**3, "object_store_memory": 1e9, "node:10.0.0.1": 1.0}
    return {"NodeID": node_id, "Alive": alive, "Labels": labels or {}, "Resources": {**base, **resources}}


def test_names_come_from_label_then_naming_resource_then_node_id() -> None:
    nodes = ray_nodes(
        [
            _raw("aa" * 28, labels={"podium-node": "gpu-1", "ray.io/node-id": "aa" * 28}, GPU=2.0),
            _raw("bb" * 28, **{"podium-node:cpu-7": 1.0}),
            _raw("cc" * 28),
        ]
    )
    by_id = {n.node_id: n for n in nodes}
    assert by_id["aa" * 28].name == "gpu-1"
    assert by_id["bb" * 28].name == "cpu-7"
    assert by_id["cc" * 28].name == "cc" * 28
    assert "ray.io/node-id" not in by_id["aa" * 28].node.labels  # Ray's own labels are not copied


def test_capacity_maps_standard_resources_and_keeps_custom_ones() -> None:
    cap = capacity(
        {
            "CPU": 4.0,
            "GPU": 1.0,
            "memory": 2.0 * 1024**3,
            "tpu": 2.0,
            "node:1.2.3.4": 1.0,
            "object_store_memory": 1e9,
            "accelerator_type:A100": 1.0,
            "podium-node:x": 1.0,
        }
    )
    assert cap == Resources(cpu=4.0, memory=2 * 1024**3, gpu=1.0, custom=(("tpu", 2.0),))
    r = Resources(cpu=2.0, memory=1024, gpu=0.5, custom=(("tpu", 1.0),))
    assert ray_options(r) == {"num_cpus": 2.0, "num_gpus": 0.5, "memory": 1024, "resources": {"tpu": 1.0}}
    assert ray_bundle(r) == {"CPU": 2.0, "GPU": 0.5, "memory": 1024.0, "tpu": 1.0}
    assert ray_bundle(Resources(cpu=0.0)) == {}


def test_dead_nodes_are_kept_apart_and_live_duplicates_get_unique_names() -> None:
    nodes = ray_nodes(
        [
            _raw("11" * 28, alive=False, labels={"podium-node": "w"}),
            _raw("22" * 28, labels={"podium-node": "w"}),
            _raw("33" * 28, labels={"podium-node": "w"}),
        ]
    )
    live = sorted(n.name for n in nodes if n.alive)
    assert live == ["w", "w@33333333"]  # the replacement of a dead "w" keeps the name
    assert [n.name for n in nodes if not n.alive] == ["w"]


def test_prices_come_from_the_cluster_file_by_name_labels_or_resources() -> None:
    described = Cluster.of(
        [
            Node("gpu-1", Resources(cpu=1.0), prices={"gpu": 2.5}, speed=3.0),
            Node("zone-b", Resources(cpu=1.0), prices={"cpu": 0.5}, labels={"zone": "b"}),
            Node("tpu-box", Resources(cpu=1.0, custom=(("tpu", 1.0),)), prices={"tpu": 7.0}),
        ]
    )
    nodes = {
        n.name: n.node
        for n in ray_nodes(
            [
                _raw("aa" * 28, labels={"podium-node": "gpu-1"}),
                _raw("bb" * 28, labels={"podium-node": "b1", "zone": "b"}),
                _raw("cc" * 28, labels={"podium-node": "t1"}, tpu=4.0),
                _raw("dd" * 28, labels={"podium-node": "plain"}),
            ],
            described,
        )
    }
    assert nodes["gpu-1"].prices["gpu"] == 2.5 and nodes["gpu-1"].speed == 3.0
    assert nodes["b1"].prices["cpu"] == 0.5 and nodes["b1"].labels["zone"] == "b"
    assert nodes["t1"].prices["tpu"] == 7.0 and nodes["t1"].capacity.custom == (("tpu", 4.0),)
    assert dict(nodes["plain"].prices) == dict(DEFAULT_PRICES) and nodes["plain"].speed == 1.0
