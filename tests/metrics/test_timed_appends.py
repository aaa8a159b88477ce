"""Store append latency as the run loop times it (``types.TimedStore``): every commit of a run
is timed once, a failed append is counted (and its retry timed), and a wrapper around the
metered store keeps its own ``append`` on the path."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from metrics_tasks import TRIES

from podium.errors import StoreError
from podium.executors.local import LocalExecutor, detect_node
from podium.metrics import MetricsHub
from podium.model import TaskSpec, Workflow
from podium.runtime.engine import Engine
from podium.store.memory import MemoryStore

WORKFLOW = Workflow.build(
    "timed",
    [
        TaskSpec("a", call="metrics_tasks:nap", args={"seconds": 0.0}),
        TaskSpec("b", call="metrics_tasks:nap", args={"seconds": 0.0}, after=("a",)),
        TaskSpec("c", call="metrics_tasks:nap", args={"seconds": 0.0}, after=("a",)),
    ],
)


class FlakyStore(MemoryStore):
    """A memory store whose ``fail_at``-th append raises a transient ``StoreError`` once."""

    def __init__(self, fail_at: int = 0) -> None:
        super().__init__()
        self.fail_at, self.appends = fail_at, 0

    def append(self, run_id: str, events: Sequence[Any], results: Sequence[Any] = ()) -> None:
        self.appends += 1
        if self.appends == self.fail_at:
            raise StoreError("disk busy")
        super().append(run_id, events, results)


class Outer:
    """A wrapper of some other kind around the metered store: delegates every attribute, and
    counts the appends it is handed."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.appends = inner, 0

    def append(self, run_id: str, events: Sequence[Any], results: Sequence[Any] = ()) -> None:
        self.appends += 1
        self.inner.append(run_id, events, results)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def _run(store: Any, hub: MetricsHub) -> int:
    """Run the workflow on ``store``; return the number of commits (batches the hooks saw)."""
    TRIES.clear()
    batches: list[int] = []
    executor = LocalExecutor([detect_node()])
    try:
        result = Engine(store, executor, hooks=[hub.track("r"), lambda evs, _: batches.append(len(evs))]).run(
            WORKFLOW, run_id="r"
        )
    finally:
        executor.shutdown()
    assert result.ok
    return len(batches)


def _timed(hub: MetricsHub, label: str) -> int:
    buckets, _ = hub.snapshot()["podium_store_append_seconds"][(label,)]
    return buckets[-1][1]


def test_every_commit_is_timed_once_and_a_failed_append_is_counted() -> None:
    hub = MetricsHub()
    store = FlakyStore(fail_at=2)
    commits = _run(hub.wrap_store(store), hub)
    assert store.appends == commits + 1  # the failed one, then its retry (through the wrapper)
    assert _timed(hub, "FlakyStore") == commits
    assert hub.snapshot()["podium_store_append_errors_total"] == {("FlakyStore",): 1}


def test_a_wrapper_around_the_metered_store_keeps_its_own_append() -> None:
    hub = MetricsHub()
    outer = Outer(hub.wrap_store(MemoryStore()))
    commits = _run(outer, hub)
    assert outer.appends == commits  # not bypassed for the inner store's append
    assert _timed(hub, "MemoryStore") == commits  # timed by the metered store's own append
