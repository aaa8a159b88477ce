"""Exact / anytime optimisation with OR-Tools CP-SAT for small and medium instances.

Time is discretised in ticks (1 s when every node duration, release and pin is integral, else
the heuristic makespan / 100,000) and node durations are rounded up, so every CP-SAT schedule
maps back to a feasible real one. Two models:

- *unary pool*: all nodes identical and no two tasks can ever share a node (each task needs more
  than half of some resource), no pins: one cumulative of capacity M with demand 1, which is
  exact (any such profile can be dealt onto M machines, done afterwards by start order) and far
  faster than per-node alternatives;
- *general*: per task a start and end, one optional interval per node that can hold it (exactly
  one present), one cumulative per node and resource, cost as a sum of presence literals.

The objective ``alpha*T + beta*R`` (or R under a deadline, or T under a budget) is scaled to
integers; the solver is warm-started with the heuristic schedule (``add_hint``) and start domains
are cut to ``[head, UB - tail]``. A deadline bounds the makespan variable, so every end. Costs
are exact integers when a decimal multiple of 1/3600 makes them so (``_cost_unit``): then a
budget is enforced exactly and R's bound under a deadline is exact; otherwise costs are rounded
up and the budget down, and the bound is not used. Its ``best_objective_bound`` becomes a lower bound
on the real objective after subtracting the worst-case rounding error (zero when the data are
integral).

GPUs: the model counts a node's GPUs as one cumulative resource. For whole GPUs that is exact
(at any instant the tasks running can be dealt distinct idle devices, taken in start order), so
those stay in the model. Shares of a device (``gpu`` below 1), ``gpu_memory`` and gangs are not
modelled: with any of them ``solve`` returns ``None`` and the plan is the heuristic's, which
packs devices and gangs (``devicefit``).

Invariants: ortools is imported here only, lazily; ``solve`` returns ``None`` when the model is
too large, ortools is missing, the instance has GPU shares, gpu memory or gangs, or no
better-or-equal solution was found; every schedule it
returns meets the deadline or budget; ``bound`` is a valid lower bound or ``-inf``, and
``optimal`` means the solver proved its schedule optimal for the real problem.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from podium.model.workflow import Objective
from podium.planner.bounds import heads
from podium.planner.devicefit import deal_whole
from podium.planner.instance import EPS, Instance
from podium.planner.listsched import Schedule

if TYPE_CHECKING:
    from ortools.sat.python import cp_model

#: Largest number of (task, node) alternatives the general model is built for.
MAX_ALTERNATIVES = 6_000


@dataclass
class ExactResult:
    schedule: Schedule | None
    bound: float  # lower bound on the minimised value (-inf if none)
    optimal: bool


def available() -> bool:
    try:
        import ortools.sat.python.cp_model  # noqa: F401
    except ImportError:
        return False
    return True


def _integral(x: float) -> bool:
    return abs(x - round(x)) <= 1e-9 * max(1.0, abs(x))


def _unary_pool(inst: Instance) -> bool:
    if inst.m < 1 or any(p is not None for p in inst.pinned):
        return False
    c0, s0 = inst.cap[0], inst.speed[0]
    if any(inst.cap[j] != c0 or inst.speed[j] != s0 for j in range(inst.m)):
        return False
    if any(inst.rate[t][j] != inst.rate[t][0] for t in range(inst.n) for j in range(inst.m)):
        return False
    return all(
        any(q > c / 2 + EPS for q, c in zip(inst.req[t], c0, strict=True)) or inst.dur[t] == 0
        for t in range(inst.n)
    )


def solve(
    inst: Instance,
    objective: Objective,
    hint: Schedule,
    hint_value: float,
    time_limit: float,
    makespan_lb: float = 0.0,
    seed: int = 0,
    workers: int = 2,
) -> ExactResult | None:
    """Optimise with CP-SAT within ``time_limit`` s; ``hint_value`` is the hint's minimised value."""
    if time_limit <= 0 or not available() or inst.n == 0:
        return None
    if any(0 < g < 1 for g in inst.gpu) or any(inst.gmem) or any(w > 1 for w in inst.workers):
        return None  # device shares and gangs: not in this model (see the module docstring)
    pool = _unary_pool(inst)
    weighted = objective.deadline is None and objective.budget is None
    if pool and weighted and objective.alpha == 0:
        return None  # the cost is the same for every schedule: the heuristic is optimal
    if not pool and sum(len(f) for f in inst.feasible) > MAX_ALTERNATIVES:
        return None
    from ortools.sat.python import cp_model

    nd = [[inst.dur[t] / inst.speed[j] for j in range(inst.m)] for t in range(inst.n)]
    values = [x for row in nd for x in row] + inst.release + [p[1] for p in inst.pinned if p is not None]
    upper = hint.makespan()
    tick = max(upper, 1e-9) / 100_000
    exact_time = False
    for f in (1, 2, 4, 5, 10, 20, 100, 1000):
        if max(values, default=0.0) * f < 1e8 and all(_integral(x * f) for x in values):
            tick, exact_time = 1.0 / f, True
            break
    dt = [[math.ceil(x / tick - 1e-9) if x > 0 else 0 for x in row] for row in nd]
    rt = [math.ceil(r / tick - 1e-9) for r in inst.release]
    hs = [math.ceil(s / tick - 1e-9) for s in hint.start]
    slack = 0 if exact_time else 2 * inst.n
    serial = max(rt, default=0) + sum(max(row) for row in dt) + slack
    hint_ticks = max((hs[t] + dt[t][hint.node[t]] for t in range(inst.n)), default=0) + slack
    if objective.deadline is not None:
        horizon = math.floor(objective.deadline / tick + 1e-9)
    elif weighted and objective.beta > 0 and not pool:
        horizon = (
            serial
            if objective.alpha == 0
            else min(serial, math.floor(hint_value / (objective.alpha * tick)) + 1)
        )
        horizon = max(horizon, hint_ticks)
    else:
        horizon = hint_ticks
    m = cp_model.CpModel()
    head = heads(inst)
    tail_t = _tails(inst, dt)
    starts, ends = [], []
    for t in range(inst.n):
        lo = max(rt[t], math.floor(head[t] / tick + 1e-9))
        hi = max(lo, horizon - tail_t[t])
        if inst.pinned[t] is not None:
            lo = hi = rt[t]
        starts.append(m.new_int_var(lo, hi, f"s{t}"))
        ends.append(m.new_int_var(lo, hi + max(dt[t]), f"e{t}"))
    for t in range(inst.n):
        for q in inst.preds[t]:
            m.add(starts[t] >= ends[q])
    lb_ticks = math.ceil(makespan_lb / tick - 1e-9) if exact_time else math.floor(makespan_lb / tick)
    # A deadline is a hard limit on every end, not only on starts: ``tail`` counts each task at its
    # fastest node, so a start within ``horizon - tail`` can still end past the deadline on a slower one.
    top = horizon if objective.deadline is not None else horizon + max((max(r) for r in dt), default=0)
    makespan = m.new_int_var(min(lb_ticks, top), top, "T")
    for t in range(inst.n):
        m.add(makespan >= ends[t])
    lits: dict[tuple[int, int], cp_model.IntVar] = {}
    resource_exact = True
    if pool:
        ivs = [m.new_interval_var(starts[t], dt[t][0], ends[t], f"i{t}") for t in range(inst.n)]
        m.add_cumulative(ivs, [1] * inst.n, inst.m)
    else:
        per_node: list[list[tuple[cp_model.IntervalVar, int]]] = [[] for _ in range(inst.m)]
        for t in range(inst.n):
            p = inst.pinned[t]
            row = []
            for j in [p[0]] if p is not None else inst.feasible[t]:
                lit = m.new_bool_var(f"x{t}_{j}")
                iv = m.new_optional_interval_var(starts[t], dt[t][j], ends[t], lit, f"i{t}_{j}")
                lits[(t, j)] = lit
                per_node[j].append((iv, t))
                row.append(lit)
            m.add_exactly_one(row)
        for j in range(inst.m):
            for k in range(len(inst.dims)):
                demand, cap, ok = _scaled(inst, [t for _, t in per_node[j]], j, k)
                resource_exact = resource_exact and ok
                items = [(iv, q) for (iv, _), q in zip(per_node[j], demand, strict=True) if q > 0]
                if items and sum(q for _, q in items) > cap:
                    m.add_cumulative([iv for iv, _ in items], [q for _, q in items], cap)
    cost_terms = [(lit, inst.cost(t, j)) for (t, j), lit in lits.items()]
    fixed_cost = sum(inst.cost(t, 0) for t in range(inst.n)) if pool else 0.0
    alpha, beta = objective.alpha, objective.beta
    sure = resource_exact
    unit = _cost_unit([c for _, c in cost_terms], inst.n) if cost_terms else None
    if objective.deadline is not None:
        alpha, beta = 0.0, 1.0
        sure = sure and exact_time
    elif objective.budget is not None:
        alpha, beta = 1.0, 0.0
        if unit is not None:
            # exact: a schedule meets the budget in the model exactly when it does in real money
            w, limit = [round(c * unit) for _, c in cost_terms], objective.budget * unit
        else:
            # costs rounded up and the budget down: every model solution meets the budget, but
            # the model may miss schedules close to it, so its bound proves nothing
            csc = 1e6 / max(1e-12, sum(c for _, c in cost_terms))
            w, limit = [math.ceil(c * csc - 1e-9) for _, c in cost_terms], objective.budget * csc
            sure = sure and limit >= sum(w)
        if limit < sum(w):
            m.add(sum(q * lit for q, (lit, _) in zip(w, cost_terms, strict=True)) <= _floor(limit))
    t_err = 0.0 if exact_time else 2 * inst.n * tick  # up-rounded durations and starts
    if pool or beta == 0.0 or not cost_terms:
        # minimise the makespan in ticks; ``scale`` maps the bound back to seconds
        scale = 1.0 / tick
        a_int, terms = 1, []
        err = t_err
    elif alpha == 0.0 and unit is not None:
        # beta * R alone, with R in exact integer units: the solver's bound is the real bound
        scale, a_int, err = unit / beta, 0, 0.0
        terms = [(lit, round(c * unit)) for lit, c in cost_terms]
    else:
        a_real = alpha * tick
        total = a_real * horizon + beta * sum(c for _, c in cost_terms)
        scale = 1e7 / max(total, 1e-12)
        if a_real > 0:
            scale = max(scale, 1000.0 / a_real)
        a_int = round(a_real * scale)
        terms = [(lit, round(beta * c * scale)) for lit, c in cost_terms]
        err = (0.5 * horizon * (1 if a_real > 0 else 0) + 0.5 * inst.n) / scale + alpha * t_err
    m.minimize(a_int * makespan + sum(w * lit for lit, w in terms if w))
    for t in range(inst.n):
        m.add_hint(starts[t], hs[t])
        m.add_hint(ends[t], hs[t] + dt[t][hint.node[t]])
        for j in range(inst.m):
            chosen = lits.get((t, j))
            if chosen is not None:
                m.add_hint(chosen, 1 if hint.node[t] == j else 0)
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = time_limit
    solver.parameters.num_workers = max(1, workers)
    solver.parameters.random_seed = seed
    status = solver.solve(m)
    if status == cp_model.INFEASIBLE:
        return ExactResult(None, -math.inf, False)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return None
    raw = solver.best_objective_bound
    if pool or beta == 0.0 or not cost_terms:
        t_bound = raw / scale - err
        if objective.deadline is not None:
            bound = fixed_cost
        elif objective.budget is not None:
            bound = t_bound
        else:
            bound = alpha * t_bound + beta * fixed_cost
    else:
        bound = raw / scale - err
    if not sure:
        bound = -math.inf
    optimal = status == cp_model.OPTIMAL and sure and err == 0.0
    node = [0] * inst.n
    start = [0.0] * inst.n
    end = [0.0] * inst.n
    for t in range(inst.n):
        p = inst.pinned[t]
        if pool:
            j = 0
        elif p is not None:
            j = p[0]
        else:
            j = next(j for j in inst.feasible[t] if solver.value(lits[(t, j)]))
        node[t] = j
        start[t] = p[1] if p is not None else solver.value(starts[t]) * tick
        end[t] = start[t] + nd[t][j]
    if pool:
        node = _deal(inst, start, end)
    gpus = deal_whole(inst, node, start, end) if any(inst.gpu) else {}
    return ExactResult(Schedule(node, start, end, {}, gpus), bound, optimal)


