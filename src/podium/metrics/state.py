"""The metric state a hub keeps: counters, gauges and histograms as plain dicts, under one lock.

The bottom of the metrics package: ``RunTracker`` and the Store/Executor wrappers write here,
``MetricsHub`` reads it for scrapes. Invariants: every write of a ``MetricState`` happens under
``lock`` but a histogram's ``observe`` (an append to its pending values: the store wrapper's
latencies), and a live run's own ``TaskStats`` and ``Histogram``s are written by its hook alone
and added in by a scrape; pending observations are binned (``Histogram.fold``) only under
``lock``; keys are label tuples in the catalog's label order; nothing here formats or does I/O.
"""

from __future__ import annotations

import threading
import time
from array import array
from bisect import bisect_right
from collections.abc import Callable, Sequence
from itertools import accumulate
from typing import Any

from podium.metrics.catalog import DURATION_BUCKETS

Labels = tuple[str, ...]


class Histogram:
    """Bucket counts (``le`` semantics) and a sum; ``counts[-1]`` is the +Inf overflow.

    ``observe`` only appends the value to ``pending`` (an ``array`` of floats: one C call, no
    object for the garbage collector); ``fold`` sorts what is pending and bins it with one
    bisection per bucket bound, and every reader (``add``, ``cumulative``) folds first. So the
    writer of a histogram (a run's hook, a store wrapper) never takes a lock: it only appends,
    and ``fold`` takes the values it saw and deletes exactly those (each step one C call, so a
    value appended meanwhile stays for the next fold). Folds happen under the hub's lock.

    Made once per label set (a workflow of 200 task labels makes 200): the bounds and their
    ``le`` texts are shared by every histogram of the same buckets, not rebuilt."""

    __slots__ = ("bounds", "counts", "les", "pending", "total")

    def __init__(self, bounds: Sequence[float]) -> None:
        shared = _BOUNDS.get(bounds)
        if shared is None:
            b = tuple(float(x) for x in bounds)
            shared = _BOUNDS[bounds] = (b, (*(repr(x) for x in b), "+Inf"))
        self.bounds, self.les = shared
        self.counts = [0] * (len(self.bounds) + 1)
        self.total = 0.0
        self.pending = array("d")  # observed, not yet in ``counts`` and ``total``

    def observe(self, value: float) -> None:
        self.pending.append(value)

    def fold(self) -> None:
        """Bin the pending values into ``counts`` and ``total``."""
        pending = self.pending
        n = len(pending)
        if not n:
            return
        values = sorted(pending[:n])
        del pending[:n]
        counts, lo = self.counts, 0
        for i, bound in enumerate(self.bounds):
            hi = bisect_right(values, bound, lo)  # values <= bound
            counts[i] += hi - lo
            lo = hi
        counts[-1] += n - lo
        self.total += sum(values[bisect_right(values, 0.0) :])  # a value below 0 counts as 0

    def count(self) -> int:
        """Observations so far."""
        self.fold()
        return sum(self.counts)

    def add(self, other: Histogram) -> None:
        """Add ``other``'s counts (same bounds) to this one."""
        other.fold()
        self.counts[:] = [a + b for a, b in zip(self.counts, other.counts, strict=True)]
        self.total += other.total

    def reset(self) -> None:
        """Back to no observations (in place: a holder of ``counts`` keeps a valid list)."""
        self.counts[:] = [0] * len(self.counts)
        self.total = 0.0
        del self.pending[:]

    def cumulative(self) -> tuple[list[tuple[str, int]], float]:
        self.fold()
        return list(zip(self.les, accumulate(self.counts), strict=True)), self.total


#: bucket bounds as given -> (bounds as floats, their ``le`` label texts)
_BOUNDS: dict[Sequence[float], tuple[tuple[float, ...], tuple[str, ...]]] = {}


