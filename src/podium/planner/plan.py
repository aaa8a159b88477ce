"""The planner's entry point: ``plan(request, cluster, objective) -> Plan``.

A ``Plan`` says where (node) and when (start, end) each task runs, with its predicted makespan
T, cost R, the minimised value (``objective``: F = alpha*T + beta*R, or R under a deadline, or T
under a budget), a lower bound on that value and the relative gap. ``time_limit = 0`` runs the
heuristic portfolio only (one pass on huge graphs); ``time_limit > 0`` adds improvement passes
(a deterministic pass budget derived from the limit) and then CP-SAT for the rest of the time
when ortools is importable and the instance is small enough.

Invariants: pure (no clock, no I/O; randomness from ``seed``; only CP-SAT's search depends on
wall time, within ``time_limit``); the returned schedule respects dependencies, releases, pins
and every node's capacity at every instant; T, R and F equal ``cost.evaluate`` of the slots;
``lower_bound <= objective``; infeasible constraints raise ``InfeasibleError`` saying why.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from podium.errors import InfeasibleError, UsageError
from podium.model.cluster import Cluster
from podium.model.problem import PlanRequest, PlanTask, from_workflow
from podium.model.workflow import Objective
from podium.planner import exact
from podium.planner.bounds import cost_bound, makespan_bounds
from podium.planner.instance import Instance, compile_instance
from podium.planner.listsched import Schedule
from podium.planner.search import Goal, Search, passes_for, schedule_cost

#: Share of ``time_limit`` given to list-scheduling improvement before CP-SAT.
IMPROVE_SHARE = 0.25


@dataclass(frozen=True)
class Slot:
    node: str
    start: float
    end: float
    ranks: tuple[str, ...] = ()  #: a gang: the node of each worker (rank 0 on ``node``)
    gpus: tuple[tuple[int, ...], ...] = ()  #: a task with GPUs: the devices of each worker


@dataclass(frozen=True)
class Plan:
    slots: Mapping[str, Slot]
    makespan: float
    cost: float
    objective: float
    lower_bound: float
    gap: float
    method: str
    estimate_sources: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    priority: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}), compare=False)

    def order(self) -> list[str]:
        """Task ids by planned start; ties by higher priority (upward rank), then input order."""
        pos = {t: i for i, t in enumerate(self.slots)}
        pr = self.priority
        return sorted(self.slots, key=lambda t: (self.slots[t].start, -pr.get(t, 0.0), pos[t]))


def check_objective(objective: Objective) -> None:
    o = objective
    bad = []
    if o.deadline is not None and o.budget is not None:
        bad.append("give a deadline or a budget, not both")
    if o.deadline is not None and not (o.deadline > 0 and math.isfinite(o.deadline)):
        bad.append(f"deadline must be a positive number of seconds, got {o.deadline!r}")
    if o.budget is not None and not (o.budget >= 0 and math.isfinite(o.budget)):
        bad.append(f"budget must be a non-negative number, got {o.budget!r}")
    if o.deadline is None and o.budget is None and (o.alpha < 0 or o.beta < 0 or o.alpha + o.beta <= 0):
        bad.append(f"alpha and beta must be >= 0 and not both 0, got alpha={o.alpha} beta={o.beta}")
    if bad:
        raise UsageError("objective: " + "; ".join(bad))


def plan(
    request: PlanRequest, cluster: Cluster, objective: Objective, *, time_limit: float = 0.0, seed: int = 0
) -> Plan:
    """Schedule ``request`` on ``cluster`` minimising ``objective``; see the module docstring."""
    check_objective(objective)
    if time_limit < 0 or not math.isfinite(time_limit):
        raise UsageError(f"time_limit must be >= 0 seconds, got {time_limit!r}")
    inst = compile_instance(request, cluster)
    goal = Goal(objective)
    if inst.n == 0:
        return Plan(MappingProxyType({}), 0.0, 0.0, 0.0, 0.0, 0.0, "heuristic")
    lb_path, lb_area = makespan_bounds(inst)
    lb_t, lb_r = max(lb_path, lb_area), cost_bound(inst)
    if objective.deadline is not None and objective.deadline < lb_t * (1 - 1e-12):
        which = "critical-path" if lb_path >= lb_area else "work/capacity"
        raise InfeasibleError(f"deadline {objective.deadline:g}s is below the {which} bound {lb_t:.4g}s")
    if objective.budget is not None and objective.budget < lb_r * (1 - 1e-12):
        raise InfeasibleError(
            f"budget {objective.budget:g} is below the cheapest possible cost {lb_r:.4g} "
            "(every task on its cheapest node)"
        )
    lower = goal.value(lb_t, lb_r) if goal.mode == "weighted" else (lb_r if goal.mode == "deadline" else lb_t)
    search = Search(inst, goal, lower)
    search.portfolio()
    if time_limit > 0 and not search.huge:
        search.improve(seed, None, 0.0, search.passes + passes_for(time_limit * IMPROVE_SHARE, inst))
    best = search.best
    assert best is not None
    schedule, method, bound = best.schedule, "heuristic", lower
    score = best.score
    proven = False
    if time_limit > 0 and not search.done():
        budget = time_limit * (1 - IMPROVE_SHARE)
        res = exact.solve(inst, objective, schedule, best.score[1], budget, lb_t, seed=seed)
        if res is not None:
            method = "cpsat"
            if res.schedule is not None:
                s_mk, s_cost = res.schedule.makespan(), schedule_cost(inst, res.schedule)
                if goal.score(s_mk, s_cost) <= score:
                    schedule, score = res.schedule, goal.score(s_mk, s_cost)
            # the solver's bound is the only proof it gives: optimality is claimed below only
            # when the plan kept actually meets that bound
            bound = max(bound, res.bound)
            proven = res.optimal
    makespan, cost = schedule.makespan(), schedule_cost(inst, schedule)
    if score[0] > 0:
        _raise_unmet(objective, makespan, cost, lb_t)
    value = goal.value(makespan, cost)
    bound = min(bound, value)
    gap = (value - bound) / value if value > 0 else 0.0
    if gap < 1e-9:
        gap = 0.0
        method = "cpsat-optimal" if proven else method
    return Plan(
        slots=MappingProxyType(_slots(inst, schedule)),
        makespan=makespan,
        cost=cost,
        objective=value,
        lower_bound=bound,
        gap=gap,
        method=method,
        priority=MappingProxyType(dict(zip(inst.names, search.ranks["fast"], strict=True))),
    )


def _slots(inst: Instance, s: Schedule) -> dict[str, Slot]:
    out = {}
    for t, name in enumerate(inst.names):
        ranks: tuple[str, ...] = ()
        if inst.workers[t] > 1:
            on = s.spread.get(t) or [(s.node[t], inst.workers[t])]
            ranks = tuple(inst.node_names[j] for j, c in on for _ in range(c))
        gpus = tuple(s.gpus.get(t, ()))
        out[name] = Slot(inst.node_names[s.node[t]], s.start[t], s.end[t], ranks, gpus)
    return out


def _raise_unmet(objective: Objective, makespan: float, cost: float, lb_t: float) -> None:
    if objective.deadline is not None:
        raise InfeasibleError(
            f"no plan found that meets the deadline {objective.deadline:g}s: the best makespan found is "
            f"{makespan:.4g}s (lower bound {lb_t:.4g}s); raise the deadline or give a time limit"
        )
    raise InfeasibleError(
        f"no plan found within the budget {objective.budget:g}: the cheapest found costs {cost:.4g}"
    )


__all__ = ["Plan", "PlanRequest", "PlanTask", "Slot", "check_objective", "from_workflow", "plan"]
