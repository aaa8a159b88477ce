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

Invariants: every schedule returned respects dependencies, releases, pins and each node's
capacity at every instant; the same inputs give the same schedule. ``scan_limit`` bounds the
gaps examined per node (then the task is appended after the node's last end), which keeps huge
graphs near-linear; a per (node, shape) "never fits before" time skips the saturated past.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass

from podium.planner.instance import EPS, Instance

INF = float("inf")


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

    def makespan(self) -> float:
        return max(self.end, default=0.0)


class Profile:
    """Usage of one node over time: ``us[i]`` is in force on ``[ts[i], ts[i+1])``."""

    __slots__ = ("floor", "horizon", "ts", "us")

    def __init__(self, k: int, floor: float = 0.0) -> None:
        self.floor = floor  # no start is ever asked for before this
        self.ts: list[float] = [-INF]
        self.us: list[list[float]] = [[0.0] * k]
        self.horizon = 0.0  # the node is empty from here on

    def fit(self, r: float, d: float, lim: Sequence[float], kd: Sequence[int], scan_limit: int) -> float:
        """Earliest start >= r where usage + request <= capacity (``lim = cap - req``) for ``d``.

        After ``scan_limit`` failed segments, falls back to the earliest time from which the
        request fits for ever (found scanning back from the node's last end).
        """
        if d <= 0.0 or r >= self.horizon:
            return r
        s = self._scan(r, d, lim, kd, scan_limit)
        return self._tail_fit(r, lim, kd, scan_limit) if s is None else s

    def _tail_fit(self, r: float, lim: Sequence[float], kd: Sequence[int], scan_limit: int) -> float:
        """The earliest time >= r from which the request fits for ever (scanning back from the end)."""
        ts, us = self.ts, self.us
        j = len(ts) - 1
        steps = 0
        while j > 0 and ts[j] > r:
            u = us[j - 1]
            for k in kd:
                if u[k] > lim[k]:
                    return ts[j]
            j -= 1
            steps += 1
            if steps > scan_limit:
                return self.horizon
        return r if r > ts[j] else ts[j]

    def _scan(
        self, r: float, d: float, lim: Sequence[float], kd: Sequence[int], scan_limit: int
    ) -> float | None:
        ts, us = self.ts, self.us
        j = bisect_right(ts, r) - 1
        s = r
        last = len(ts) - 1
        steps = 0
        while True:
            u = us[j]
            for k in kd:
                if u[k] > lim[k]:
                    j += 1
                    s = ts[j]
                    steps += 1
                    if steps > scan_limit:
                        return None
                    break
            else:
                if j == last or ts[j + 1] >= s + d - EPS:
                    return s
                j += 1

    def add(self, s: float, e: float, q: Sequence[float], kd: Sequence[int]) -> None:
        if e <= s:
            return
        ts, us = self.ts, self.us
        i = bisect_right(ts, s) - 1
        if ts[i] != s:
            i += 1
            ts.insert(i, s)
            us.insert(i, list(us[i - 1]))
        j = bisect_left(ts, e, i)
        if j == len(ts) or ts[j] != e:
            ts.insert(j, e)
            us.insert(j, list(us[j - 1]))
        for x in range(i, j):
            u = us[x]
            for k in kd:
                u[k] += q[k]
        if e > self.horizon:
            self.horizon = e


def list_schedule(
    inst: Instance, prio: Sequence[float], rule: Rule, scan_limit: int = 1 << 30, reverse: bool = False
) -> Schedule:
    """Place every task; higher ``prio`` first among ready tasks (ties: lower index).

    ``reverse`` schedules the mirrored problem (successors act as predecessors); used by the
    forward-backward improvement, only for requests without pins or releases.
    """
    n, k = inst.n, len(inst.dims)
    preds, succs = (inst.succs, inst.preds) if reverse else (inst.preds, inst.succs)
    profiles = [Profile(k, 0.0 if reverse else min(inst.now, 0.0)) for _ in range(inst.m)]
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
            profiles[p[0]].add(p[1], p[1] + d, inst.req[t], kds[rkey[t]])
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
        j, s, f, c = best
        node[t], start[t], end[t] = j, s, f
        spent += c
        if f > cur:
            cur = f
        profiles[j].add(s, f, q_t, kd)
        for v in succs[t]:
            m = missing[v]
            if m > 0:
                missing[v] = m - 1
                if m == 1:
                    heapq.heappush(heap, (-prio[v], v))
    return Schedule(node, start, end)


def _distinct(inst: Instance) -> list[tuple[float, ...]]:
    out: dict[int, tuple[float, ...]] = {}
    for t in range(inst.n):
        out.setdefault(inst.rkey[t], inst.req[t])
    return [out[i] for i in range(len(out))]
