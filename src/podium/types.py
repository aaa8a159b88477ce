"""Ids and every contract the runtime relies on: Executor (and its optional capabilities, the
Future of an attempt and its metadata), Store and Clock.

Invariants: ids are plain strings spelled one way everywhere (``run_id``, ``task_id``,
``attempt``); the runtime talks to executors, stores and clocks only through these contracts,
so any implementation (inline, thread, process, Ray; memory, SQLite, PostgreSQL; the system
clock or a fake one) plugs in unchanged. Optional executor capabilities are Protocols the
engine checks once when a run starts, never probed per call. This module imports nothing of
ours at run time.
"""

from __future__ import annotations

import threading
import time as _time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, InvalidStateError
from concurrent.futures._base import CANCELLED, CANCELLED_AND_NOTIFIED, FINISHED, PENDING, RUNNING
from typing import TYPE_CHECKING, Any, Protocol, TypedDict, runtime_checkable

if TYPE_CHECKING:
    from podium.model.cluster import Node
    from podium.model.events import Event, ResultRecord, RunRecord
    from podium.model.logs import LogRecord
    from podium.model.task import TaskCall

RunId = str
TaskId = str


@runtime_checkable
class Clock(Protocol):
    """Where the run loop takes all its time from: wall time in seconds (``time()``), a
    monotonic timer (``monotonic()``), pauses (``sleep``) and waits for an event with a timeout
    (``wait``). ``podium.testing.FakeClock`` is a clock whose time moves only when told to."""

    def time(self) -> float: ...

    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...

    def wait(self, event: threading.Event, timeout: float) -> bool:
        """Block until ``event`` is set or ``timeout`` seconds pass on this clock; return
        whether it is set."""
        ...


class SystemClock:
    """The real clock."""

    time = staticmethod(_time.time)
    monotonic = staticmethod(_time.monotonic)
    sleep = staticmethod(_time.sleep)

    @staticmethod
    def wait(event: threading.Event, timeout: float) -> bool:
        return event.wait(timeout)


class AttemptMeta(TypedDict, total=False):
    """What an executor may tell about one attempt, as ``AttemptFuture.podium_meta``.

    Every key is optional. The run loop reads ``node``, ``started`` and ``seconds``, records
    ``cpu_time``, ``peak_rss``, ``seconds`` and ``measured`` as the attempt's usage
    (``model.usage``) and stores ``log``; the others are for people and tools (``podium show``,
    tests).
    """

    node: str  #: the node the attempt really ran on (differs from ``call.node`` after a node loss)
    seconds: float  #: seconds the task's function ran on its worker (no dispatch, no queueing)
    started: float  #: wall time (``time.time()``) at which the function started on its worker
    pid: int  #: the worker process that ran it
    peak_rss: int  #: peak resident memory of that process, bytes
    cpu_time: float  #: CPU seconds (user + system) the attempt used, as ``measured`` tells
    measured: str  #: what measured ``cpu_time``/``peak_rss``: process, thread, ray, container
    exit: int  #: that process's exit status (negative: killed by that signal)
    size: int  #: bytes of the pickled result on the worker
    node_id: str  #: the cluster's own id of the node (Ray's node id)
    error: dict[str, Any]  #: the worker's ``ErrorRecord`` dict, when its task failed there
    log: LogRecord  #: what the attempt wrote (stdout, stderr, logging); absent if nothing


_DONE = frozenset({CANCELLED, CANCELLED_AND_NOTIFIED, FINISHED})