def _scaled(inst: Instance, tasks: list[int], j: int, k: int) -> tuple[list[int], int, bool]:
    """Integer demands (rounded up) and capacity (rounded down) for resource k on node j."""
    vals = [inst.req[t][k] for t in tasks] + [inst.cap[j][k]]
    factor = 1.0
    for f in (1.0, 1000.0):
        if all(_integral(v * f) for v in vals):
            factor = f
            break
    else:
        factor = 1000.0
    exact = all(_integral(v * factor) for v in vals)
    if max(vals, default=0.0) * factor > 2**52:
        factor = 2**40 / max(vals)
        exact = False
    demand = [math.ceil(inst.req[t][k] * factor - 1e-9) for t in tasks]
    return demand, math.floor(inst.cap[j][k] * factor + 1e-9), exact


def _cost_unit(costs: list[float], n: int) -> float | None:
    """A scale that makes every cost an exact integer, or None.

    Prices are per hour, so costs are usually decimals divided by 3600: ``3600 * 10**k`` for the
    smallest k that works, as long as ``n`` tasks' worth of the largest cost stays well inside
    the solver's integers.
    """
    top = max(costs, default=0.0)
    for k in range(10):
        unit: float = 3600.0 * 10**k
        if top * unit * max(1, n) >= 2**50:
            return None
        if all(abs(c * unit - round(c * unit)) <= 1e-11 * max(1.0, c * unit) for c in costs):
            return unit
    return None


