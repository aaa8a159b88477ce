"""Cluster files (YAML) in, as a validated ``Cluster``.

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
depth limits, line and column in errors); anything malformed raises one ``SpecError`` listing
every problem with its location (``nodes[1].capacity.memory: ...``); unknown keys are errors.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from podium.errors import Problem, SpecError
from podium.model.cluster import Cluster, Node
from podium.model.devices import Gpu, parse_gpus
from podium.model.resources import Resources

NODE_KEYS = ("name", "capacity", "prices", "speed", "labels", "count", "gpus")
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
    return parse_cluster(doc.data, src)


def parse_cluster(doc: Any, source: str = "<cluster>") -> Cluster:
    problems: list[Problem] = []
    if not isinstance(doc, Mapping) or not isinstance(doc.get("nodes"), list) or not doc["nodes"]:
        raise SpecError("expected a mapping with 'nodes': a non-empty list of nodes", source)
    for k in doc:
        if k != "nodes":
            problems.append(Problem(str(k), "unknown key (a cluster file has only 'nodes')"))
    nodes: list[Node] = []
    for i, raw in enumerate(doc["nodes"]):
        nodes += _node(raw, f"nodes[{i}]", problems)
        if len(nodes) > MAX_NODES:
            break
    if len(nodes) > MAX_NODES:
        total = sum(
            r.get("count") or 1 for r in doc["nodes"] if isinstance(r, Mapping) and _whole(r.get("count"))
        )
        raise SpecError(f"the cluster has {total} nodes, over the limit of {MAX_NODES}", source)
    seen: dict[str, None] = {}
    for nd in nodes:
        if nd.name in seen:
            problems.append(Problem(f"nodes.{nd.name}", "duplicate node name"))
        seen[nd.name] = None
    if problems:
        raise SpecError(problems, source)
    try:
        return Cluster.of(nodes)
    except SpecError as e:
        raise SpecError(e.problems, source) from None


def _node(raw: Any, where: str, problems: list[Problem]) -> list[Node]:
    if not isinstance(raw, Mapping):
        problems.append(Problem(where, "expected a mapping with name, capacity, prices, speed"))
        return []
    before = len(problems)
    for k in raw:
        if k not in NODE_KEYS:
            problems.append(Problem(f"{where}.{k}", f"unknown key (use {', '.join(NODE_KEYS)})"))
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        problems.append(Problem(f"{where}.name", "a node needs a non-empty string name"))
    cap = raw.get("capacity")
    capacity = Resources(cpu=0.0)
    if not isinstance(cap, Mapping) or not cap:
        problems.append(Problem(f"{where}.capacity", "expected a mapping like {cpu: 8, memory: 32GiB}"))
    else:
        ok = True
        for k, v in cap.items():
            try:
                Resources.from_dict({str(k): v})
            except ValueError as e:
                problems.append(Problem(f"{where}.capacity.{k}", str(e)))
                ok = False
        if ok:
            capacity = Resources.from_dict({"cpu": 0, **{str(k): v for k, v in cap.items()}})
    prices: dict[str, float] = {}
    pr = raw.get("prices", {})
    if not isinstance(pr, Mapping):
        problems.append(Problem(f"{where}.prices", "expected a mapping resource -> price per hour"))
    else:
        for k, v in pr.items():
            if isinstance(v, bool) or not isinstance(v, int | float) or v < 0 or not math.isfinite(v):
                problems.append(Problem(f"{where}.prices.{k}", f"price must be a number >= 0, got {v!r}"))
            else:
                prices[str(k)] = float(v)
    speed = raw.get("speed", 1.0)
    if isinstance(speed, bool) or not isinstance(speed, int | float) or not (speed > 0) or math.isinf(speed):
        problems.append(Problem(f"{where}.speed", f"speed must be a positive number, got {speed!r}"))
        speed = 1.0
    labels = raw.get("labels", {})
    if not isinstance(labels, Mapping):
        problems.append(Problem(f"{where}.labels", "expected a mapping of strings"))
        labels = {}
    count = raw.get("count")
    if count is not None and (not _whole(count) or not 1 <= count <= MAX_NODES):
        problems.append(
            Problem(f"{where}.count", f"count must be an integer from 1 to {MAX_NODES}, got {count!r}")
        )
        count = None
    gpus: tuple[Gpu, ...] = ()
    if "gpus" in raw:
        try:
            gpus = parse_gpus(raw["gpus"])
        except ValueError as e:
            problems.append(Problem(f"{where}.gpus", str(e)))
        else:
            declared = cap.get("gpu") if isinstance(cap, Mapping) else None
            if declared is not None and declared != len(gpus):
                msg = f"capacity.gpu is {declared} but gpus lists {len(gpus)} devices: give one of them"
                problems.append(Problem(f"{where}.gpus", msg))
    if len(problems) > before:
        return []
    assert isinstance(name, str)
    lab = {str(k): str(v) for k, v in labels.items()}
    names = [name] if count is None else [f"{name}-{i}" for i in range(count)]
    return [Node(nm, capacity, prices, float(speed), lab, gpus) for nm in names]


def _whole(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)
