"""Lower bounds that hold for every feasible schedule of an instance.

- makespan: the longest chain where each task runs at the fastest node that can hold it
  (releases and pins included), and for each resource the total work divided by the cluster's
  speed-weighted capacity (``sum_t q_t * d_t <= T * sum_n cap_n * speed_n``);
- both makespan bounds are rounded up when all times are integral (see ``integral_times``);
- cost: every task on its cheapest node that can hold it;
- F: ``alpha * LB(T) + beta * LB(R)`` (each term is a bound on its own).

Invariant: pure functions of an ``Instance``; never larger than any feasible value.
"""

from __future__ import annotations

import math

from podium.planner.instance import Instance


def heads(inst: Instance) -> list[float]:
    """Earliest start of each task if resources were unlimited and every task ran on its fastest node."""
    head = [0.0] * inst.n
    for t in inst.topo:
        p = inst.pinned[t]
        if p is not None:
            head[t] = p[1]
            continue
        h = inst.release[t]
        for q in inst.preds[t]:
            e = head[q] + inst.min_dur(q)
            if e > h:
                h = e
        head[t] = h
    return head


def makespan_bound(inst: Instance) -> float:
    return max(makespan_bounds(inst))


def makespan_bounds(inst: Instance) -> tuple[float, float]:
    """``(critical path, work / capacity)`` bounds on the makespan."""
    if inst.n == 0:
        return 0.0, 0.0
    head = heads(inst)
    path = max(head[t] + inst.min_dur(t) for t in range(inst.n))
    lb = 0.0
    free = [t for t in range(inst.n) if inst.pinned[t] is None]
    for k in range(len(inst.dims)):
        capacity = sum(inst.cap[j][k] * inst.speed[j] for j in range(inst.m))
        work = sum(inst.req[t][k] * inst.dur[t] * inst.workers[t] for t in free)
        if capacity > 0 and work > 0:
            lb = max(lb, inst.now + work / capacity)
    if inst.n * inst.m <= 2_000_000 and integral_times(inst):
        path, lb = math.ceil(path - 1e-9), math.ceil(lb - 1e-9)
    return path, lb


def integral_times(inst: Instance) -> bool:
    """True when every node duration, release and pin is a whole number of seconds: then some
    optimal schedule is left-shifted with integral times, so a makespan bound may be rounded up."""
    vals = [inst.dur[t] / inst.speed[j] for t in range(inst.n) for j in inst.feasible[t]]
    vals += inst.release + [p[1] for p in inst.pinned if p is not None]
    return all(abs(v - round(v)) <= 1e-9 * max(1.0, abs(v)) for v in vals)


def cost_bound(inst: Instance) -> float:
    return sum(inst.min_cost(t) for t in range(inst.n))
