"""Graph algorithms as free functions over a plain mapping ``node -> iterable of deps``.

Invariants: no function mutates its input; every order returned is deterministic (ties
broken by the mapping's insertion order); cycles are reported with the nodes that form them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

from podium.errors import CycleError


def dependents(deps: Mapping[str, Iterable[str]]) -> dict[str, list[str]]:
    """Invert ``deps``: node -> the nodes that depend on it (only for known nodes)."""
    out: dict[str, list[str]] = {n: [] for n in deps}
    for n, ds in deps.items():
        for d in ds:
            if d in out:
                out[d].append(n)
    return out


def find_cycle(deps: Mapping[str, Iterable[str]]) -> list[str] | None:
    """A cycle as a list of nodes ``[a, b, ..., a]``, or None. Unknown deps are ignored."""
    white, grey, black = 0, 1, 2
    color = dict.fromkeys(deps, white)
    for root in deps:
        if color[root] != white:
            continue
        stack: list[tuple[str, Iterable[str]]] = [(root, iter(deps[root]))]
        path = [root]
        color[root] = grey
        while stack:
            node, it = stack[-1]
            for d in it:
                if d not in color:
                    continue
                if color[d] == grey:
                    return [*path[path.index(d) :], d]
                if color[d] == white:
                    color[d] = grey
                    stack.append((d, iter(deps[d])))
                    path.append(d)
                    break
            else:
                color[node] = black
                stack.pop()
                path.pop()
    return None


def topological_order(deps: Mapping[str, Iterable[str]]) -> list[str]:
    """Kahn's order (deps first). Raises ``ValueError`` naming a cycle if there is one."""
    indeg = {n: 0 for n in deps}
    for n, ds in deps.items():
        indeg[n] = sum(1 for d in ds if d in indeg)
    down = dependents(deps)
    ready = [n for n, k in indeg.items() if k == 0]
    order: list[str] = []
    i = 0
    while i < len(ready):
        n = ready[i]
        i += 1
        order.append(n)
        for m in down[n]:
            indeg[m] -= 1
            if indeg[m] == 0:
                ready.append(m)
    if len(order) != len(indeg):
        cycle = find_cycle(deps) or []
        raise CycleError(cycle)
    return order


def ancestors(deps: Mapping[str, Iterable[str]], node: str) -> set[str]:
    seen: set[str] = set()
    stack = list(deps.get(node, ()))
    while stack:
        n = stack.pop()
        if n in seen or n not in deps:
            continue
        seen.add(n)
        stack.extend(deps[n])
    return seen


def descendants(deps: Mapping[str, Iterable[str]], node: str) -> set[str]:
    down = dependents(deps)
    seen: set[str] = set()
    stack = list(down.get(node, ()))
    while stack:
        n = stack.pop()
        if n in seen:
            continue
        seen.add(n)
        stack.extend(down[n])
    return seen


def critical_path(
    deps: Mapping[str, Iterable[str]], items: Mapping[str, Sequence[str]], weight: Callable[[str], float]
) -> tuple[list[str], float]:
    """The critical path of a run: the longest path through its task instances, each weighted
    by ``weight(instance)`` (the seconds it spent running), as (instances first to last, total).

    ``deps``: task name -> the names it depends on; ``items``: an expanded map's name -> its
    item ids. An expanded map is its items: each item depends on what the map depends on, and
    a dependent of the map on every item; the map itself is never on the path. Ties go to the
    larger id, so the answer is deterministic. Empty (``[], 0.0``) without tasks.
    """

    def instances(name: str) -> Sequence[str]:
        return items.get(name) or ((name,) if name in deps else ())

    preds: dict[str, list[str]] = {}
    for name, ds in deps.items():
        before = [i for d in ds for i in instances(d)]
        for tid in instances(name):
            preds[tid] = before
    best: dict[str, tuple[float, str | None]] = {}
    for tid in topological_order(preds):
        before_best = max(((best[p][0], p) for p in preds[tid] if p in best), default=(0.0, None))
        best[tid] = (before_best[0] + weight(tid), before_best[1])
    if not best:
        return [], 0.0
    end = max(best, key=lambda k: (best[k][0], k))
    path: list[str] = []
    cur: str | None = end
    while cur is not None:
        path.append(cur)
        cur = best[cur][1]
    path.reverse()
    return path, best[end][0]
