"""Ids and the Protocols the runtime depends on (Executor, Store, Clock).

Invariants: ids are plain strings spelled one way everywhere (``run_id``, ``task_id``,
``attempt``); the runtime talks to executors and stores only through these Protocols, so any
implementation (thread, process, Ray; memory, SQLite, PostgreSQL) plugs in unchanged.
This module imports nothing of ours at run time.
"""

from __future__ import annotations

import time as _time
from collections.abc import Sequence
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from podium.model.cluster import Node
    from podium.model.events import Event, ResultRecord, RunRecord
    from podium.model.task import TaskCall

RunId = str
TaskId = str


@runtime_checkable
class Clock(Protocol):
    """Wall time in seconds (``time()``) and a monotonic timer (``monotonic()``)."""

    def time(self) -> float: ...

    def monotonic(self) -> float: ...


class SystemClock:
    """The real clock."""

    time = staticmethod(_time.time)
    monotonic = staticmethod(_time.monotonic)


@runtime_checkable
class Executor(Protocol):
    """Runs task calls somewhere and hands back stdlib Futures.

    ``submit`` must not block on the task. The Future resolves to the task's return value, or
    raises ``TaskFailedError`` carrying an ``ErrorRecord``. ``kill`` stops a running call
    (process group for processes; abandon for threads) and is a no-op for finished calls.
    """

    name: str

    def submit(self, call: TaskCall) -> Future[Any]: ...

    def kill(self, future: Future[Any]) -> None: ...

    def nodes(self) -> Sequence[Node]: ...

    def shutdown(self, wait: bool = True) -> None: ...


class QueueingExecutor(Executor, Protocol):
    """An executor that can queue a call behind another on the same worker (optional; the
    engine uses it when present, see ``podium.runtime.lanes``).

    ``submit(call, follow=f)`` runs the call on the worker of ``f``'s call, right after it and
    never beside anything else there; its Future resolves after ``f``'s. If that worker is lost,
    killed or timed out, the call fails as ``worker_lost`` without running. ``queue_limits(node)``
    is ``(depth, round_trip)``: how many calls may wait behind a running one on ``node`` (0: none)
    and the seconds a call's round trip adds to its run time there.
    """

    def submit(self, call: TaskCall, follow: Future[Any] | None = None) -> Future[Any]: ...

    def queue_limits(self, node: str) -> tuple[int, float]: ...


@runtime_checkable
class Store(Protocol):
    """Durable event log, results, cache and run history. One ``append`` is one transaction.

    ``append`` rejects an event whose ``seq`` already exists for the run (``ConflictError``),
    which fences two orchestrators writing one run. Any failed write raises ``StoreError``
    and leaves nothing of that call committed.
    """

    def create_run(self, run: RunRecord, events: Sequence[Event]) -> None:
        """Insert the run row and its first events in one transaction (``ConflictError`` if
        the run id exists)."""

    def update_run(self, run_id: RunId, **fields: Any) -> None:
        """Set header fields: ``status``, ``owner``, ``updated_at``, ``params``, ``source``,
        ``cancel_requested`` (a run that starts again clears its old cancel request)."""

    def append(self, run_id: RunId, events: Sequence[Event], results: Sequence[ResultRecord] = ()) -> None:
        """Append events (and the results they commit) atomically. Also records, for every
        ``TaskSucceeded`` carrying ``data["duration"]``, a history row used by ``durations``.
        History is derived data: a store may buffer it, but this object's own ``durations``
        sees it at once and other objects see it by the run's final event or ``close``."""

    def get_run(self, run_id: RunId) -> RunRecord:
        """The run's header; ``NotFoundError`` if unknown."""

    def list_runs(self, limit: int = 50) -> list[RunRecord]:
        """Newest first."""

    def events(self, run_id: RunId, after_seq: int = 0) -> list[Event]:
        """Events with ``seq > after_seq`` in seq order."""

    def results(self, run_id: RunId) -> dict[TaskId, ResultRecord]:
        """Every committed result of the run by task instance id."""

    def cache_get(self, key: str) -> ResultRecord | None: ...

    def cache_put(self, key: str, result: ResultRecord) -> None: ...

    def durations(self, workflow: str, task: str, limit: int = 20) -> list[float]:
        """Recent measured durations (seconds) of task ``task`` (a spec name; map items count
        under their map's name) in runs of ``workflow``, newest first."""

    def history(self, workflow: str, limit: int = 20) -> dict[str, list[float]]:
        """``durations`` of every task of ``workflow`` at once (one query), by task name."""

    def request_cancel(self, run_id: RunId) -> None:
        """Ask the run's orchestrator (in any process) to cancel it."""

    def cancel_requested(self, run_id: RunId) -> bool: ...

    def close(self) -> None: ...
