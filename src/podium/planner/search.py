"""Heuristic search over list schedules: a portfolio of priority and node rules, then improvement.

``Goal`` turns an objective into a comparable score for a schedule: F for the weighted form,
R (after meeting the deadline) for the deadline form, T (after meeting the budget) for the
budget form. ``portfolio`` runs a few deterministic passes (several priority rules, node rules
with several target makespans, forward-backward justification) sized to the instance so huge
graphs get exactly one pass; ``improve`` keeps trying seeded perturbations of the best priority
list and forward-backward passes until a work budget or the time limit is spent, or the score
meets the lower bound.

Invariants: every candidate is a complete feasible schedule; the best is kept (never worse than
the first pass); randomness comes only from ``random.Random(seed)``; time only from the
``clock`` argument.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from podium.model.workflow import Objective
from podium.planner.instance import Instance
from podium.planner.listsched import INF, Rule, Schedule, list_schedule

#: Above this many (task, node) pairs the heuristic makes a single pass.
ONE_PASS_PAIRS = 60_000
#: Scan limit (gaps examined per node) for graphs above ONE_PASS_PAIRS.
HUGE_SCAN = 16


@dataclass(frozen=True)
class Goal:
    objective: Objective

    @property
    def mode(self) -> str:
        o = self.objective
        return "deadline" if o.deadline is not None else "budget" if o.budget is not None else "weighted"

    def value(self, makespan: float, cost: float) -> float:
        """The quantity being minimised (F, R under a deadline, T under a budget)."""
        o = self.objective
        if o.deadline is not None:
            return cost
        if o.budget is not None:
            return makespan
        return o.alpha * makespan + o.beta * cost

    def score(self, makespan: float, cost: float) -> tuple[float, float]:
        """Lexicographic: (constraint violation, value)."""
        o = self.objective
        if o.deadline is not None:
            over = max(0.0, makespan - o.deadline * (1 + 1e-12))
            return (over, cost)
        if o.budget is not None:
            over = max(0.0, cost - o.budget * (1 + 1e-12))
            return (over, makespan)
        return (0.0, o.alpha * makespan + o.beta * cost)


@dataclass
class Candidate:
    schedule: Schedule
    prio: list[float]
    rule: Rule
    makespan: float
    cost: float
    score: tuple[float, float]


def upward(inst: Instance, weight: Sequence[float]) -> list[float]:
    """Longest path from each task to an exit, counting ``weight`` of each task on it."""
    rank = [0.0] * inst.n
    succs = inst.succs
    for t in reversed(inst.topo):
        best = 0.0
        for s in succs[t]:
            if rank[s] > best:
                best = rank[s]
        rank[t] = weight[t] + best
    return rank


def downward(inst: Instance, weight: Sequence[float]) -> list[float]:
    """Longest path from an entry to each task, excluding the task itself."""
    level = [0.0] * inst.n
    for t in inst.topo:
        best = inst.release[t]
        for p in inst.preds[t]:
            v = level[p] + weight[p]
            if v > best:
                best = v
        level[t] = best
    return level


def schedule_cost(inst: Instance, s: Schedule) -> float:
    """R of a schedule: each worker of a task (a gang has several) priced on its node."""
    if not s.spread and not inst.special:
        return sum(inst.rate[t][s.node[t]] * (s.end[t] - s.start[t]) for t in range(inst.n))
    total = 0.0
    for t in range(inst.n):
        on = s.spread.get(t) or [(s.node[t], inst.workers[t])]
        total += sum(inst.rate[t][j] * c for j, c in on) * (s.end[t] - s.start[t])
    return total


class Search:
    """Holds the best candidate found so far for one instance and goal."""

    def __init__(self, inst: Instance, goal: Goal, lower_bound: float) -> None:
        self.inst = inst
        self.goal = goal
        self.lower_bound = lower_bound
        self.best: Candidate | None = None
        self.passes = 0
        pairs = sum(len(f) for f in inst.feasible)
        self.huge = pairs > ONE_PASS_PAIRS
        self.scan = HUGE_SCAN if self.huge else 1 << 30
        self.weights: dict[str, list[float]] = {"fast": inst.fast_dur}
        self.ranks = {"fast": upward(inst, inst.fast_dur)}
        if not self.huge:
            mean = [
                inst.dur[t] * sum(1.0 / inst.speed[j] for j in inst.feasible[t]) / len(inst.feasible[t])
                for t in range(inst.n)
            ]
            self.weights["mean"] = mean
            self.ranks["mean"] = upward(inst, mean)

    def tail(self, kind: str) -> list[float]:
        w, r = self.weights[kind], self.ranks[kind]
        return [r[t] - w[t] for t in range(self.inst.n)]

    def run(self, prio: list[float], rule: Rule, reverse: bool = False) -> Candidate:
        s = list_schedule(self.inst, prio, rule, self.scan, reverse)
        if reverse:
            # mirror the backward schedule in time and re-pack it forward in mirrored-start order
            horizon = s.makespan()
            prio = [s.end[t] - horizon for t in range(self.inst.n)]
            s = list_schedule(self.inst, prio, rule, self.scan)
            self.passes += 1
        self.passes += 1
        mk, cost = s.makespan(), schedule_cost(self.inst, s)
        cand = Candidate(s, prio, rule, mk, cost, self.goal.score(mk, cost))
        if self.best is None or cand.score < self.best.score:
            self.best = cand
        return cand

    def done(self) -> bool:
        b = self.best
        if b is None or b.score[0] > 0:
            return False
        v = b.score[1]
        return v <= self.lower_bound + 1e-9 * max(1.0, abs(v))

    def rules(self, kind: str, target: float) -> list[Rule]:
        """Node rules to try for this goal, with tails from ``kind`` durations."""
        o = self.goal.objective
        tail = self.tail(kind)
        mode = self.goal.mode
        if mode == "deadline":
            assert o.deadline is not None
            return [
                Rule("deadline", tail=[x * f for x in tail], deadline=o.deadline) for f in (1.0, 1.2, 1.5)
            ]
        if mode == "budget":
            assert o.budget is not None
            return [Rule("budget", tail=tail, target=target * f, budget=o.budget) for f in (0.0, 1.0, 1.25)]
        if o.beta == 0.0:
            return [Rule("weighted", 1.0, 0.0, tail=tail)]
        if o.alpha == 0.0:
            return [Rule("weighted", 0.0, 1.0, tail=tail)]
        return [
            Rule("weighted", o.alpha, o.beta, target=target * f, tail=tail)
            for f in (0.0, 1.0, 1.15, 1.4, 2.0)
        ]

    def portfolio(self) -> None:
        """Deterministic passes; exactly one on huge instances."""
        inst = self.inst
        base = self.ranks["fast"]
        heft = Rule("weighted", 1.0, 0.0, tail=self.tail("fast"))
        if self.huge:
            rules = self.rules("fast", 0.0)
            self.run(base, rules[min(1, len(rules) - 1)] if self.goal.mode == "weighted" else rules[0])
            return
        first = self.run(base, heft)
        t0 = first.makespan
        if not self.done():  # HEFT proper: mean-duration ranks, earliest finish time
            self.run(self.ranks["mean"], Rule("weighted", 1.0, 0.0, tail=self.tail("mean")))
        nsucc = [len(s) for s in inst.succs]
        scale = max(base, default=1.0) or 1.0
        eps = 1e-6 * scale
        variants = [
            base,
            [base[t] + eps * nsucc[t] for t in range(inst.n)],
            self.ranks["mean"],
            [base[t] + d for t, d in enumerate(downward(inst, self.weights["fast"]))],
        ]
        for kind in ("fast", "mean"):
            for rule in self.rules(kind, t0):
                for prio in variants[:2] if kind == "fast" else variants[2:3]:
                    if self.done():
                        return
                    self.run(prio, rule)
        for prio in variants[1:]:
            if self.done():
                return
            self.run(prio, self.best.rule if self.best else heft)
        self.fbi(2)

    def fbi(self, rounds: int) -> None:
        """Forward-backward improvement from the best schedule (no pins or releases only)."""
        inst = self.inst
        if any(p is not None for p in inst.pinned) or any(r > inst.now for r in inst.release):
            return
        for _ in range(rounds):
            if self.done() or self.best is None:
                return
            b = self.best
            self.run([b.schedule.end[t] for t in range(inst.n)], b.rule, reverse=True)

    def improve(self, seed: int, clock: Callable[[], float] | None, until: float, max_passes: int) -> None:
        """Seeded perturbations of the best priority list, with periodic forward-backward passes."""
        rng = random.Random(seed)
        stall = 0
        while not self.done() and self.passes < max_passes:
            if clock is not None and clock() >= until:
                return
            b = self.best
            assert b is not None
            sigma = (0.01, 0.03, 0.08, 0.2)[stall % 4]
            span = max(b.prio, default=1.0) - min(b.prio, default=0.0) or 1.0
            prio = [p + sigma * span * rng.random() for p in b.prio]
            before = b.score
            if stall % 5 == 4:
                self.fbi(1)
            else:
                self.run(prio, b.rule)
            stall = 0 if self.best is not None and self.best.score < before else stall + 1
            if stall > 400:
                return


def passes_for(time_limit: float, inst: Instance) -> int:
    """A deterministic pass budget for ``improve``: about what fits in ``time_limit`` seconds."""
    pairs = max(1, sum(len(f) for f in inst.feasible))
    per_pass = 4e-6 * pairs + 1e-4  # rough cost of one pass on this machine class
    return max(1, math.floor(time_limit / per_pass)) if time_limit > 0 else 0


__all__ = ["INF", "Candidate", "Goal", "Search", "passes_for"]
