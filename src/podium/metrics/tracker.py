"""``RunTracker``: the engine hook that turns one run's committed events into metric updates.

The engine calls a hook after each committed append with the batch and the run's view. The
tracker only queues the batch (one deque append on the loop's thread); batches are counted at
the next scrape (``MetricsHub.snapshot``), or by the loop once ``DRAIN_EVENTS`` have queued (a
bound on memory when nobody scrapes). Counting does a few field increments per event; whatever
the view already knows is read from it at scrape time instead: tasks by state, resources held
per node, and the cost, priced exactly as the run summary prices it (each task's busy time at
its node's prices for what it held). An attempt's round trip is its end event's ``duration``
(the loop measures it from submit to seeing the end): a succeeded attempt's is its task's
duration, so the round-trip histogram is summed from those at scrape time; its usage is that
event's ``usage``.

Invariants: every task event counts once as a transition; an attempt ended when its end event
carries a ``duration``; a workflow gets at most ``MAX_TASK_LABELS`` task labels (later names
count as ``_other``), so a generated DAG of 10,000 distinct names cannot flood Prometheus; a
run leaves the live set, and its per-run series with it, once its final event is counted
(at the first scrape after it ended), and its cost then moves into ``podium_cost_total``
(which stays monotonic).
"""

from __future__ import annotations

from bisect import bisect_left
from collections import deque
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from podium.metrics.catalog import DURATION_BUCKETS, RATIO_BUCKETS
from podium.metrics.state import TaskStats
from podium.model import events as ev
from podium.model import states as st
from podium.model.cluster import DEFAULT_PRICES, price_per_second
from podium.model.usage import USAGE_KEY, attempt_usage

if TYPE_CHECKING:
    from podium.metrics.state import MetricState
    from podium.model.events import Event

#: Events a run's hook queues before it counts them itself (a scrape counts them sooner). Small:
#: batches kept alive longer cost the garbage collector more than counting them sooner does.
DRAIN_EVENTS = 1024
#: Task labels per workflow; further task names are counted under ``OTHER``.
MAX_TASK_LABELS = 200
OTHER = "_other"
_QUEUED, _STARTED, _SUCCEEDED, _FAILED = ev.TASK_QUEUED, ev.TASK_STARTED, ev.TASK_SUCCEEDED, ev.TASK_FAILED
#: How an attempt ended, by the event that ended it (failures say their kind).
_OUTCOME = {ev.TASK_CANCELLED: "cancelled", ev.TASK_RESET: "interrupted"}
_RUN_END = {ev.RUN_SUCCEEDED: "succeeded", ev.RUN_FAILED: "failed", ev.RUN_CANCELLED: "cancelled"}


class RunScan:
    """What a live run's view says at one moment (computed at scrape time)."""

    __slots__ = ("allocated", "cost", "cost_by_node", "states")

    def __init__(self) -> None:
        self.states: dict[str, int] = dict.fromkeys(st.TASK_STATES, 0)
        self.allocated: dict[tuple[str, str], float] = {}  # (node, resource) -> held by running tasks
        self.cost_by_node: dict[str, float] = {}  # R of ended attempts, by node
        self.cost = 0.0  # R so far, running attempts included


