"""``MetricsHub``: the metric state of every run one process sees, fed by hooks and wrappers.

One hub per process: ``podium run --metrics-port`` makes one for its run, and a server makes
one for all the runs it watches. It is fed three ways, all cheap and none of them touching the
run loop:

- ``hub.track(run_id)`` is a hook for ``Engine(hooks=[...])``; ``hub.observe(run_id, events,
  view=None)`` does the same for events read from a store (pass each run's events in ``seq``
  order; without a ``view`` the hub folds its own, so start at ``seq`` 1);
- ``hub.wrap_store(store)`` times store appends;
  ``hub.wrap_executor(executor)`` names the executor and reports its nodes' capacity.

``hub.snapshot()`` gives every metric of ``catalog.METRICS`` as plain data (labels -> value, or
labels -> cumulative buckets and sum); ``podium.metrics.exposition`` turns that into the
Prometheus text format. Nothing here imports prometheus_client.

Invariants: every change of the hub's own state happens under ``hub.lock`` (hooks of several
runs and scrapes may run on different threads); a live run's hook counts into counters of its
own without the lock (see ``RunTracker``), which a scrape adds to the hub's and which join the
hub's when the run ends; series of a run (``podium_run_*``) exist only while it is live.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

from podium.metrics.catalog import DURATION_BUCKETS
from podium.metrics.state import Histogram, Labels, MetricState, TaskStats
from podium.metrics.tracker import Hook, RunTracker
from podium.model import events as ev
from podium.model import states as st

#: The state a task event leads to (each task event type leads to exactly one state), read off
#: the state-transition table.
_STATE_OF = {typ: state for (_, typ), state in st.TASK_TRANSITIONS.items()}


class MetricsHub(MetricState):
    """Metric state of the runs one process sees (see the module docstring)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        super().__init__(clock)
        self._observed: dict[str, tuple[Hook, Any]] = {}

    # -- feeding ------------------------------------------------------------------------------
    def track(self, run_id: str, tasks_total: int | None = None, names: Collection[str] = ()) -> Hook:
        """The hook of run ``run_id``: its ``RunTracker``'s bound ``count``. ``tasks_total``:
        its workflow's task count, so tasks that have had no event yet count as pending;
        ``names``: its task names, in declared order, so their labels are settled before the
        first event (a hook without them labels names in the order their tasks first come)."""
        return RunTracker(self, run_id, tasks_total, names).count

    def observe(self, run_id: str, events: Sequence[Any], view: Any = None) -> None:
        """Feed events of any run read from a store, in ``seq`` order (a server's entry point)."""
        entry = self._observed.get(run_id)
        if entry is None:
            own = None
            if view is None:
                from podium.runtime.view import RunView

                own = RunView()
            entry = self._observed[run_id] = (self.track(run_id), own)
        hook, own = entry
        if own is not None:
            for e in events:
                own.apply(e)
            view = own
        hook(events, view)
        if view is not None and view.finished_at is not None:
            self._observed.pop(run_id, None)  # it ended; a resume starts over from its next event

    def forget(self, run_id: str) -> None:
        """Stop watching a run (its per-run series go; counters stay)."""
        with self.lock:
            tracker = self.live.get(run_id)
            if tracker is not None:
                tracker.end()
                self.live.pop(run_id, None)
                tracker.settle()
        self._observed.pop(run_id, None)

    def wrap_store(self, store: Any) -> Any:
        from podium.metrics.wrappers import MeteredStore

        return MeteredStore(store, self)

    def wrap_executor(self, executor: Any) -> Any:
        from podium.metrics.wrappers import MeteredExecutor

        return MeteredExecutor(executor, self)

    # -- reading ------------------------------------------------------------------------------
    def snapshot(self) -> dict[str, dict[Labels, Any]]:
        """Every metric of the catalog: labels -> value (counters, gauges) or labels ->
        (cumulative buckets, sum) (histograms). Consistent: taken under the lock."""
        now = self.clock()
        with self.lock:
            for tracker in self.retired[:]:  # runs that ended since the last scrape
                tracker.settle()
            tasks, waits, trips = self._with_live_counts()
            out: dict[str, dict[Labels, Any]] = {
                "podium_runs_started_total": dict(self.runs_started),
                "podium_runs_total": dict(self.runs_ended),
                **_task_counts(tasks),
                **_usage(tasks),
                "podium_node_capacity": dict(self.capacity),
                "podium_store_append_errors_total": dict(self.append_errors),
            }
            for name, family in (
                ("podium_task_duration_seconds", {k: t.durations for k, t in tasks.items() if t.ok}),
                ("podium_task_queue_wait_seconds", waits),
                ("podium_run_makespan_seconds", self.makespans),
                ("podium_run_plan_ratio", self.plan_ratios),
                ("podium_store_append_seconds", self.appends),
            ):
                out[name] = {k: h.cumulative() for k, h in family.items()}
            out["podium_executor_round_trip_seconds"] = self._round_trips(tasks, trips)
            out.update(self._live_gauges(now))
        return out

    def _with_live_counts(
        self,
    ) -> tuple[dict[Labels, TaskStats], dict[Labels, Histogram], Histogram]:
        """Task counts, queue waits and other round trips: the hub's plus the live runs' own
        (copies where a live run adds to them; the hub's own objects otherwise)."""
        tasks: dict[Labels, TaskStats] = dict(self.tasks)
        waits: dict[Labels, Histogram] = dict(self.queue_waits)
        trips = Histogram(DURATION_BUCKETS)
        trips.add(self.other_trips)
        copied: set[Labels] = set()  # keys of ``tasks`` and ``waits`` holding a copy
        for tracker in list(self.live.values()):
            wf = tracker.workflow
            for label, t in list(tracker.labels.items()):
                key = (wf, label)
                if key not in copied:
                    copied.add(key)
                    total = tasks[key] = TaskStats(label)
                    if key in self.tasks:
                        total.add(self.tasks[key])
                tasks[key].add(t)
            if (wf,) not in copied:
                copied.add((wf,))
                total_waits = waits[(wf,)] = Histogram(DURATION_BUCKETS)
                if (wf,) in self.queue_waits:
                    total_waits.add(self.queue_waits[(wf,)])
            waits[(wf,)].add(tracker.waits)
            trips.add(tracker.trips)
        return tasks, waits, trips

    def _round_trips(self, tasks: Mapping[Labels, TaskStats], others: Histogram) -> dict[Labels, Any]:
        """Every attempt's round trip, under the metered executor's name (none without one)."""
        if self.executor is None:
            return {}
        trips = Histogram(DURATION_BUCKETS)
        trips.add(others)
        for t in tasks.values():
            trips.add(t.durations)
        return {(self.executor,): trips.cumulative()}

    def _live_gauges(self, now: float) -> dict[str, dict[Labels, Any]]:
        """Everything read from the views of the live runs, in one pass over each."""
        allocated: dict[Labels, float] = dict.fromkeys(self.capacity, 0.0)
        cost_total: dict[Labels, float] = dict(self.cost)
        active: dict[Labels, float] = {}
        tasks: dict[Labels, float] = {}
        cost: dict[Labels, float] = {}
        objective: dict[Labels, float] = {}
        elapsed: dict[Labels, float] = {}
        planned: dict[Labels, float] = {}
        for run_id, t in self.live.items():
            if t.view is None:
                continue
            wf = t.workflow
            scan = t.scan(now)
            active[(wf,)] = active.get((wf,), 0) + 1
            for state, n in scan.states.items():
                tasks[(wf, state)] = tasks.get((wf, state), 0) + n
            for k, v in scan.allocated.items():
                allocated[k] = allocated.get(k, 0.0) + v
            for node, c in t.uncounted(scan).items():
                cost_total[(wf, node)] = cost_total.get((wf, node), 0.0) + c
            key = (wf, run_id)
            start = t.view.started_at
            spent = max(0.0, now - start) if start is not None else 0.0
            alpha, beta = t.objective()
            cost[key], elapsed[key], objective[key] = scan.cost, spent, alpha * spent + beta * scan.cost
            if t.planned:
                planned[key] = t.planned
        return {
            "podium_node_allocated": allocated,
            "podium_cost_total": cost_total,
            "podium_runs_active": active,
            "podium_tasks": tasks,
            "podium_run_cost": cost,
            "podium_run_objective": objective,
            "podium_run_elapsed_seconds": elapsed,
            "podium_run_planned_makespan_seconds": planned,
        }


