"""``MeteredStore`` and ``MeteredExecutor``: the Store and Executor Protocols, timed.

They wrap any implementation and hand everything through unchanged: the same futures, the
same exceptions, and every other attribute (``cancel_requested``, ``pids``, ``queue_limits``,
``refresh``...) by delegation, so an optional executor capability the engine detects on the
inner executor is detected on the wrapper too. Invariants: a wrapper adds two clock reads and
a histogram update per call (and, for calls that carry metadata, one done-callback) and never
changes what the call does; an exception is re-raised as it came.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import Future
from functools import partial
from typing import TYPE_CHECKING, Any

from podium.metrics.catalog import DURATION_BUCKETS, LATENCY_BUCKETS

if TYPE_CHECKING:
    from podium.metrics.state import MetricState


class MeteredStore:
    """A Store whose ``append`` latency (and failures) feed the hub."""

    def __init__(self, inner: Any, hub: MetricState) -> None:
        self.inner = inner
        self._hub = hub
        label = (type(inner).__name__,)
        self._label = label
        self._hist = hub.histogram(hub.appends, label, LATENCY_BUCKETS)
        self._append = inner.append

    def append(self, run_id: str, events: Sequence[Any], results: Sequence[Any] = ()) -> None:
        t0 = time.perf_counter()
        try:
            self._append(run_id, events, results)
        except BaseException:
            with self._hub.lock:
                errors = self._hub.append_errors
                errors[self._label] = errors.get(self._label, 0) + 1
            raise
        finally:
            dt = time.perf_counter() - t0
            with self._hub.lock:
                self._hist.observe(dt)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class MeteredExecutor:
    """An Executor whose submits feed the hub, and whose attempts' round trips and metadata
    reach their run's tracker.

    Only calls that can carry metadata (``podium_meta``: the peak memory of a worker process)
    get a done-callback: every call of a remote executor, and process or container calls of
    the local one. A thread call of the local executor carries none, and a callback per call
    would cost the no-op benchmark more than all the rest of the metrics.
    """

    def __init__(self, inner: Any, hub: MetricState) -> None:
        self.inner = inner
        self.name = getattr(inner, "name", type(inner).__name__)
        self._hub = hub
        label = (str(self.name),)
        self._submits = hub.histogram(hub.submits, label, LATENCY_BUCKETS)
        self._trips = hub.histogram(hub.round_trips, label, DURATION_BUCKETS)
        self._submit = inner.submit
        self._local = self.name == "local"

    def submit(self, call: Any, *args: Any, **kwargs: Any) -> Future[Any]:
        t0 = time.perf_counter()
        fut = self._submit(call, *args, **kwargs)
        dt = time.perf_counter() - t0
        hub = self._hub
        with hub.lock:
            self._submits.observe(dt)
            tracker = hub.live.get(call.run_id)
            if tracker is not None and tracker.trips is None:
                tracker.trips = self._trips
        if not self._local or call.spec.isolation != "thread" or call.spec.kind == "container":
            fut.add_done_callback(partial(self._done, call))
        return fut

    def _done(self, call: Any, fut: Future[Any]) -> None:
        """Keep the attempt's metadata until its run's tracker counts the attempt's end."""
        meta = getattr(fut, "podium_meta", None)
        if meta and call.run_id in self._hub.live:
            self._hub.metas[(call.run_id, call.task_id, call.attempt)] = meta

    def kill(self, future: Future[Any]) -> None:
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
