"""Cluster files (YAML or JSON) in, as a validated ``Cluster``; every key is documented, with a
complete example, in ``docs/cluster.md``.

```yaml
nodes:
  - name: cpu-a
    capacity: {cpu: 8, memory: 32GiB, gpu: 0, tpu: 0}
    prices: {cpu: 0.05, memory: 0.01, gpu: 2.5}   # per resource-hour; memory per GiB-hour
    speed: 1.0
    labels: {zone: a}
    count: 2            # optional: replicate as cpu-a-0, cpu-a-1
  - name: gpu-a
    capacity: {cpu: 16, memory: 64GiB}
    gpus: [0, 1, 2, 3]  # or a count (4), or [{index: 0, uuid: GPU-..., memory: 80GiB}, ...]
```

Invariants: read with the same bounded safe reader as specs (no anchors or aliases, size and
depth limits); anything malformed raises one ``SpecError`` listing every problem with its
place (``cluster.yaml:7:15: nodes[1].capacity.memory: ...``, as spec problems are given);
unknown keys are errors with a "did you mean" when a known key is close, and so is a resource
name that is a variant of a standard one (``cpus``, ``Memory``), which would otherwise be taken
for a custom resource and leave the node without cpus.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from podium.errors import Problem, SpecError
from podium.load.report import position
from podium.load.schema import did_you_mean
from podium.load.yamlsafe import Document, render_path
from podium.model.cluster import Cluster, Node
from podium.model.devices import Gpu, parse_gpus
from podium.model.resources import STANDARD, Resources

TOP_KEYS = ("nodes",)
NODE_KEYS = ("name", "capacity", "prices", "speed", "labels", "count", "gpus")
GPU_KEYS = ("index", "uuid", "memory")
#: Most nodes a cluster file may describe (``count`` included).
MAX_NODES = 10_000


def load_cluster(path: str | Path) -> Cluster:
    src = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise SpecError(f"cannot read cluster file ({e.strerror or e})", src) from None
    from podium.load.yamlsafe import read_document

    doc = read_document(data, src, "json" if src.endswith(".json") else "yaml")
    return parse_cluster(doc.data, src, doc)


class _Reader:
    """Where each problem is: ``file:line:col: path`` with a document, else the dotted path."""

    def __init__(self, doc: Document | None) -> None:
        self.doc = doc
        self.problems: list[Problem] = list(doc.problems) if doc is not None else []

    def err(self, path: tuple[str | int, ...], message: str, key: bool = False) -> None:
        where = self.doc.where(path, key) if self.doc is not None else render_path(path)
        self.problems.append(Problem(where, message))

    def unknown(
        self, value: Mapping[Any, Any], allowed: tuple[str, ...], path: tuple[str | int, ...], what: str
    ) -> None:
        for k in value:
            if k not in allowed:
                meant = _resource(str(k)) if what == "a node" else None
                if meant is not None:  # ``cpu: 8`` beside ``name:``
                    hint = f": amounts go in capacity ({{{meant}: ...}})"
                else:
                    hint = did_you_mean(str(k), allowed) or f" (use {', '.join(allowed)})"
                self.err((*path, str(k)), f"unknown key {str(k)!r} in {what}{hint}", key=True)

    def resource_names(self, value: Mapping[Any, Any], path: tuple[str | int, ...]) -> set[Any]:
        """A name that looks like a standard resource but is not one (``cpus``, ``CPU``, ``mem``)
        would be taken for a custom resource: say which one was meant; the names said."""
        said = set()
        for k in value:
            meant = _resource(str(k))
            if meant is not None and meant != k:
                msg = (
                    f"{str(k)!r} is not a resource name (did you mean {meant!r}?); "
                    f"a custom resource needs a name unlike {', '.join(STANDARD)}"
                )
                self.err((*path, str(k)), msg, key=True)
                said.add(k)
        return said


def _resource(name: str) -> str | None:
    """The standard resource ``name`` is or is a variant of (``cpus``, ``CPU``, ``mem``), else None."""
    low = name.lower().replace("-", "_")
    for cand in (low, low.removesuffix("s"), {"mem": "memory", "ram": "memory", "cores": "cpu"}.get(low, "")):
        if cand in STANDARD:
            return cand
    return None


def parse_cluster(doc: Any, source: str = "<cluster>", document: Document | None = None) -> Cluster:
    """The cluster a cluster file's data describes; ``document`` (from ``read_document``) gives
    problems their line and column."""
    r = _Reader(document)
    src = None if document is not None else source  # a document's places name the file already
    if not isinstance(doc, Mapping) or not isinstance(doc.get("nodes"), list) or not doc["nodes"]:
        if isinstance(doc, Mapping):
            r.unknown(doc, TOP_KEYS, (), "a cluster file")
        r.err(
            ("nodes",) if isinstance(doc, Mapping) and "nodes" in doc else (),
            "expected a mapping with 'nodes': a non-empty list of nodes",
        )
        raise SpecError(sorted(r.problems, key=position), src)
    r.unknown(doc, TOP_KEYS, (), "a cluster file")
    nodes: list[Node] = []
    origin: list[int] = []  # the entry of each node
    for i, raw in enumerate(doc["nodes"]):
        made = _node(raw, ("nodes", i), r)
        nodes += made
        origin += [i] * len(made)
        if len(nodes) > MAX_NODES:
            break
    if len(nodes) > MAX_NODES:
        total = sum(
            raw["count"] if isinstance(raw, Mapping) and _whole(raw.get("count")) else 1
            for raw in doc["nodes"]
        )
        raise SpecError(f"the cluster has {total} nodes, over the limit of {MAX_NODES}", source)
    seen: dict[str, int] = {}
    told: set[int] = set()
    for nd, i in zip(nodes, origin, strict=True):
        if nd.name in seen and i not in told:
            told.add(i)
            r.err(("nodes", i, "name"), f"duplicate node name {nd.name!r} (also nodes[{seen[nd.name]}])")
        seen.setdefault(nd.name, i)
    if r.problems:
        raise SpecError(sorted(r.problems, key=position), src)
    try:
        return Cluster.of(nodes)
    except SpecError as e:
        raise SpecError(e.problems, source) from None


def _node(raw: Any, where: tuple[str | int, ...], r: _Reader) -> list[Node]:
    if not isinstance(raw, Mapping):
        r.err(where, "expected a mapping with name, capacity, prices, speed")
        return []
    before = len(r.problems)
    r.unknown(raw, NODE_KEYS, where, "a node")
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        r.err((*where, "name"), "a node needs a non-empty string name")
    cap = raw.get("capacity")
    capacity = Resources(cpu=0.0)
    if cap is None:
        r.err(where, "a node needs a capacity, like capacity: {cpu: 8, memory: 32GiB}")
    elif not isinstance(cap, Mapping) or not cap:
        r.err((*where, "capacity"), "expected a mapping like {cpu: 8, memory: 32GiB}")
    else:
        said = r.resource_names(cap, (*where, "capacity"))
        ok = not said
        for k, v in cap.items():
            if k in said:
                continue
            try:
                Resources.from_dict({str(k): v})
            except ValueError as e:
                r.err((*where, "capacity", str(k)), str(e))
                ok = False
        if ok:
            capacity = Resources.from_dict({"cpu": 0, **{str(k): v for k, v in cap.items()}})
    prices: dict[str, float] = {}
    pr = raw.get("prices", {})
    if not isinstance(pr, Mapping):
        r.err((*where, "prices"), "expected a mapping resource -> price per hour")
    else:
        r.resource_names(pr, (*where, "prices"))
        for k, v in pr.items():
            if isinstance(v, bool) or not isinstance(v, int | float) or v < 0 or not math.isfinite(v):
                r.err((*where, "prices", str(k)), f"price must be a number >= 0, got {v!r}")
            else:
                prices[str(k)] = float(v)
    speed = raw.get("speed", 1.0)
    if isinstance(speed, bool) or not isinstance(speed, int | float) or not (speed > 0) or math.isinf(speed):
        r.err((*where, "speed"), f"speed must be a positive number, got {speed!r}")
        speed = 1.0
    labels = raw.get("labels", {})
    if not isinstance(labels, Mapping):
        r.err((*where, "labels"), "expected a mapping of strings")
        labels = {}
    count = raw.get("count")
    if count is not None and (not _whole(count) or not 1 <= count <= MAX_NODES):
        r.err((*where, "count"), f"count must be an integer from 1 to {MAX_NODES}, got {count!r}")
        count = None
    gpus: tuple[Gpu, ...] = ()
    if "gpus" in raw:
        devices = raw["gpus"]
        if isinstance(devices, list):  # unknown keys said here, with a suggestion; the rest checked
            for i, item in enumerate(devices):
                if isinstance(item, Mapping):
                    r.unknown(item, GPU_KEYS, (*where, "gpus", i), "a GPU")
            devices = [
                {k: v for k, v in d.items() if k in GPU_KEYS} if isinstance(d, Mapping) else d
                for d in devices
            ]
        try:
            gpus = parse_gpus(devices)
        except ValueError as e:
            r.err((*where, "gpus"), str(e))
        else:
            declared = cap.get("gpu") if isinstance(cap, Mapping) else None
            if declared is not None and declared != len(gpus):
                msg = f"capacity.gpu is {declared} but gpus lists {len(gpus)} devices: give one of them"
                r.err((*where, "gpus"), msg)
    if len(r.problems) > before:
        return []
    assert isinstance(name, str)
    lab = {str(k): str(v) for k, v in labels.items()}
    names = [name] if count is None else [f"{name}-{i}" for i in range(count)]
    return [Node(nm, capacity, prices, float(speed), lab, gpus) for nm in names]


def _whole(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)