class AttemptFuture(Future[Any]):
    """The Future of one task attempt: what an executor's ``submit`` should return.

    A stdlib ``Future`` (same states, same lock, same semantics) that also carries:

    - ``outcome``: ``(value, None)`` or ``(None, exception)``, recorded under the future's lock
      by whichever ``set_result``/``set_exception`` resolves it, before its done-callbacks run;
      ``None`` before that (and for a future cancelled with ``cancel()``). The run loop reads it
      in its done-callback instead of calling ``result()`` (which takes the lock again).
    - ``podium_meta``: the attempt's ``AttemptMeta``, set by the executor before it resolves
      the future (``None``: it has nothing to tell).

    Its per-attempt methods (start, resolve, add a callback) take the lock directly rather than
    through ``Condition``'s Python wrappers and wake waiters only when a thread waits (about
    1 us less per task); anything unusual goes to ``Future``'s own code. Executors may return a
    plain ``Future``: the loop then reads it through ``result()`` (see ``outcome_of``).
    """

    outcome: tuple[Any, BaseException | None] | None = None
    podium_meta: AttemptMeta | None = None

    if TYPE_CHECKING:  # parts of ``Future`` used below that its type stubs do not declare
        _done_callbacks: list[Callable[[Future[Any]], object]]

        def _invoke_callbacks(self) -> None: ...

    def set_running_or_notify_cancel(self) -> bool:
        cond = self._condition
        cond.acquire()
        try:
            if self._state == PENDING:
                self._state = RUNNING
                return True
        finally:
            cond.release()
        return super().set_running_or_notify_cancel()

    def set_result(self, result: Any) -> None:
        self._settle(result, None)

    def set_exception(self, exception: BaseException | None) -> None:
        self._settle(None, exception)

    def _settle(self, value: Any, exception: BaseException | None) -> None:
        cond = self._condition
        cond.acquire()
        try:
            if self._state in _DONE:
                raise InvalidStateError(f"{self._state}: {self!r}")
            if exception is None:
                self._result = value
            else:
                self._exception = exception
            self._state = FINISHED
            self.outcome = (value, exception)
            for waiter in self._waiters:
                if exception is None:
                    waiter.add_result(self)
                else:
                    waiter.add_exception(self)
            if getattr(cond, "_waiters", True):  # threads blocked in result()/exception()
                cond.notify_all()
        finally:
            cond.release()
        self._invoke_callbacks()

    def add_done_callback(self, fn: Callable[[Future[Any]], object]) -> None:
        cond = self._condition
        cond.acquire()
        try:
            if self._state not in _DONE:
                self._done_callbacks.append(fn)
                return
        finally:
            cond.release()
        super().add_done_callback(fn)  # already done: Future calls it now


def outcome_of(future: Future[Any]) -> tuple[Any, BaseException | None]:
    """How a done future ended: ``(value, None)`` or ``(None, exception)`` (``CancelledError``
    for a cancelled one). Cheap for an ``AttemptFuture``; any other through ``result()``."""
    if isinstance(future, AttemptFuture):
        outcome = future.outcome
        if outcome is not None:
            return outcome
    try:
        return future.result(timeout=0), None
    except BaseException as e:  # the attempt's own error, whatever its type
        return None, e


def meta_of(future: Future[Any]) -> AttemptMeta | None:
    """The attempt's metadata: ``podium_meta`` of an ``AttemptFuture``, or of a plain ``Future``
    an executor set it on (the contract before ``AttemptFuture``)."""
    if isinstance(future, AttemptFuture):
        return future.podium_meta
    return getattr(future, "podium_meta", None)


@runtime_checkable
class Executor(Protocol):
    """Runs task calls somewhere and hands back Futures (``AttemptFuture``, or plain ones).

    ``submit`` must not block on the task. The Future resolves to the task's return value, or
    raises ``TaskFailedError`` carrying an ``ErrorRecord``. ``kill`` stops a running call
    (process group for processes; abandon for threads) and is a no-op for finished calls.
    """

    name: str

    def submit(self, call: TaskCall) -> Future[Any]: ...

    def kill(self, future: Future[Any]) -> None: ...

    def nodes(self) -> Sequence[Node]: ...

    def shutdown(self, wait: bool = True) -> None: ...