def _task_counts(tasks: Mapping[Labels, TaskStats]) -> dict[str, dict[Labels, Any]]:
    transitions: dict[Labels, float] = {}
    attempts: dict[Labels, float] = {}
    failures: dict[Labels, float] = {}
    for (wf, task), t in tasks.items():
        counts = {ev.TASK_QUEUED: t.queued, ev.TASK_STARTED: t.started, ev.TASK_SUCCEEDED: t.succeeded}
        for typ, n in (*counts.items(), *t.other.items()):
            if n:
                key = (wf, task, _STATE_OF.get(typ, typ))
                transitions[key] = transitions.get(key, 0) + n
        if t.ok:
            attempts[(wf, task, "succeeded")] = t.ok
        for kind, n in t.kinds.items():
            attempts[(wf, task, kind)] = n
        for kind, n in t.failed.items():
            failures[(wf, task, kind)] = n
    return {
        "podium_task_transitions_total": transitions,
        "podium_attempts_total": attempts,
        "podium_task_failures_total": failures,
    }


def _usage(tasks: Mapping[Labels, TaskStats]) -> dict[str, dict[Labels, Any]]:
    """Measured usage by workflow and task label (only labels with a measured attempt)."""
    out: dict[str, dict[Labels, Any]] = {}
    for name, field in (
        ("podium_task_cpu_seconds_total", "cpu_used"),
        ("podium_task_cpu_requested_seconds_total", "cpu_requested"),
        ("podium_task_peak_memory_bytes", "peak_memory"),
        ("podium_task_memory_requested_bytes", "memory_requested"),
    ):
        out[name] = {k: v for k, t in tasks.items() if (v := getattr(t, field)) is not None}
    return out
