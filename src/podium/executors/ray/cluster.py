"""Ray nodes as Podium nodes: names, capacities, prices, and the Ray options of a resource vector.

Pure functions over the plain dicts ``ray.nodes()`` returns; nothing here imports ``ray``.

- **Name.** A Ray node's Podium name is its label ``podium-node`` (``ray start --labels
  podium-node=gpu-1``: ``key=value`` pairs; Ray's JSON form there is deprecated), else the
  name of a custom resource ``podium-node:<name>``, else its Ray node id. A node that dies and
  is replaced by one carrying the same label keeps its Podium name, so plans and cluster files
  stay valid across node replacement.
- **Capacity.** ``CPU`` -> cpu, ``GPU`` -> gpu, ``memory`` -> memory (bytes); other resources are
  kept as custom resources, except Ray's own bookkeeping (``object_store_memory``,
  ``node:<ip>``, ``accelerator_type:*``) and the naming resource.
- **Prices and speed** come from an optional cluster file (``podium.load.cluster``): the first
  cluster node whose name equals the Ray node's name, else whose labels all match the Ray
  node's labels, else whose custom resources the Ray node all has. Unmatched nodes get the
  default prices and speed 1.

Invariants: only live nodes become Podium nodes; live names are unique (a duplicate label gets
``@<first 8 hex of its node id>`` appended, deterministically); capacities come from Ray, never
from the cluster file.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from podium.model.cluster import DEFAULT_PRICES, Cluster, Node
from podium.model.resources import Resources

#: Label naming a Ray node for Podium.
NODE_LABEL = "podium-node"
#: Prefix of a custom resource naming a Ray node for Podium (``podium-node:gpu-1``).
NODE_RESOURCE_PREFIX = "podium-node:"
#: Ray resources that are bookkeeping, not capacity a task asks for.
_IGNORED = ("object_store_memory",)
_IGNORED_PREFIXES = ("node:", "accelerator_type:", NODE_RESOURCE_PREFIX)


@dataclass(frozen=True)
class RayNode:
    """One Ray node as Podium sees it: Ray's node id, its Podium name and node, alive or not."""

    node_id: str
    node: Node
    alive: bool

    @property
    def name(self) -> str:
        return self.node.name


def node_name(raw: Mapping[str, Any], label: str = NODE_LABEL) -> str:
    """The Podium name of one entry of ``ray.nodes()`` (label, naming resource, else node id)."""
    labels = raw.get("Labels") or {}
    name = labels.get(label)
    if isinstance(name, str) and name:
        return name
    for k in raw.get("Resources") or {}:
        if k.startswith(NODE_RESOURCE_PREFIX) and len(k) > len(NODE_RESOURCE_PREFIX):
            return k[len(NODE_RESOURCE_PREFIX) :]
    return str(raw["NodeID"])


def capacity(resources: Mapping[str, float]) -> Resources:
    """A Podium capacity from Ray's resource totals of a node."""
    custom: dict[str, float] = {}
    for k, v in resources.items():
        if k in ("CPU", "GPU", "memory") or k in _IGNORED or k.startswith(_IGNORED_PREFIXES):
            continue
        custom[k] = float(v)
    return Resources(
        cpu=float(resources.get("CPU", 0.0)),
        memory=int(resources.get("memory", 0)),
        gpu=float(resources.get("GPU", 0.0)),
        custom=tuple(sorted(custom.items())),
    )


def ray_options(r: Resources) -> dict[str, Any]:
    """The ``.options(...)`` of a Ray task holding ``r`` (num_cpus, num_gpus, memory, resources)."""
    opts: dict[str, Any] = {"num_cpus": r.cpu, "num_gpus": r.gpu}
    if r.memory:
        opts["memory"] = r.memory
    custom = {k: v for k, v in r.custom if v}
    if custom:
        opts["resources"] = custom
    return opts


def ray_bundle(r: Resources) -> dict[str, float]:
    """The placement-group bundle holding ``r`` (Ray resource names)."""
    b: dict[str, float] = {}
    if r.cpu:
        b["CPU"] = r.cpu
    if r.gpu:
        b["GPU"] = r.gpu
    if r.memory:
        b["memory"] = float(r.memory)
    b.update({k: v for k, v in r.custom if v})
    return b


def match(name: str, labels: Mapping[str, str], cap: Resources, cluster: Cluster | None) -> Node | None:
    """The cluster-file node describing a Ray node (by name, labels, then custom resources)."""
    if cluster is None:
        return None
    for n in cluster.nodes:
        if n.name == name:
            return n
    for n in cluster.nodes:
        if n.labels and all(labels.get(k) == v for k, v in n.labels.items()):
            return n
    have = {k for k, v in cap.custom if v}
    for n in cluster.nodes:
        want = {k for k, v in n.capacity.custom if v}
        if want and want <= have:
            return n
    return None


def ray_nodes(
    raw_nodes: Sequence[Mapping[str, Any]],
    cluster: Cluster | None = None,
    label: str = NODE_LABEL,
    suspect: Collection[str] = (),
) -> list[RayNode]:
    """Every entry of ``ray.nodes()`` as a ``RayNode`` (dead ones too), live names made unique;
    nodes whose id is in ``suspect`` count as not alive (a replacement then takes their name)."""
    out: list[RayNode] = []
    taken: set[str] = set()

    def alive_of(raw: Mapping[str, Any]) -> bool:
        return bool(raw.get("Alive", False)) and str(raw["NodeID"]) not in suspect

    for raw in sorted(raw_nodes, key=lambda r: (not alive_of(r), str(r["NodeID"]))):
        node_id = str(raw["NodeID"])
        alive = alive_of(raw)
        name = node_name(raw, label)
        if alive and name in taken:
            name = f"{name}@{node_id[:8]}"
        if alive:
            taken.add(name)
        labels = {str(k): str(v) for k, v in (raw.get("Labels") or {}).items() if not k.startswith("ray.io/")}
        cap = capacity(raw.get("Resources") or {})
        described = match(name, labels, cap, cluster)
        prices = described.prices if described is not None else DEFAULT_PRICES
        speed = described.speed if described is not None else 1.0
        merged = {**(described.labels if described is not None else {}), **labels}
        out.append(RayNode(node_id, Node(name, cap, prices, speed, merged), alive))
    return out