@runtime_checkable
class RefreshingExecutor(Executor, Protocol):
    """An executor that can tell which nodes are alive now (optional; the engine uses it when
    present). ``refresh()`` re-reads the cluster and returns the live nodes; after an attempt
    fails as ``worker_lost`` the engine adopts them: lost nodes leave the placement, new ones
    become usable."""

    def refresh(self) -> Sequence[Node]: ...


@runtime_checkable
class WatchingExecutor(RefreshingExecutor, Protocol):
    """A refreshing executor that watches its nodes on its own (optional): ``nodes_epoch()``
    is a number, cheap to read, that changes whenever its live nodes do (one lost, suspect,
    back or joined). The engine reads it between turns and adopts ``refresh()`` when it moved,
    so a node that comes back or joins gets work without waiting for a lost worker."""

    def nodes_epoch(self) -> int: ...


@runtime_checkable
class GangExecutor(Executor, Protocol):
    """An executor that starts gang-scheduled calls (optional; the engine refuses a workflow
    with ``workers`` > 1 on an executor without it). For such a call it starts one worker per
    ``call.grants`` entry, together, with torch.distributed's ``env://`` variables; the one
    Future resolves to rank 0's result, or fails once every worker has stopped after one of
    them failed (the others are killed)."""

    runs_gangs: bool


@runtime_checkable
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
class ServiceExecutor(Executor, Protocol):
    """An executor whose service tasks run on this machine (optional; a workflow with
    ``kind: service`` tasks needs it, see ``podium.runtime.services``): the engine keeps a
    started service alive, restarts it on its port, and stops it, through these."""

    def start_service(self, call: TaskCall, port: int | None = None) -> dict[str, Any]: ...

    def stop_service(self, record: Any) -> bool: ...

    def service_alive(self, record: Any) -> bool: ...


@runtime_checkable
class LoggingExecutor(Executor, Protocol):
    """An executor that can show what its running attempts wrote so far (optional; the engine
    stores these logs now and then while the attempts run, so ``podium logs --follow`` sees
    them). ``live_logs()`` returns a ``LogRecord`` per running attempt that wrote something."""

    def live_logs(self) -> Sequence[LogRecord]: ...


class LogStore(Protocol):
    """Where a store keeps what task attempts wrote (``Store.logs``): one ``LogRecord`` per
    (run, task, attempt). Reads and writes are each one transaction of their own."""

    def write(self, run_id: RunId, logs: Sequence[LogRecord]) -> None:
        """Store these records, each replacing an earlier one of the same attempt (a running
        attempt's log grows); a text over the bound keeps its end."""

    def get(self, run_id: RunId, task_id: TaskId, attempt: int | None = None) -> LogRecord | None:
        """An attempt's record (``attempt`` None: the latest attempt with one), or None."""

    def read(
        self,
        run_id: RunId,
        task_id: TaskId,
        attempt: int | None = None,
        offset: int = 0,
        limit: int | None = None,
        tail: int | None = None,
    ) -> tuple[str, int]:
        """Bytes ``[offset, offset+limit)`` (or the last ``tail`` bytes) of an attempt's shown
        log (``LogRecord.shown``) and its size in bytes; ``("", 0)`` when there is none."""

    def index(self, run_id: RunId) -> list[tuple[TaskId, int, int]]:
        """``(task_id, attempt, size in bytes)`` of the run's logs, in the order the attempts
        first wrote."""


