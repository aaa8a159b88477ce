"""Plans in a running engine: the first plan, drift detection, and re-planning off the hot path.

On several nodes the engine follows a ``Plan``: each task's node is the planned one (when it
fits at dispatch time) and ready tasks go by planned start. While the run goes on, a task that
runs ``DRIFT`` times longer than its estimate (still running, or finished) makes the remaining
work be planned again from the current state, in a background thread; the loop swaps the new
placement in at its next turn and records it as a ``PlanMade`` event. Dispatch never waits
for a plan. ``Replanner`` owns the planning (and its thread); ``PlanFollower`` is the loop's
side, which applies plans to the ``RunState`` under the loop's lock.

Invariants: planning reads a snapshot taken under the loop's lock and never touches the loop's
state; a new plan replaces placement and priorities atomically (one assignment) and only for
tasks that have not started; at most one re-plan runs at a time.
"""

from __future__ import annotations

import heapq
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from podium.model import events as ev
from podium.model import states as st
from podium.model.cluster import Cluster, Node
from podium.model.problem import PlanRequest, PlanTask
from podium.model.workflow import Workflow
from podium.planner.plan import Plan, plan
from podium.runtime.state import Emit, Ready, RunState
from podium.runtime.view import RunView, base_name

#: A task running this many times longer than its estimate triggers a re-plan.
DRIFT = 2.0
#: Plans of at most this many tasks record their placement and spans in ``PlanMade``.
MAX_RECORDED = 5000


@dataclass(frozen=True)
class Placement:
    """What the loop follows: a node per task and a dispatch priority per task."""

    node: Mapping[str, str]
    priority: Mapping[str, float]
    summary: dict[str, Any]


def placement_of(p: Plan, reason: str) -> Placement:
    """Earlier planned start = higher priority; ties keep the planner's rank order."""
    order = p.order()
    n = len(order)
    priority = {t: float(n - i) for i, t in enumerate(order)}
    node = {t: s.node for t, s in p.slots.items()}
    summary = {
        "reason": reason,
        "method": p.method,
        "T": round(p.makespan, 6),
        "R": round(p.cost, 9),
        "F": round(p.objective, 6),
        "lower_bound": round(p.lower_bound, 6),
        "gap": round(p.gap, 6),
        "nodes": node if n <= MAX_RECORDED else {},
        # planned [start, end] per task, seconds from the plan's start (the report's Gantt)
        "spans": {t: [round(s.start, 6), round(s.end, 6)] for t, s in p.slots.items()}
        if n <= MAX_RECORDED
        else {},
    }
    return Placement(node, priority, summary)


def initial_request(workflow: Workflow, estimates: Mapping[str, float], done: set[str]) -> PlanRequest:
    tasks = {
        name: PlanTask(
            duration=estimates.get(name, 1.0),
            resources=spec.resources,
            deps=tuple(d for d in spec.deps if d not in done),
            workers=spec.workers,
        )
        for name, spec in workflow.tasks.items()
        if name not in done
    }
    return PlanRequest(tasks)