def _floor(x: float) -> int:
    """``floor(x)``, taking an x within float noise below an integer as that integer."""
    r = round(x)
    return r if abs(x - r) <= 1e-12 * max(1.0, abs(x)) else math.floor(x)


def _tails(inst: Instance, dt: list[list[int]]) -> list[int]:
    """Shortest possible time from each task's start to the end of the run (own duration included)."""
    tail = [0] * inst.n
    for t in reversed(inst.topo):
        cands = [inst.pinned[t][0]] if inst.pinned[t] is not None else inst.feasible[t]  # type: ignore[index]
        own = min(dt[t][j] for j in cands)
        tail[t] = own + max((tail[s] for s in inst.succs[t]), default=0)
    return tail


def _deal(inst: Instance, start: list[float], end: list[float]) -> list[int]:
    """Assign tasks of a unary-pool schedule to machines: by start, to any machine already free."""
    free_at = [(-math.inf, j) for j in range(inst.m)]
    node = [0] * inst.n
    for t in sorted(range(inst.n), key=lambda t: (start[t], end[t])):
        if end[t] <= start[t]:
            node[t] = 0
            continue
        free_at.sort()
        for idx, (f, j) in enumerate(free_at):
            if f <= start[t] + EPS:
                node[t] = j
                free_at[idx] = (end[t], j)
                break
        else:  # cannot happen for a cumulative-feasible schedule
            raise AssertionError("unary pool schedule exceeds the machine count")
    return node
