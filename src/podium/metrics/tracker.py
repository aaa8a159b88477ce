"""``RunTracker``: the engine hook that turns one run's committed events into metric updates.

The engine calls a hook after each committed append with the batch and the run's view, on the
thread doing the loop's turn. The tracker counts the batch there and then, into counters of
its own (per task label: a few integer increments per event; durations, queue waits and round
trips appended to the pending values of histograms it owns, binned by a scrape or when the
hook has seen ``FOLD_EVERY`` task ids), without a lock and without keeping any event: a batch
kept for later outlives the garbage collector's young generation and makes its full
collections come sooner, which costs a run more than counting does. Whatever the view already
knows is read from it at scrape time instead: tasks by state, resources held per node, and the
cost, priced exactly as the run summary prices it (each task's busy time at its node's prices
for what it held). An attempt's round trip is its end event's ``duration`` (the loop measures
it from submit to seeing the end): a succeeded attempt's is its task's duration, so the
round-trip histogram is summed from those at scrape time; its usage is that event's ``usage``.

A scrape adds a live run's own counters to the hub's (reading them as they are: Python's
integer and list updates are atomic, and dicts are copied before they are walked; it bins the
run's pending observations under the hub's lock, the hook only appending to them). An ended
run leaves the live set for ``hub.retired`` in one step under the hub's lock; the next scrape
settles it (its counters, and its cost read from its final view, join the hub's), so a run
pays nothing at its end unless ``hub.RETIRED`` ended runs already wait. Only the rare updates
touch the hub: a new task label, measured usage, run events.

The hook is the tracker's bound ``count`` (``MetricsHub.track``). Given the workflow's task
names, it settles their labels before the first event (``_prefill``): the first names in
declared order get labels, and the rest are mapped to ``_other`` at once, so no task's first
event has to look for its label.

Invariants: every task event counts once as a transition; an attempt ended when its end event
carries a ``duration``; a workflow gets at most ``MAX_TASK_LABELS`` task labels (later names
count as ``_other``), so a generated DAG of 10,000 distinct names cannot flood Prometheus; a
run leaves the live set, and its per-run series with it, once its final event is counted, and
its cost then moves into ``podium_cost_total`` (which stays monotonic).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from podium.metrics.catalog import DURATION_BUCKETS, RATIO_BUCKETS
from podium.metrics.state import Histogram, TaskStats
from podium.model import events as ev
from podium.model import states as st
from podium.model.cluster import DEFAULT_PRICES, price_per_second
from podium.model.usage import USAGE_KEY, attempt_usage

if TYPE_CHECKING:
    from podium.metrics.state import MetricState
    from podium.model.events import Event

#: Task ids a hook remembers; past that it forgets them and bins its histograms' pending
#: values (a run nobody scrapes keeps about this many floats of each histogram waiting).
FOLD_EVERY = 1 << 16
#: Task labels per workflow; further task names are counted under ``OTHER``.
MAX_TASK_LABELS = 200
OTHER = "_other"
_QUEUED, _STARTED, _SUCCEEDED, _FAILED = ev.TASK_QUEUED, ev.TASK_STARTED, ev.TASK_SUCCEEDED, ev.TASK_FAILED
#: How an attempt ended, by the event that ended it (failures say their kind).
_OUTCOME = {ev.TASK_CANCELLED: "cancelled", ev.TASK_RESET: "interrupted"}
_RUN_END = {ev.RUN_SUCCEEDED: "succeeded", ev.RUN_FAILED: "failed", ev.RUN_CANCELLED: "cancelled"}
_FINITE = sys.float_info.max
_NUMBER = (float, int)
_ODD = object()  # a usage record that is not a dict: ``attempt_usage`` decides
_NOBODY = object()  # no task id (not even None) was seen yet in the batch
#: What ``MetricsHub.track`` hands out: a ``RunTracker``'s bound ``count``.
Hook = Callable[[Sequence["Event"], Any], None]


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

    def __init__(
        self,
        hub: MetricState,
        run_id: str,
        tasks_total: int | None = None,
        names: Collection[str] = (),
    ) -> None:
        self.hub = hub
        self.run_id = run_id
        self.tasks_total = tasks_total
        self._names = names if len(names) < FOLD_EVERY else ()  # the workflow's (``_prefill``)
        self.view: Any = None
        self.workflow = ""
        self.live = False
        self.planned: float | None = None
        self._admitted: set[str] = set()  # the hub's task labels of this workflow (it only grows)
        self._queued: dict[str, float] = {}  # task -> ready since (event time)
        # this run's counts not yet in the hub's (a scrape adds them while the run is live)
        self.labels: dict[str, TaskStats] = {}  # task label -> its counts
        self.waits = Histogram(DURATION_BUCKETS)  # queue waits
        self._waits = self.waits.pending.append
        self.trips = Histogram(DURATION_BUCKETS)  # round trips of attempts that did not succeed
        self._stats: dict[str, TaskStats] = {}  # task id -> the counts of its label (in ``labels``)
        self._rates: dict[tuple[int, str], tuple[Mapping[str, float], float]] = {}
        self.counted: dict[str, float] = {}  # cost by node already in ``podium_cost_total``
        self.retired = False  # in ``hub.retired``: ended, counts and cost not yet in the hub's
        self._cost_due = False  # the run ended live: its cost goes to ``podium_cost_total``

    def count(self, events: Sequence[Event], view: Any) -> None:
        """The engine's hook (``hub.track`` hands out this bound method: calling an instance
        goes through its type's ``__call__`` slot, a third dearer): count the batch. The hot
        path of metrics: the three events every task has are counted inline (no call, no
        lock), the rest in ``_other``; a task's counts are looked up once for the events of
        it that follow each other (a batch is often one task's end and the next one's start)."""
        if view is not self.view:  # the first batch, or a resume's new view
            self._attach(view)
        if self.retired:  # events after the end (a resume on the same hook): settle the end first
            with self.hub.lock:
                if self.retired:
                    self.settle()
        stats, queued, waits = self._stats, self._queued, self._waits
        last: Any = _NOBODY
        t: Any = None
        for e in events:
            tid = e[2]
            if tid is not last:
                if tid is None:
                    self._run_event(e[1], e[5], e[4])
                    continue
                t = stats.get(tid) or self._new_stats(tid)
                last = tid
            typ = e[1]
            if typ == _QUEUED:
                t.queued += 1
                queued[tid] = e[4]
            elif typ == _STARTED:
                t.started += 1
                since = queued.pop(tid, None)
                if since is not None:
                    waits(e[4] - since)  # a wait below 0 (clocks) counts as 0: see ``fold``
            elif typ == _SUCCEEDED:
                t.succeeded += 1
                data = e[5]
                d = data.get("duration")
                if d is not None:  # an attempt ended (a cache hit or a map has none)
                    t.durs.append(d)
                    if USAGE_KEY in data:
                        self._usage(tid, t, data, d)
            else:
                self._other(typ, tid, e[5], t)
        if not self.live:
            with self.hub.lock:
                if view is not None and view.finished_at is None:
                    self._go_live()  # attached to a run in progress (a resume, or a watcher)
                else:
                    self.hub.live.pop(self.run_id, None)  # its counts now wait in ``retired``
                    self.retire()

    def _attach(self, view: Any) -> None:
        """Count against ``view`` from now on (the first batch: learn the run's workflow)."""
        self.view = view
        if not self.workflow:
            self._begin(view)

    def _fold(self) -> None:
        """Bin this run's pending observations (the caller holds the hub's lock)."""
        self.waits.fold()
        self.trips.fold()
        for t in list(self.labels.values()):
            t.durations.fold()
        self.hub.fold()

    def _begin(self, view: Any) -> None:
        self.workflow = str((view.meta or {}).get("workflow") or "") or "-"
        hub = self.hub
        with hub.lock:  # the workflow's queue waits are a series from its first run on
            hub.histogram(hub.queue_waits, (self.workflow,), DURATION_BUCKETS)
            self._admitted = hub.task_labels.setdefault(self.workflow, set())
        if self._names:
            self._prefill(self._names)
            self._names = ()

    def _new_stats(self, tid: str) -> TaskStats:
        """The counts of task ``tid``'s name (a map item's are its map's). Remembered by task
        id, for at most ``FOLD_EVERY`` ids (a map's items come and go); when that many are
        remembered, they are forgotten and the histograms are binned, so a run nobody scrapes
        keeps a bounded number of pending observations."""
        stats = self._stats  # this run's ids only: forgotten when its counts reach the hub
        if len(stats) >= FOLD_EVERY:
            stats.clear()
            with self.hub.lock:
                self._fold()
        if tid[-1] != "]":
            t = self._label_stats(tid)
        else:
            name = tid[: tid.index("[")]
            t = stats.get(name) or self._label_stats(name)
        stats[tid] = t
        return t

    def _label_stats(self, name: str) -> TaskStats:
        """The counts of task name ``name``: its own label while the workflow has room for
        another, else ``OTHER``."""
        admitted = self._admitted
        if name not in admitted and len(admitted) < MAX_TASK_LABELS:
            with self.hub.lock:  # the labels are the hub's: runs of one workflow share them
                if len(admitted) < MAX_TASK_LABELS:
                    admitted.add(name)
        return self._counts(name if name in admitted else OTHER)

    def _counts(self, label: str) -> TaskStats:
        t = self.labels.get(label)
        if t is None:
            t = self.labels[label] = TaskStats(label)
        return t

    def _prefill(self, names: Collection[str]) -> None:
        """Before the first event: give the workflow's task names labels in their declared
        order, and the names past the room for labels (``MAX_TASK_LABELS``) the counts of
        ``OTHER``, at C speed, so a task's first event finds its counts without a call (a
        workflow of 10,000 distinct names would otherwise make 9,800 of them). Only for fewer
        than ``FOLD_EVERY`` names: more would be forgotten at the first new id anyway."""
        admitted = self._admitted
        fresh = [n for n in names if n not in admitted]
        with self.hub.lock:
            room = max(0, MAX_TASK_LABELS - len(admitted))
            admitted.update(fresh[:room])
        past = fresh[room:]
        if past:
            self._stats.update(dict.fromkeys(past, self._counts(OTHER)))

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
            self.trips.observe(d)  # succeeded attempts are in their task's durations
            if len(self.trips.pending) > FOLD_EVERY:  # retries of the same few ids
                with self.hub.lock:
                    self._fold()
            if USAGE_KEY in data:
                self._usage(tid, t, data, d)

    def _usage(self, tid: str, t: TaskStats, data: Any, duration: float) -> None:
        """An ended attempt's measured usage, from its end event, into its label's counts (the
        run's own: no lock). The record the executors write (finite non-negative floats, an int
        peak) is read as it is; anything else goes through ``attempt_usage``, its one parser."""
        u = data[USAGE_KEY]
        cpu = u.get("cpu_time") if type(u) is dict else _ODD
        peak = u.get("peak_memory") if type(u) is dict else _ODD
        wall = u.get("wall_time") if type(u) is dict else _ODD
        if (
            (cpu is None or (cpu.__class__ is float and 0.0 <= cpu <= _FINITE))
            and (peak is None or (peak.__class__ is int and peak >= 0))
            and (wall is None or (wall.__class__ in _NUMBER and 0 <= wall <= _FINITE))
        ):
            peak = peak or None  # 0: the executor could not tell
            if cpu is None and peak is None:
                return
        else:
            usage = attempt_usage(data)
            if usage is None:
                return
            cpu, peak, wall = usage.cpu_time, usage.peak_memory, usage.wall_time
        res = self.view.tasks[tid].resources if self.view is not None else {}
        if cpu is not None:
            t.cpu_used = (t.cpu_used or 0.0) + cpu
            seconds = wall if wall is not None else duration
            if seconds is not None:
                t.cpu_requested = (t.cpu_requested or 0.0) + float(res.get("cpu", 0.0)) * seconds
        if peak is not None:
            t.peak_memory, t.memory_requested = float(peak), float(res.get("memory", 0.0))

    def _run_event(self, typ: str, data: Mapping[str, Any], ts: float) -> None:
        if typ == ev.PLAN_MADE:
            t = data.get("T")
            self.planned = float(t) if isinstance(t, int | float) and t > 0 else self.planned
            return
        hub, wf = self.hub, self.workflow
        if typ == ev.RUN_STARTED:
            with hub.lock:
                hub.runs_started[(wf,)] = hub.runs_started.get((wf,), 0) + 1
                self._rates.clear()  # prices are those of this start
                self._go_live()
        elif typ in _RUN_END:
            with hub.lock:
                key = (wf, _RUN_END[typ])
                hub.runs_ended[key] = hub.runs_ended.get(key, 0) + 1
                start = self.view.started_at if self.view is not None else None
                if start is not None:
                    makespan = max(0.0, ts - start)
                    hub.histogram(hub.makespans, (wf,), DURATION_BUCKETS).observe(makespan)
                    if self.planned:
                        ratio = makespan / self.planned
                        hub.histogram(hub.plan_ratios, (wf,), RATIO_BUCKETS).observe(ratio)
                self.end()

    def _go_live(self) -> None:
        """Join the live set: scrapes read this run's view and counts (the caller holds the lock)."""
        self.live = True
        self.hub.live[self.run_id] = self

    def end(self) -> None:
        """The run ended (the caller holds the lock). After the batch, the hook moves it from
        the live set to ``hub.retired`` in one step (a scrape sees its counts all along); its
        counts and cost join the hub's at the next scrape (``settle``)."""
        if self.live and self.view is not None:
            self._cost_due = True
        self._queued.clear()
        self.live = False

    def retire(self) -> None:
        """Wait in ``hub.retired`` for the next scrape to settle this run (the caller holds the
        lock); past ``hub.RETIRED`` waiting runs, settle them all now."""
        hub = self.hub
        if not self.retired:
            self.retired = True
            hub.retired.append(self)
        if len(hub.retired) > hub.RETIRED:
            for tracker in hub.retired[:]:
                tracker.settle()

    def settle(self) -> None:
        """Move this ended run's counts, and its cost if it ended live, into the hub's (the
        caller holds the lock; the run's hook is not counting: see ``count``)."""
        hub, wf = self.hub, self.workflow
        if self._cost_due and self.view is not None:
            self._cost_due = False
            for node, cost in self.uncounted(self.scan(hub.clock())).items():
                hub.cost[(wf, node)] = hub.cost.get((wf, node), 0.0) + cost
                self.counted[node] = self.counted.get(node, 0.0) + cost
        for label, t in self.labels.items():
            total = hub.tasks.get((wf, label))
            if total is None:
                total = hub.tasks[(wf, label)] = TaskStats(label)
            total.add(t)
        self.labels.clear()
        self._stats.clear()
        hub.histogram(hub.queue_waits, (wf,), DURATION_BUCKETS).add(self.waits)
        hub.other_trips.add(self.trips)
        self.waits.reset()
        self.trips.reset()
        if self.retired:
            self.retired = False
            hub.retired.remove(self)

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
