"""Nodes and clusters: where tasks can run, what each node has, and what it costs.

A ``Node`` has a capacity (a ``Resources`` vector), a price per resource-hour for each
resource name (``cpu``, ``memory`` per GiB, ``gpu``, custom), and a relative ``speed`` (a task
of estimated duration d takes d / speed there). Invariants: node names are unique in a
cluster; prices and speed are non-negative / positive; cost arithmetic lives in the planner.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from podium.errors import Problem, SpecError, UnknownNameError
from podium.model.resources import Resources, format_size

#: Default price per resource-hour on the local machine (cost units): memory is per GiB.
DEFAULT_PRICES: Mapping[str, float] = MappingProxyType({"cpu": 1.0, "memory": 0.1, "gpu": 10.0})


@dataclass(frozen=True)
class Node:
    name: str
    capacity: Resources
    prices: Mapping[str, float] = field(default_factory=lambda: DEFAULT_PRICES)
    speed: float = 1.0
    labels: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        object.__setattr__(self, "prices", MappingProxyType(dict(self.prices)))
        object.__setattr__(self, "labels", MappingProxyType(dict(self.labels)))

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

    def unplaceable(self, tasks: Mapping[str, Resources]) -> list[Problem]:
        """A problem for every task whose resources no node can ever satisfy."""
        out = []
        for name, r in tasks.items():
            if any(r.fits_in(n.capacity) for n in self.nodes):
                continue
            best = min(self.nodes, key=lambda n: len(r.shortfall(n.capacity)))
            need, cap = r.as_dict(), best.capacity.as_dict()
            short = ", ".join(
                f"{k} {_fmt(k, need[k])} > {_fmt(k, cap.get(k, 0.0))}" for k in r.shortfall(best.capacity)
            )
            where = f"tasks.{name}.resources"
            out.append(Problem(where, f"no node can ever satisfy it ({short} on node {best.name})"))
        return out


def _fmt(resource: str, amount: float) -> str:
    return format_size(amount) if resource == "memory" else f"{amount:g}"
