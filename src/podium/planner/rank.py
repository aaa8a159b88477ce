"""Static priorities: the upward rank (longest remaining path) of every task.

``rank(t) = duration(t) + max(rank(s) for s in successors(t))``. Dispatching ready tasks by
descending rank is critical-path list scheduling. Pure: plain mappings in, a dict out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from podium.model import graph


def upward_rank(
    deps: Mapping[str, Iterable[str]],
    duration: Mapping[str, float],
    order: Sequence[str] | None = None,
    down: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, float]:
    """Longest path from each task to any exit, counting the task's own duration.
    ``order`` (topological) and ``down`` (dependents) may be passed in when already known."""
    if order is None:
        order = graph.topological_order(deps)
    if down is None:
        down = graph.dependents(deps)
    rank: dict[str, float] = {}
    get = duration.get
    for n in reversed(order):
        best = 0.0
        for s in down[n]:
            r = rank[s]
            if r > best:
                best = r
        rank[n] = get(n, 0.0) + best
    return rank