@runtime_checkable
class Store(Protocol):
    """Durable event log, results, cache and run history. One ``append`` is one transaction.

    ``append`` rejects an event whose ``seq`` already exists for the run (``ConflictError``),
    which fences two orchestrators writing one run. Any failed write raises ``StoreError``
    and leaves nothing of that call committed. ``logs`` holds what task attempts wrote.
    """

    @property
    def logs(self) -> LogStore: ...

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

    def results(self, run_id: RunId, artifacts_only: bool = False) -> dict[TaskId, ResultRecord]:
        """Every committed result of the run by task instance id; with ``artifacts_only`` only
        those kept as artifact references (small rows: listings read no values)."""

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

    def artifact_refs(self) -> list[bytes]:
        """The data of every result and cache entry kept as an artifact reference (encoding
        ``artifact``), for garbage collection."""

    def attention(self, run_id: RunId | None = None) -> dict[RunId, list[str]]:
        """Why runs need a person's attention (a damaged journal record set aside, ...): notes by
        run id, of ``run_id`` or of every run; empty when all is well."""

    def close(self) -> None: ...


@runtime_checkable
class SnapshotStore(Protocol):
    """A store that keeps, per run, the latest snapshot of the run's view (``runtime.snapshot``):
    the run summary readers start from instead of folding the whole log.

    Invariant: a snapshot is never ahead of the log: ``put_snapshot`` refuses (``StoreError``)
    a seq beyond the run's last committed event, and a reader applies the events after the
    snapshot's seq. A store keeps one snapshot per run and never replaces it with an older one.
    """

    def put_snapshot(self, run_id: RunId, seq: int, data: bytes) -> None:
        """Keep ``data``, the run's view as of event ``seq``, as the run's snapshot."""

    def snapshot(self, run_id: RunId) -> tuple[int, bytes] | None:
        """The run's snapshot as ``(seq, data)``, or None if it has none."""


#: ``TimedStore.timed_append``: the inner store's ``append``, what takes the seconds of each
#: append that returned, and what is told of each append that raised.
AppendTimer = tuple[Callable[..., None], Callable[[float], None], Callable[[], None]]


class TimedStore(Protocol):
    """A store wrapper that lets the run loop time its appends in the loop's own frame (a
    wrapper's frame around every append costs a run more than the clock does; the metrics
    hub's ``MeteredStore``). ``timed_append`` is ``(append, took, failed)`` (``AppendTimer``).
    Only a store whose *type* defines ``timed_append`` is one (see
    ``timed_append``), so a wrapper around one that delegates attributes is not mistaken for it
    and its own ``append`` is still called."""

    @property
    def timed_append(self) -> AppendTimer: ...


def timed_append(store: object) -> AppendTimer | None:
    """``store.timed_append`` if the store's type defines it (``TimedStore``), else None."""
    return store.timed_append if hasattr(type(store), "timed_append") else None  # type: ignore[attr-defined, no-any-return]


class ArtifactStore(Protocol):
    """Large results as content-addressed objects outside the run store (``podium.store.artifacts``:
    a local folder or an S3-compatible bucket). An object's only name is the digest of its bytes
    by ``algorithm`` (``blake3``; objects written before it are named by ``sha256``). A local
    folder also keeps trees (``put_tree``/``tree``: folders tasks returned as ``podium.Artifact``)."""

    url: str
    #: Results whose encoding is larger than this many bytes are kept here.
    threshold: int
    #: The hash that names the objects ``put`` writes.
    algorithm: str

    def put(self, chunks: Sequence[Any]) -> tuple[str, int]:
        """Store the concatenation of ``chunks`` (bytes-like) whole; returns its digest and size."""

    def get(
        self, digest: str, size: int, head: Callable[[bytes], int], algorithm: str = "sha256"
    ) -> tuple[bytes, memoryview]:
        """The object's first ``head(first bytes)`` bytes as a private copy and the whole object
        as a view, after its size and digest (by ``algorithm``) check (``StoreError`` otherwise)."""

    def exists(self, digest: str) -> bool: ...

    def where(self, digest: str) -> str:
        """Where the object lives, for people (a path or an ``s3://`` URL)."""

    def objects(self) -> Iterator[tuple[str, int, float]]:
        """``(name, size, modified)`` of every object (and unfinished temporary)."""

    def remove(self, name: str) -> None:
        """Delete an object or temporary named as ``objects`` names it."""
