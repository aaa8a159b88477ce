"""GPUs as devices and gangs as N slots at once, for the list scheduler.

The scalar resource profiles of ``listsched`` count a node's GPUs as one number, which cannot
tell two idle devices from two half-used ones. Here each device of a node has its own profile
over time (its share held, in millionths, and its gpu memory held), and the rules are those of
dispatch (``podium.model.devices``): a whole request takes devices idle for its whole window,
a share goes to the fullest device with room for it (best fit); ``gpu_memory`` counts per
device where its memory is known.

- ``gpu_fit``: the earliest start on a node where the scalar resources fit for the task's
  duration AND its devices can be picked; tried at the scalar fit, then at each later instant
  where the node's or a device's usage changes (a feasible start is always one of those).
- ``gang_fit``: the earliest instant (the ready time or a later change on some node) at which
  the task's N workers fit at once: on one node if one holds them all (fastest first), else
  spread over nodes fastest first. The gang runs as long as its slowest node takes, so nodes
  are admitted by speed threshold, fastest first.

Invariants: a placement returned never over-commits a node's scalar resources or a device
over its window; pure, deterministic.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence

from podium.model.devices import UNIT, Gpu, units
from podium.planner.instance import EPS, Instance
from podium.planner.profile import INF, Profile

_MANY = 1 << 30


class Devices:
    """The devices of one node over time: one two-dimensional profile each (share, memory)."""

    __slots__ = ("gpus", "profiles")

    def __init__(self, gpus: Sequence[Gpu], profiles: list[Profile]) -> None:
        self.gpus = tuple(gpus)
        self.profiles = profiles  # one two-dimensional profile per device

    def peaks(self, s: float, e: float) -> list[list[float]]:
        return [peak(p, s, e) for p in self.profiles]

    def pick(self, s: float, e: float, gpu: float, memory: int) -> list[int] | None:
        """Positions of the devices a request would get over ``[s, e)``, or None."""
        peaks = self.peaks(s, e)
        gpus = self.gpus
        if gpu >= 1:
            idle = [i for i, (u, _) in enumerate(peaks) if u <= EPS and _room(gpus[i], memory)]
            want = int(gpu)
            return idle[:want] if len(idle) >= want else None
        u = units(gpu)
        best = -1
        for i, (used, mem) in enumerate(peaks):
            d = gpus[i]
            if used + u > UNIT + EPS or (d.memory and mem + memory > d.memory):
                continue
            if best < 0 or used > peaks[best][0]:  # best fit: the fullest device with room
                best = i
        return None if best < 0 else [best]

    def slots(self, s: float, e: float, gpu: float, memory: int) -> int:
        """How many workers each asking ``gpu`` (and ``memory``) fit over ``[s, e)``."""
        if gpu <= 0:
            return _MANY
        peaks = self.peaks(s, e)
        if gpu >= 1:
            idle = sum(1 for i, (u, _) in enumerate(peaks) if u <= EPS and _room(self.gpus[i], memory))
            return idle // int(gpu)
        u = units(gpu)
        total = 0
        for d, (used, mem) in zip(self.gpus, peaks, strict=True):
            room = int((UNIT - used + EPS) // u)
            if d.memory and memory:
                room = min(room, int((d.memory - mem) // memory))
            total += max(0, room)
        return total

    def hold(self, picks: Sequence[int], s: float, e: float, gpu: float, memory: int) -> None:
        q = (float(UNIT), 0.0) if gpu >= 1 else (float(units(gpu)), float(memory))
        for i in picks:
            self.profiles[i].add(s, e, q, (0, 1))


def _room(d: Gpu, memory: int) -> bool:
    return not d.memory or memory <= d.memory


def peak(p: Profile, s: float, e: float) -> list[float]:
    """The largest usage of each dimension of ``p`` over ``[s, e)`` (at ``s`` if empty)."""
    ts, us = p.ts, p.us
    i = bisect_right(ts, s) - 1
    out = list(us[i])
    i += 1
    while i < len(ts) and ts[i] < e - EPS:
        for k, v in enumerate(us[i]):
            if v > out[k]:
                out[k] = v
        i += 1
    return out


def next_change(profiles: Sequence[Profile], s: float) -> float:
    """The first instant after ``s`` at which the usage of one of ``profiles`` changes."""
    best = INF
    for p in profiles:
        i = bisect_right(p.ts, s + EPS)
        if i < len(p.ts) and p.ts[i] < best:
            best = p.ts[i]
    return best


def gpu_fit(
    prof: Profile,
    devs: Devices,
    r: float,
    d: float,
    lim: Sequence[float],
    kd: Sequence[int],
    scan_limit: int,
    gpu: float,
    memory: int,
) -> tuple[float, list[int]]:
    """The earliest start >= ``r`` on a node (``prof``, ``devs``) for a task needing ``gpu``."""
    everything = [prof, *devs.profiles]
    s = prof.fit(r, d, lim, kd, scan_limit)
    while True:
        picks = devs.pick(s, s + d, gpu, memory)
        if picks is not None:
            return s, picks
        nxt = next_change(everything, s)
        if nxt == INF:  # compile_instance checked the idle node holds it: never reached
            raise AssertionError("a GPU task that fits an idle node found no start")
        s = prof.fit(nxt, d, lim, kd, scan_limit)


def _count(inst: Instance, t: int, j: int, prof: Profile, devs: Devices | None, s: float, e: float) -> int:
    q, cap = inst.req[t], inst.cap[j]
    u = peak(prof, s, e)
    n = _MANY
    for k, need in enumerate(q):
        if need > 0:
            n = min(n, int((cap[k] - u[k] + EPS) // need))
    if devs is not None and inst.gpu[t]:
        n = min(n, devs.slots(s, e, inst.gpu[t], inst.gmem[t]))
    return max(0, n)


def gang_fit(
    inst: Instance, t: int, r: float, profiles: Sequence[Profile], devs: Sequence[Devices] | None
) -> tuple[float, float, list[tuple[int, int]]]:
    """``(start, end, [(node, workers), ...])`` of gang ``t`` ready at ``r`` (see the docstring)."""
    want = inst.workers[t]
    feas = sorted(inst.feasible[t], key=lambda j: (-inst.speed[j], j))
    thresholds = sorted({inst.speed[j] for j in feas}, reverse=True)
    watched = [profiles[j] for j in feas] + [p for j in feas if devs is not None for p in devs[j].profiles]
    s = r
    while True:
        for v in thresholds:
            e = s + inst.dur[t] / v
            nodes = [j for j in feas if inst.speed[j] >= v - EPS]
            counts = [_count(inst, t, j, profiles[j], devs[j] if devs else None, s, e) for j in nodes]
            for j, c in zip(nodes, counts, strict=True):
                if c >= want:  # one node holds the whole gang
                    return s, e, [(j, want)]
            if sum(counts) >= want:
                alloc, left = [], want
                for j, c in zip(nodes, counts, strict=True):
                    if c and left:
                        alloc.append((j, min(c, left)))
                        left -= min(c, left)
                return s, e, alloc
        s = next_change(watched, s)
        if s == INF:  # compile_instance checked the idle nodes hold it: never reached
            raise AssertionError("a gang that fits the idle nodes found no start")


def hold_gang(
    inst: Instance,
    t: int,
    s: float,
    e: float,
    alloc: Sequence[tuple[int, int]],
    profiles: Sequence[Profile],
    devs: Sequence[Devices] | None,
    kd: Sequence[int],
) -> list[tuple[int, ...]]:
    """Record gang ``t``'s workers on their nodes (and devices) over ``[s, e)``; return the
    device indices of each worker, in rank order."""
    q = inst.req[t]
    out: list[tuple[int, ...]] = []
    for j, c in alloc:
        profiles[j].add(s, e, [x * c for x in q], kd)
        for _ in range(c):
            out.append(take(devs[j], s, e, inst.gpu[t], inst.gmem[t]) if devs is not None else ())
    return out


def take(devs: Devices, s: float, e: float, gpu: float, memory: int) -> tuple[int, ...]:
    """Pick and hold the devices of one worker over ``[s, e)``; their indices (none: ``()``)."""
    if not gpu:
        return ()
    picks = devs.pick(s, e, gpu, memory)
    if picks is None:  # only a pinned (already running) task may find none
        return ()
    devs.hold(picks, s, e, gpu, memory)
    return tuple(devs.gpus[i].index for i in picks)


def deal_whole(
    inst: Instance, node: Sequence[int], start: Sequence[float], end: Sequence[float]
) -> dict[int, list[tuple[int, ...]]]:
    """Devices for a schedule whose GPU requests are all whole (CP-SAT's): in start order,
    each task takes the lowest-numbered devices idle at its start. Never short when the node's
    GPU count is respected at every instant: the devices held at a start are exactly those of
    the tasks running then."""
    out: dict[int, list[tuple[int, ...]]] = {}
    free_at: dict[int, list[float]] = {}
    for t in sorted((t for t in range(inst.n) if inst.gpu[t]), key=lambda t: (start[t], t)):
        j = node[t]
        devices = inst.devices[j]
        busy = free_at.setdefault(j, [-INF] * len(devices))
        idle = [i for i in range(len(devices)) if busy[i] <= start[t] + EPS][: int(inst.gpu[t])]
        for i in idle:
            busy[i] = end[t]
        out[t] = [tuple(devices[i].index for i in idle)]
    return out


__all__ = ["Devices", "deal_whole", "gang_fit", "gpu_fit", "hold_gang", "next_change", "peak", "take"]
