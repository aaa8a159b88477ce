"""Nodes and clusters: where tasks can run, what each node has, and what it costs.

A ``Node`` has a capacity (a ``Resources`` vector), a price per resource-hour for each
resource name (``cpu``, ``memory`` per GiB, ``gpu``, custom), a relative ``speed`` (a task
of estimated duration d takes d / speed there) and its GPU devices (``gpus``; by default
indices ``0 .. gpu-1``). Invariants: node names are unique in a cluster; prices and speed are
non-negative / positive; a node's gpu capacity is the number of its devices; cost arithmetic
lives in the planner.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from podium.errors import Problem, SpecError, UnknownNameError
from podium.model.devices import Gpu, per_node
from podium.model.resources import Resources, fits, format_size
from podium.model.task import TaskSpec

#: Default price per resource-hour on the local machine (cost units): memory is per GiB.
DEFAULT_PRICES: Mapping[str, float] = MappingProxyType({"cpu": 1.0, "memory": 0.1, "gpu": 10.0})


@dataclass(frozen=True)
class Node:
    name: str
    capacity: Resources
    prices: Mapping[str, float] = field(default_factory=lambda: DEFAULT_PRICES)
    speed: float = 1.0
    labels: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    gpus: tuple[Gpu, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "prices", MappingProxyType(dict(self.prices)))
        object.__setattr__(self, "labels", MappingProxyType(dict(self.labels)))
        cap = self.capacity
        if self.gpus:  # the devices say how many GPUs the node has
            object.__setattr__(self, "gpus", tuple(self.gpus))
            if cap.gpu != len(self.gpus):
                gpu = float(len(self.gpus))
                object.__setattr__(self, "capacity", Resources(cap.cpu, cap.memory, gpu, cap.custom))
        elif cap.gpu >= 1:
            object.__setattr__(self, "gpus", tuple(Gpu(i) for i in range(int(cap.gpu))))

    def holds(self, r: Resources) -> int:
        """How many tasks each holding ``r`` fit on this node when it is idle (devices included)."""
        need, cap = r.as_dict(), self.capacity.as_dict()
        if not fits(need, cap):
            return 0
        n = per_node(self.gpus, r.gpu, r.gpu_memory)
        for k, v in need.items():
            if v > 0 and k != "gpu":
                n = min(n, int(cap.get(k, 0.0) / v + 1e-9))
        return n

    def price_per_second(self, r: Resources) -> float:
        """Cost per second of holding ``r`` on this node (memory priced per GiB)."""
        return price_per_second(r.as_dict(), self.prices)


def price_per_second(amounts: Mapping[str, float], prices: Mapping[str, float]) -> float:
    """Cost per second of holding ``amounts`` (resource name -> amount, memory in bytes) at
    ``prices`` (per resource-hour, memory per GiB-hour)."""
    total = 0.0
    for k, v in amounts.items():
        p = prices.get(k, 0.0)
        if p:
            total += p * (v / 1024**3 if k == "memory" else v)
    return total / 3600.0


@dataclass(frozen=True)
class Cluster:
    nodes: tuple[Node, ...]

    @classmethod
    def of(cls, nodes: Iterable[Node]) -> Cluster:
        ns = tuple(nodes)
        problems = []
        seen: set[str] = set()
        for n in ns:
            if n.name in seen:
                problems.append(Problem(f"nodes.{n.name}", "duplicate node name"))
            seen.add(n.name)
            if n.speed <= 0:
                problems.append(Problem(f"nodes.{n.name}.speed", "speed must be positive"))
            for k, v in n.prices.items():
                if v < 0:
                    problems.append(Problem(f"nodes.{n.name}.prices.{k}", "price must be >= 0"))
        if not ns:
            problems.append(Problem("nodes", "a cluster needs at least one node"))
        if problems:
            raise SpecError(problems)
        return cls(ns)

    def node(self, name: str) -> Node:
        for n in self.nodes:
            if n.name == name:
                return n
        raise UnknownNameError(f"no node named {name!r} (nodes: {', '.join(n.name for n in self.nodes)})")

    def unplaceable(
        self, tasks: Mapping[str, Resources], workers: Mapping[str, int] | None = None
    ) -> list[Problem]:
        """A problem for every task whose resources no node can ever satisfy (a gang of
        ``workers[name]`` workers: that the nodes together can never hold)."""
        out = []
        for name, r in tasks.items():
            gang = (workers or {}).get(name, 1)
            if gang > 1:
                room = sum(n.holds(r) for n in self.nodes)
                if room < gang:
                    msg = f"its {gang} workers never fit at once: the nodes hold {room} of them"
                    out.append(Problem(f"tasks.{name}.workers", msg))
                continue
            if any(n.holds(r) for n in self.nodes):
                continue
            if any(r.fits_in(n.capacity) for n in self.nodes):  # the devices do not fit
                msg = f"no node has GPUs that can ever hold gpu={r.gpu:g}"
                if r.gpu_memory:
                    msg += f" with gpu_memory={format_size(r.gpu_memory)} on each"
                out.append(Problem(f"tasks.{name}.resources", msg))
                continue
            best = min(self.nodes, key=lambda n: len(r.shortfall(n.capacity)))
            need, cap = r.as_dict(), best.capacity.as_dict()
            short = ", ".join(
                f"{k} {_fmt(k, need[k])} > {_fmt(k, cap.get(k, 0.0))}" for k in r.shortfall(best.capacity)
            )
            where = f"tasks.{name}.resources"
            out.append(Problem(where, f"no node can ever satisfy it ({short} on node {best.name})"))
        return out


def unplaceable_tasks(tasks: Iterable[TaskSpec], nodes: Sequence[Node]) -> list[Problem]:
    """A problem (``tasks.NAME.resources`` or ``.workers``) for every task that no node can
    ever hold, and every gang the nodes can never hold together; each distinct resource vector
    and gang size is checked once, so a 100,000-task workflow of few shapes costs a few checks."""
    ok: dict[tuple[Resources, int], bool] = {}
    bad: dict[str, Resources] = {}
    gangs: dict[str, int] = {}
    for t in tasks:
        r, n = t.resources, t.workers
        fit = ok.get((r, n))
        if fit is None:
            if n > 1:
                fit = sum(node.holds(r) for node in nodes) >= n
            elif r.gpu:
                fit = any(node.holds(r) for node in nodes)
            else:
                fit = any(r.fits_in(node.capacity) for node in nodes)
            ok[(r, n)] = fit
        if not fit:
            bad[t.name], gangs[t.name] = r, n
    return Cluster(tuple(nodes)).unplaceable(bad, gangs) if bad and nodes else []


def _fmt(resource: str, amount: float) -> str:
    return format_size(amount) if resource == "memory" else f"{amount:g}"
