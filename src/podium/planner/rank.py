"""Static priorities: the upward rank (longest remaining path) of every task.

``rank(t) = duration(t) + max(rank(s) for s in successors(t))``. Dispatching ready tasks by
descending rank is critical-path list scheduling. Pure: plain mappings in, a dict out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from podium.model import graph


def upward_rank(deps: Mapping[str, Iterable[str]], duration: Mapping[str, float]) -> dict[str, float]:
    """Longest path from each task to any exit, counting the task's own duration."""
    order = graph.topological_order(deps)
    down = graph.dependents(deps)
    rank: dict[str, float] = {}
    for n in reversed(order):
        succ = down[n]
        rank[n] = duration.get(n, 0.0) + (max(rank[s] for s in succ) if succ else 0.0)
    return rank