class RunTracker:
    """The hook of one run (``Engine(hooks=[hub.track(run_id)])``)."""

    def __init__(self, hub: MetricState, run_id: str, tasks_total: int | None = None) -> None:
        self.hub = hub
        self.run_id = run_id
        self.tasks_total = tasks_total
        self.view: Any = None
        self.workflow = ""
        self.live = False
        self.planned: float | None = None
        self.pending: deque[Sequence[Event]] = deque()  # batches not counted yet
        self.backlog = 0  # events in them
        self._queued: dict[str, float] = {}  # task -> ready since (event time)
        self._stats: dict[str, TaskStats] = {}  # task name -> the counts of its label
        self._rates: dict[tuple[int, str], tuple[Mapping[str, float], float]] = {}
        self._wait: Any = None
        self._overflow: TaskStats | None = None  # the counts of ``OTHER``, once a name needs them
        self.counted: dict[str, float] = {}  # cost by node already in ``podium_cost_total``

    def __call__(self, events: Sequence[Event], view: Any) -> None:
        """The engine's hook: queue the batch (a deque append needs no lock). The first batch
        is counted at once: it makes the run live, so scrapes see it."""
        self.view = view
        self.pending.append(events)
        self.backlog += len(events)  # only a trigger: a scrape resetting it meanwhile is harmless
        if self.backlog >= DRAIN_EVENTS or not self.live:
            with self.hub.lock:
                self.drain()

    def drain(self) -> None:
        """Count the queued batches (the caller holds the hub's lock). The hot path of metrics:
        the three events every task has are handled inline, the rest in ``_other``."""
        self.backlog = 0
        if not self.workflow:
            self._begin(self.view)
        pending, queued, stats, new_stats = self.pending, self._queued, self._stats, self._new_stats
        wait = self._wait
        while pending:
            for e in pending.popleft():
                typ, tid = e[1], e[2]
                if tid is None:
                    self._run_event(typ, e[5], e[4])
                    continue
                name = tid if tid[-1] != "]" else tid[: tid.index("[")]
                t = stats.get(name) or new_stats(name)
                if typ == _QUEUED:
                    t.queued += 1
                    queued[tid] = e[4]
                elif typ == _STARTED:
                    t.started += 1
                    since = queued.pop(tid, None)
                    if since is not None:
                        waited = e[4] - since
                        waited = waited if waited > 0.0 else 0.0
                        wait.counts[bisect_left(wait.bounds, waited)] += 1
                        wait.total += waited
                elif typ == _SUCCEEDED:
                    t.succeeded += 1
                    data = e[5]
                    d = data.get("duration")
                    if d is not None:  # an attempt ended (a cache hit or a map has none)
                        t.ok += 1
                        h = t.durations
                        h.counts[bisect_left(h.bounds, d)] += 1
                        h.total += d
                        if USAGE_KEY in data:
                            self._usage(tid, t, data, d)
                else:
                    self._other(typ, tid, e[5], t)
        if not self.live and self.view is not None and self.view.finished_at is None:
            self.live = True  # attached to a run in progress (a resume, or a watcher)
            self.hub.live[self.run_id] = self

    def _begin(self, view: Any) -> None:
        self.workflow = str((view.meta or {}).get("workflow") or "") or "-"
        self._wait = self.hub.histogram(self.hub.queue_waits, (self.workflow,), DURATION_BUCKETS)

    def _new_stats(self, name: str) -> TaskStats:
        """The counts of task ``name``: its own while the workflow has room for another label."""
        hub, wf = self.hub, self.workflow
        admitted = hub.task_labels.setdefault(wf, set())
        if self._overflow is not None and name not in admitted:
            return self._overflow  # past the cap: not remembered per name (10,000 names cost)
        label = name if name in admitted or len(admitted) < MAX_TASK_LABELS else OTHER
        t = self._overflow if label == OTHER else None
        if t is None:
            admitted.add(label)
            t = hub.tasks.get((wf, label))
            if t is None:
                t = hub.tasks[(wf, label)] = TaskStats(label)
            if label == OTHER:
                self._overflow = t
        self._stats[name] = t
        return t

    def _other(self, typ: str, tid: str, data: Any, t: TaskStats) -> None:
        """Every task event but queued, started and succeeded (failures, skips, resets...)."""
        t.other[typ] = t.other.get(typ, 0) + 1
        kind = str((data.get("error") or {}).get("kind") or "user")
        if typ == _FAILED:
            t.failed[kind] = t.failed.get(kind, 0) + 1
        if typ == ev.TASK_CANCELLED or typ == ev.TASK_RESET or typ == ev.TASK_SKIPPED:
            self._queued.pop(tid, None)
        d = data.get("duration")
        if d is not None:  # the event ended an attempt
            outcome = _OUTCOME.get(typ, kind)
            t.kinds[outcome] = t.kinds.get(outcome, 0) + 1
            self.hub.other_trips.observe(d)  # succeeded attempts are in their task's durations
            if USAGE_KEY in data:
                self._usage(tid, t, data, d)

    def _usage(self, tid: str, t: TaskStats, data: Any, duration: float) -> None:
        """An ended attempt's measured usage, from its end event."""
        usage = attempt_usage(data)
        if usage is not None:
            res = self.view.tasks[tid].resources if self.view is not None else {}
            self.hub.record_usage((self.workflow, t.label), res, usage, duration)

    def _run_event(self, typ: str, data: Mapping[str, Any], ts: float) -> None:
        hub, wf = self.hub, self.workflow
        if typ == ev.RUN_STARTED:
            hub.runs_started[(wf,)] = hub.runs_started.get((wf,), 0) + 1
            hub.live[self.run_id] = self
            self.live = True
            self._rates.clear()  # prices are those of this start
        elif typ == ev.PLAN_MADE:
            t = data.get("T")
            self.planned = float(t) if isinstance(t, int | float) and t > 0 else self.planned
        elif typ in _RUN_END:
            key = (wf, _RUN_END[typ])
            hub.runs_ended[key] = hub.runs_ended.get(key, 0) + 1
            start = self.view.started_at if self.view is not None else None
            if start is not None:
                makespan = max(0.0, ts - start)
                hub.histogram(hub.makespans, (wf,), DURATION_BUCKETS).observe(makespan)
                if self.planned:
                    hub.histogram(hub.plan_ratios, (wf,), RATIO_BUCKETS).observe(makespan / self.planned)
            self.end()

    def end(self) -> None:
        """Leave the live set; the run's cost joins the counter (the caller holds the lock)."""
        if self.live and self.view is not None:
            for node, cost in self.uncounted(self.scan(self.hub.clock())).items():
                k = (self.workflow, node)
                self.hub.cost[k] = self.hub.cost.get(k, 0.0) + cost
                self.counted[node] = self.counted.get(node, 0.0) + cost
        self._queued.clear()
        self.live = False
        self.hub.live.pop(self.run_id, None)

    # -- read at scrape time (the hub's lock is held) ---------------------------------------
    def scan(self, now: float) -> RunScan:
        """One pass over the view: states, resources held, cost (as ``summarize`` prices it)."""
        out = RunScan()
        states, allocated, by_node = out.states, out.allocated, out.cost_by_node
        seen = 0
        running, rate, rates = st.RUNNING, self._rate, self._rates
        for tid, t in list(self.view.tasks.items()):  # a C-level copy: safe beside the engine
            state = t.state
            states[state] += 1
            if tid[-1] != "]":
                seen += 1
            busy = t.busy
            if not busy and state != running:
                continue
            res = t.resources
            if not res:
                continue
            node = t.node or ""
            hit = rates.get((id(res), node))
            r = hit[1] if hit is not None and hit[0] is res else rate(node, res)
            if busy:
                by_node[node] = by_node.get(node, 0.0) + r * busy
            if state == running:
                for k, v in res.items():
                    allocated[(node, k)] = allocated.get((node, k), 0.0) + v
                if t.started_at is not None and now > t.started_at:
                    out.cost += r * (now - t.started_at)
        out.cost += sum(by_node.values())
        if self.tasks_total is not None:
            states[st.PENDING] += max(0, self.tasks_total - seen)
        return out

    def uncounted(self, scan: RunScan) -> dict[str, float]:
        """Cost by node not yet in ``podium_cost_total`` (a resumed run counted its first part
        when that part ended)."""
        return {n: c - self.counted.get(n, 0.0) for n, c in scan.cost_by_node.items()}

    def _rate(self, node: str, res: Mapping[str, float]) -> float:
        """Cost per second of holding ``res`` on ``node`` at the prices the run started with."""
        key = (id(res), node)
        hit = self._rates.get(key)
        if hit is not None and hit[0] is res:
            return hit[1]
        prices = ((self.view.meta or {}).get("prices") or {}).get(node) if self.view is not None else None
        rate = price_per_second(res, prices if isinstance(prices, Mapping) else DEFAULT_PRICES)
        self._rates[key] = (res, rate)
        return rate

    def objective(self) -> tuple[float, float]:
        o = (self.view.meta or {}).get("objective") or {} if self.view is not None else {}
        return float(o.get("alpha", 1.0)), float(o.get("beta", 0.0))
