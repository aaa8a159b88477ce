"""``MeteredStore`` and ``MeteredExecutor``: the Store and Executor Protocols, seen by the hub.

They wrap any implementation and hand everything through unchanged: the same futures, the
same exceptions, and every other attribute (``cancel_requested``, ``pids``, ``queue_limits``,
``refresh``...) by delegation, so an optional executor capability the engine detects on the
inner executor is detected on the wrapper too.

Nothing here sits on the per-task path: ``MeteredExecutor.submit`` *is* the inner executor's
bound ``submit`` (an attempt's round trip is read from the ``duration`` its end event already
carries, and its measured usage from that event's ``usage``). ``MeteredStore`` times every
append and appends the latency to its histogram's pending values (``Histogram.observe``: one
C call, no lock; a scrape bins them); the run loop does that timing in its own frame
(``types.TimedStore``), so the wrapper's ``append`` serves only other callers and retries.

Invariants: a wrapper never changes what a call does; an exception is re-raised as it came,
and every failed append is counted (its latency is not).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from podium.metrics.catalog import LATENCY_BUCKETS
from podium.types import AppendTimer

if TYPE_CHECKING:
    from podium.metrics.state import MetricState

_clock = time.perf_counter


class MeteredStore:
    """A Store whose ``append`` latency (every append) and failures feed the hub."""

    def __init__(self, inner: Any, hub: MetricState) -> None:
        self.inner = inner
        self._hub = hub
        label = (type(inner).__name__,)
        self._label = label
        self._observe = hub.histogram(hub.appends, label, LATENCY_BUCKETS).pending.append
        self._append = inner.append

    def append(self, run_id: str, events: Sequence[Any], results: Sequence[Any] = ()) -> None:
        t0 = _clock()
        try:
            self._append(run_id, events, results)
        except BaseException:
            self._failed()
            raise
        self._observe(_clock() - t0)

    @property
    def timed_append(self) -> AppendTimer:
        """The run loop times appends itself (``types.TimedStore``): the inner append, where
        each one's seconds go, and what counts one that raised."""
        return self._append, self._observe, self._failed

    def _failed(self) -> None:
        with self._hub.lock:
            errors = self._hub.append_errors
            errors[self._label] = errors.get(self._label, 0) + 1

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class MeteredExecutor:
    """An Executor whose name labels the round trips of the runs it serves, and whose nodes'
    capacity reaches the hub (``nodes()`` and, after a node loss, ``refresh()``)."""

    def __init__(self, inner: Any, hub: MetricState) -> None:
        self.inner = inner
        self.name = getattr(inner, "name", type(inner).__name__)
        self._hub = hub
        hub.executor = str(self.name)
        self.submit = inner.submit  # the inner bound method itself: no frame per task

    def kill(self, future: Any) -> None:
        self.inner.kill(future)

    def nodes(self) -> Sequence[Any]:
        nodes = self.inner.nodes()
        self._hub.set_nodes(nodes)
        return nodes

    def shutdown(self, wait: bool = True) -> None:
        self.inner.shutdown(wait)

    def __getattr__(self, name: str) -> Any:
        value = getattr(self.inner, name)
        if name == "refresh":  # live nodes after a node loss: their capacity is news too

            def refresh() -> Sequence[Any]:
                nodes = value()
                self._hub.set_nodes(nodes)
                return nodes

            return refresh
        return value