class Replanner:
    """Owns the plan of one run: makes the first one, watches for drift, re-plans in a thread."""

    def __init__(
        self,
        workflow: Workflow,
        nodes: Sequence[Node],
        estimates: Mapping[str, float],
        time_limit: float = 0.0,
        on_ready: Callable[[], None] | None = None,
    ) -> None:
        self.workflow = workflow
        self.cluster = Cluster(tuple(nodes))
        self.estimates = dict(estimates)
        self.time_limit = time_limit
        self.on_ready = on_ready
        self.pending: Placement | None = None  # a finished re-plan waiting to be applied
        self.busy = False
        self.replans = 0
        self.flagged: set[str] = set()
        self._lock = threading.Lock()

    def first(self, done: set[str]) -> Placement:
        req = initial_request(self.workflow, self.estimates, done)
        return placement_of(
            plan(req, self.cluster, self.workflow.objective, time_limit=self.time_limit), "start"
        )

    def drifting(self, running: Mapping[str, tuple[str, float]], now: float) -> str | None:
        """The first running task (not yet flagged) past ``DRIFT`` x its estimate, or None.
        ``running`` maps task id -> (node, start on the run clock)."""
        for tid, (_node, start) in running.items():
            name = base_name(tid)
            est = self.estimates.get(name, 1.0)
            if tid not in self.flagged and now - start > DRIFT * est and est > 0:
                self.flagged.add(tid)
                return tid
        return None

    def finished_late(self, tid: str, duration: float) -> bool:
        name = base_name(tid)
        est = self.estimates.get(name, 1.0)
        late = duration > DRIFT * est and tid not in self.flagged
        self.estimates[name] = duration if late else self.estimates.get(name, duration)
        return late

    def replan(self, snapshot: PlanRequest, reason: str) -> bool:
        """Start a re-plan of ``snapshot`` in a background thread (False if one is running)."""
        with self._lock:
            if self.busy:
                return False
            self.busy = True

        def work() -> None:
            try:
                p = plan(snapshot, self.cluster, self.workflow.objective, time_limit=self.time_limit)
                result = placement_of(p, reason)
            except Exception as e:  # a plan that cannot be made leaves the current one in force
                result = Placement({}, {}, {"reason": reason, "error": str(e)})
            with self._lock:
                self.pending = result
                self.busy = False
                self.replans += 1
            if self.on_ready is not None:
                self.on_ready()

        threading.Thread(target=work, name="podium-replan", daemon=True).start()
        return True

    def take(self) -> Placement | None:
        with self._lock:
            p, self.pending = self.pending, None
        return p

    def snapshot(
        self, view: RunView, running: Mapping[str, tuple[str, float]], now: float, drifted: str | None
    ) -> PlanRequest:
        """The remaining work as a plan request: running tasks pinned where they run (a
        drifted one expected to take as long again as it has so far), unstarted ones free."""
        tasks: dict[str, PlanTask] = {}
        finished = {n for n, t in view.tasks.items() if t.state in st.FINISHED}
        for name, spec in self.workflow.tasks.items():
            if name in finished:
                continue
            est = self.estimates.get(name, 1.0)
            deps = tuple(d for d in spec.deps if d not in finished)
            if name in running:
                node, start = running[name]
                elapsed = max(0.0, now - start)
                dur = 2 * elapsed if name == drifted or elapsed > est else est
                tasks[name] = PlanTask(dur, spec.resources, deps, pinned=(node, start), workers=spec.workers)
            else:
                tasks[name] = PlanTask(est, spec.resources, deps, release=now, workers=spec.workers)
        return PlanRequest(tasks, now=now)


class PlanFollower:
    """The loop's side of a plan: it puts placements into the ``RunState``, watches running
    tasks for drift and asks the ``Replanner`` (if any) for a new plan. Under the turn lock."""

    def __init__(
        self, state: RunState, emit: Emit, replanner: Replanner | None, monotonic: Callable[[], float]
    ) -> None:
        self.state = state
        self.emit = emit
        self.replanner = replanner
        self.monotonic = monotonic
        self.summary: dict[str, Any] | None = None  # the plan in force, for its ``PlanMade``

    def use(self, placement: Placement) -> None:
        """Follow ``placement`` (before the run starts, and for each re-plan)."""
        s = self.state
        s.placement = dict(placement.node)
        priority = dict(s.priority)
        priority.update(placement.priority)
        s.priority = priority
        self.summary = placement.summary

    def apply_pending(self) -> None:
        """Swap in a re-plan that finished since the last turn, and record it."""
        placement = self.replanner.take() if self.replanner is not None else None
        if placement is None or not placement.node:
            return
        self.use(placement)
        self.emit(ev.PLAN_MADE, None, 0, placement.summary)
        s = self.state
        prio = s.priority
        s.ready[:] = [Ready(-prio.get(r.name, 0.0), r.seq, r.task_id, r.name) for r in s.ready]
        heapq.heapify(s.ready)
        s.dirty = True

    def finished(self, tid: str, duration: float) -> None:
        """``tid`` succeeded after ``duration`` seconds: re-plan if it drifted (with a replanner)."""
        if self.replanner is not None and self.replanner.finished_late(tid, duration):
            self.replan(f"drift: task {tid!r} took {duration:.3g}s, over {DRIFT:g}x its estimate")

    def poll(self) -> None:
        """Re-plan if a running task has drifted past its estimate."""
        rp, s = self.replanner, self.state
        if rp is None or not s.running:
            return
        now = self.monotonic() - s.origin
        running = s.on_plan_clock()
        tid = rp.drifting(running, now)
        if tid is not None:
            est = rp.estimates.get(base_name(tid), 0.0)
            self.replan(
                f"drift: task {tid!r} still running after {now - running[tid][1]:.3g}s, "
                f"over {DRIFT:g}x its estimate {est:.3g}s",
                drifted=tid,
            )

    def replan(self, reason: str, drifted: str | None = None) -> None:
        """Start a re-plan of the remaining work in the background."""
        rp, s = self.replanner, self.state
        if rp is None or s.cancelling:
            return
        now = self.monotonic() - s.origin
        rp.replan(rp.snapshot(s.view, s.on_plan_clock(), now, drifted), reason)