class TaskStats:
    """What happened to one task label of one workflow, over every run the hub saw. The three
    events every task has are fields (counted without building a key); the rest go by type."""

    __slots__ = (
        "cpu_requested",
        "cpu_used",
        "durations",
        "durs",
        "failed",
        "kinds",
        "label",
        "memory_requested",
        "other",
        "peak_memory",
        "queued",
        "started",
        "succeeded",
    )

    def __init__(self, label: str) -> None:
        self.label = label
        self.queued = self.started = self.succeeded = 0  # TaskQueued, TaskStarted, TaskSucceeded
        self.other: dict[str, int] = {}  # any other task event type -> count
        self.kinds: dict[str, int] = {}  # attempts that ended otherwise, by failure kind
        self.failed: dict[str, int] = {}  # tasks failed for good, by failure kind
        self.durations = Histogram(DURATION_BUCKETS)  # of succeeded attempts
        self.durs = self.durations.pending  # where the hook appends them
        # measured usage of its attempts (None until one was measured): CPU seconds used and
        # requested (cpu x seconds), and the last measured peak memory with the memory requested
        self.cpu_used: float | None = None
        self.cpu_requested: float | None = None
        self.peak_memory: float | None = None
        self.memory_requested: float | None = None

    @property
    def ok(self) -> int:
        """Attempts that succeeded (each has its duration)."""
        return self.durations.count()

    def add(self, other: TaskStats) -> None:
        """Add ``other``'s counts (its dicts are copied first: a run's loop may be writing them)."""
        self.queued += other.queued
        self.started += other.started
        self.succeeded += other.succeeded
        pairs = ((self.other, other.other), (self.kinds, other.kinds), (self.failed, other.failed))
        for mine, theirs in pairs:
            for k, n in list(theirs.items()):
                mine[k] = mine.get(k, 0) + n
        self.durations.add(other.durations)
        if other.cpu_used is not None:
            self.cpu_used = (self.cpu_used or 0.0) + other.cpu_used
        if other.cpu_requested is not None:
            self.cpu_requested = (self.cpu_requested or 0.0) + other.cpu_requested
        if other.peak_memory is not None:  # the latest measurement
            self.peak_memory, self.memory_requested = other.peak_memory, other.memory_requested


class MetricState:
    """What the hooks and wrappers of one process have counted (see ``MetricsHub``)."""

    #: Ended runs whose counts wait for a scrape; one more and they are settled at once.
    RETIRED = 16

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.lock = threading.Lock()
        self.live: dict[str, Any] = {}  # run id -> its RunTracker, while the run is live
        self.retired: list[Any] = []  # RunTrackers of ended runs not yet settled (see RETIRED)
        self.task_labels: dict[str, set[str]] = {}  # workflow -> task names given a label
        self.executor: str | None = None  # the name of the executor a ``MeteredExecutor`` wraps
        # counters
        self.runs_started: dict[Labels, float] = {}
        self.runs_ended: dict[Labels, float] = {}
        self.tasks: dict[Labels, TaskStats] = {}  # (workflow, task label) -> its counts
        self.cost: dict[Labels, float] = {}
        self.append_errors: dict[Labels, float] = {}
        # gauges kept between scrapes
        self.capacity: dict[Labels, float] = {}
        # histograms
        self.queue_waits: dict[Labels, Histogram] = {}
        self.makespans: dict[Labels, Histogram] = {}
        self.plan_ratios: dict[Labels, Histogram] = {}
        self.appends: dict[Labels, Histogram] = {}
        self.other_trips = Histogram(DURATION_BUCKETS)  # round trips of attempts that did not succeed

    def histogram(
        self, family: dict[Labels, Histogram], labels: Labels, bounds: Sequence[float]
    ) -> Histogram:
        h = family.get(labels)
        if h is None:
            h = family[labels] = Histogram(bounds)
        return h

    def fold(self) -> None:
        """Bin the pending values of the histograms wrappers write (the caller holds the lock;
        a hook calls this now and then, so a process nobody scrapes keeps few of them)."""
        for h in list(self.appends.values()):
            h.fold()

    def set_nodes(self, nodes: Sequence[Any]) -> None:
        """Record the capacity of the nodes runs use (the executor wrapper calls this)."""
        with self.lock:
            for n in nodes:
                for res, amount in n.capacity.as_dict().items():
                    self.capacity[(n.name, res)] = float(amount)
