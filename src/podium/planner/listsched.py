"""Multi-resource list scheduling on heterogeneous nodes (the one-pass heuristic).

Tasks are taken in priority order among those whose dependencies are placed (a heap); each is
put on the node and at the start that its ``Rule`` scores best, at the earliest instant at or
after its ready time when its resource vector fits next to everything already placed on that
node for its whole duration (insertion into gaps allowed). Each node keeps a resource profile:
sorted breakpoints with the usage vector in force until the next one; the last segment is empty.

With ``beta = 0`` and the weighted rule this is HEFT (earliest finish time, insertion based).
With ``beta > 0`` a task may go to a cheaper or slower node when the projected finish of its
chain (``finish + tail``) stays within the target makespan. The deadline rule takes the cheapest
node keeping the projection within the deadline; the budget rule never spends so much that the
remaining tasks could not be placed at their cheapest node, so it always meets a feasible budget.

Tasks that hold GPUs are also packed onto the node's devices, and a gang (N workers at once)
is placed all together, on one node or spread (``devicefit``); a spread gang's nodes are in
``Schedule.spread``.

Invariants: every schedule returned respects dependencies, releases, pins and each node's
capacity at every instant (and each device's); the same inputs give the same schedule.
``scan_limit`` bounds the gaps examined per node (then the task is appended after the node's
last end), which keeps huge graphs near-linear; a per (node, shape) "never fits before" time
skips the saturated past.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass, field

from podium.planner import devicefit
from podium.planner.instance import EPS, Instance
from podium.planner.profile import INF, Profile


@dataclass(frozen=True)
class Rule:
    """How a task picks its node. ``mode``: ``weighted`` | ``deadline`` | ``budget``."""

    mode: str = "weighted"
    alpha: float = 1.0
    beta: float = 0.0
    target: float = 0.0
    tail: Sequence[float] | None = None
    deadline: float = INF
    budget: float = INF


@dataclass
class Schedule:
    node: list[int]
    start: list[float]
    end: list[float]
    #: gang -> its workers per node, ``[(node, count), ...]`` (the first holds rank 0)
    spread: dict[int, list[tuple[int, int]]] = field(default_factory=dict)
    #: task holding GPUs -> the device indices of each of its workers on their nodes
    gpus: dict[int, list[tuple[int, ...]]] = field(default_factory=dict)

    def makespan(self) -> float:
        return max(self.end, default=0.0)


def list_schedule(
    inst: Instance, prio: Sequence[float], rule: Rule, scan_limit: int = 1 << 30, reverse: bool = False
) -> Schedule:
    """Place every task; higher ``prio`` first among ready tasks (ties: lower index).

    ``reverse`` schedules the mirrored problem (successors act as predecessors); used by the
    forward-backward improvement, only for requests without pins or releases.
    """
    n, k = inst.n, len(inst.dims)
    preds, succs = (inst.succs, inst.preds) if reverse else (inst.preds, inst.succs)
    floor = 0.0 if reverse else min(inst.now, 0.0)
    profiles = [Profile(k, floor) for _ in range(inst.m)]
    devs = _devices(inst, floor)
    spread: dict[int, list[tuple[int, int]]] = {}
    gpus: dict[int, list[tuple[int, ...]]] = {}
    node = [-1] * n
    start = [0.0] * n
    end = [0.0] * n
    kds = [[x for x in range(k) if q[x] > 0.0] for q in _distinct(inst)]
    rkey = inst.rkey
    tail = rule.tail if rule.tail is not None else [0.0] * n
    missing = [0] * n
    heap: list[tuple[float, int]] = []
    cur = 0.0
    for t in range(n):
        p = None if reverse else inst.pinned[t]
        if p is not None:
            d = inst.ndur(t, p[0])
            node[t], start[t], end[t] = p[0], p[1], p[1] + d
            got = _pin(inst, t, p[0], p[1], p[1] + d, profiles, devs, kds[rkey[t]])
            if got:
                gpus[t] = got
            cur = max(cur, end[t])
            missing[t] = -1
    for t in range(n):
        if missing[t] == -1:
            continue
        waits = sum(1 for q in preds[t] if missing[q] != -1)
        missing[t] = waits
        if waits == 0:
            heap.append((-prio[t], t))
    heapq.heapify(heap)
    mode, alpha, beta = rule.mode, rule.alpha, rule.beta
    target, deadline = rule.target, rule.deadline
    spent = sum(inst.cost(t, node[t]) for t in range(n) if node[t] >= 0)
    reserve = sum(inst.min_cost(t) for t in range(n) if node[t] < 0) if mode == "budget" else 0.0
    lims: dict[tuple[int, int], list[float]] = {}
    budget = rule.budget * (1 + 1e-12) + EPS
    speed = inst.speed
    while heap:
        _, t = heapq.heappop(heap)
        r = 0.0 if reverse else inst.release[t]
        for q in preds[t]:
            if end[q] > r:
                r = end[q]
        q_t = inst.req[t]
        kd = kds[rkey[t]]
        rate = inst.rate[t]
        dur = inst.dur[t]
        tl = tail[t]
        if mode == "budget":
            reserve -= inst.min_cost(t)
        if devs is not None and inst.workers[t] > 1:  # a gang: N workers at once, all or none
            s, f, alloc = devicefit.gang_fit(inst, t, r, profiles, devs)
            held = devicefit.hold_gang(inst, t, s, f, alloc, profiles, devs, kd)
            if inst.gpu[t]:
                gpus[t] = held
            node[t], start[t], end[t] = alloc[0][0], s, f
            if len(alloc) > 1:
                spread[t] = alloc
            spent += sum(rate[j] * c for j, c in alloc) * (f - s)
            cur = max(cur, f)
            _release(t, succs, missing, heap, prio)
            continue
        gpu = inst.gpu[t] if devs is not None else 0.0
        on: Sequence[devicefit.Devices] = devs if devs is not None else ()
        picked: list[int] = []
        tgt = target if target > cur else cur
        left = budget - spent - reserve
        best_key: tuple[float, ...] | None = None
        best = (-1, 0.0, 0.0, 0.0)
        rk = rkey[t]
        for j in inst.feasible[t]:
            lim = lims.get((rk, j))
            if lim is None:
                lim = lims[(rk, j)] = [c - x + EPS for c, x in zip(inst.cap[j], q_t, strict=True)]
            d = dur / speed[j]
            if gpu:
                s, picks = devicefit.gpu_fit(profiles[j], on[j], r, d, lim, kd, scan_limit, gpu, inst.gmem[t])
            else:
                s = profiles[j].fit(r, d, lim, kd, scan_limit)
            c = rate[j] * d
            f = s + d
            proj = f + tl
            if mode == "weighted":
                key: tuple[float, ...] = (alpha * (proj if proj > tgt else tgt) + beta * c, f, c)
            elif mode == "deadline":
                key = (proj if proj > deadline else deadline, c, f)
            else:
                key = (1.0 if c > left else 0.0, proj if proj > tgt else tgt, c, f)
            if best_key is None or key < best_key:
                best_key, best = key, (j, s, f, c)
                if gpu:
                    picked = picks
        j, s, f, c = best
        node[t], start[t], end[t] = j, s, f
        spent += c
        if f > cur:
            cur = f
        profiles[j].add(s, f, q_t, kd)
        if gpu:
            on[j].hold(picked, s, f, gpu, inst.gmem[t])
            gpus[t] = [tuple(on[j].gpus[i].index for i in picked)]
        _release(t, succs, missing, heap, prio)
    return Schedule(node, start, end, spread, gpus)


def _release(
    t: int,
    succs: Sequence[Sequence[int]],
    missing: list[int],
    heap: list[tuple[float, int]],
    prio: Sequence[float],
) -> None:
    """``t`` is placed: successors whose every predecessor is placed become ready."""
    for v in succs[t]:
        m = missing[v]
        if m > 0:
            missing[v] = m - 1
            if m == 1:
                heapq.heappush(heap, (-prio[v], v))


def _devices(inst: Instance, floor: float) -> list[devicefit.Devices] | None:
    """Per node its devices over time, when some task needs GPUs or several workers."""
    if not inst.special:
        return None
    return [devicefit.Devices(g, [Profile(2, floor) for _ in g]) for g in inst.devices]


def _pin(
    inst: Instance,
    t: int,
    j: int,
    s: float,
    e: float,
    profiles: Sequence[Profile],
    devs: Sequence[devicefit.Devices] | None,
    kd: Sequence[int],
) -> list[tuple[int, ...]]:
    """Record a running (pinned) task on its node, a gang as if all its workers ran there;
    return the devices of its workers (none for a task without GPUs)."""
    workers = inst.workers[t]
    profiles[j].add(s, e, [x * workers for x in inst.req[t]], kd)
    if devs is None or not inst.gpu[t]:
        return []
    return [devicefit.take(devs[j], s, e, inst.gpu[t], inst.gmem[t]) for _ in range(workers)]


def _distinct(inst: Instance) -> list[tuple[float, ...]]:
    out: dict[int, tuple[float, ...]] = {}
    for t in range(inst.n):
        out.setdefault(inst.rkey[t], inst.req[t])
    return [out[i] for i in range(len(out))]


__all__ = ["INF", "Profile", "Rule", "Schedule", "list_schedule"]
