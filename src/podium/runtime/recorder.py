"""The recorder: how the run loop's events become state, then durable, then visible.

``emit`` applies an event to the run's view at once (so every decision later in the turn sees
it) and buffers it in ``RunState.buf``; ``flush`` commits the buffered events, with the
results they commit, in ONE store transaction, and only then shows them to the hooks. A write
that fails transiently is retried a few times (pausing on the run's clock); after that, or on a
conflict (another orchestrator wrote the run), the error goes up and the loop stops.

What attempts wrote (``LogRecord``s the executors hand back) is kept until the turn's commit
and then written with one ``store.logs.write`` call; while attempts run, ``write_live_logs``
stores what they wrote so far (an executor that can tell, see ``types.LoggingExecutor``), so
``podium logs --follow`` sees it. A log is written after the events of its attempt and a
failed log write never stops the run (logs are not the run's state).

A store wrapper that times appends (``types.TimedStore``: the metrics hub's) has them timed
here, around the inner store's append, instead of in a frame of its own; a retried append goes
through the wrapper's ``append``.

A store that keeps snapshots (``types.SnapshotStore``) gets one of the view of a run whose log
has ``SNAPSHOT_EVENTS`` events or more: after the commit of the run's final event (also of a
resume), and after a commit ``SNAPSHOT_EVERY`` seconds or more since the last once as many
events again were committed (longer when encoding is slow: at most ``1/SNAPSHOT_SHARE`` of the
run's time goes to them), so readers fold only the events since (``runtime.snapshot``). A
shorter log folds about as fast as a snapshot is made, so small runs pay nothing. A snapshot
that fails to encode or write never stops the run: the log is the run's state, a snapshot only
a shortcut to it.

Invariants: events get consecutive ``seq`` numbers; nothing in a buffer reaches the hooks
before it is committed; a failed commit leaves the buffer as it was.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from typing import Any

from podium.errors import ConflictError, StoreError
from podium.model import events as ev
from podium.model import states as st
from podium.model.events import Event, ResultRecord
from podium.model.logs import LogRecord
from podium.model.usage import usage_record
from podium.runtime.snapshot import encode
from podium.runtime.state import RunState
from podium.runtime.view import RunView
from podium.types import AttemptMeta, Clock, Executor, LoggingExecutor, SnapshotStore, Store, timed_append

Hook = Callable[[Sequence[Event], RunView], None]

#: Pauses (seconds) before each retry of a failed store write; then the loop stops (it never
#: acts on a state that is not durable).
WRITE_RETRIES = (0.05, 0.2, 1.0)
_NO_DATA: dict[str, Any] = {}  # shared by events without data; never mutated
#: Seconds between snapshots of a running run's view (see the module docstring).
SNAPSHOT_EVERY = 10.0
#: A log shorter than this gets no snapshot; nor one more often than this many events.
SNAPSHOT_EVENTS = 50_000
#: Snapshots take at most about 1/SNAPSHOT_SHARE of a run's time.
SNAPSHOT_SHARE = 50
_FINAL = frozenset({ev.RUN_SUCCEEDED, ev.RUN_FAILED, ev.RUN_CANCELLED})
_new = tuple.__new__
_perf = time.perf_counter


class Recorder:
    """Emits a run's events and commits them (see the module docstring)."""

    def __init__(
        self,
        state: RunState,
        store: Store,
        clock: Clock,
        hooks: Sequence[Hook] = (),
        executor: Executor | None = None,
    ) -> None:
        self.state = state
        self.store = store
        self.clock = clock
        self.hooks = list(hooks)
        self.logs: list[LogRecord] = []  # logs of finished attempts, written after the next commit
        logs = getattr(store, "logs", None)  # a store from before logs: they are not kept
        self._write_logs = logs.write if logs is not None else None
        live = executor.live_logs if isinstance(executor, LoggingExecutor) else None  # checked once
        self._live_logs = live if self._write_logs is not None else None
        self._view, self._apply, self._now = state.view, state.view.apply, clock.time
        self._buf_append = state.buf.append
        self._put_snapshot = store.put_snapshot if isinstance(store, SnapshotStore) else None
        # a store wrapper that times appends (metrics) has the loop time them (``TimedStore``)
        self._timed = timed_append(store)
        self._snapshot_at = clock.monotonic() + SNAPSHOT_EVERY
        self._snapshot_seq = state.view.last_seq  # what a snapshot would save reading is after it

    def emit(
        self, typ: str, task_id: str | None = None, attempt: int = 0, data: dict[str, Any] | None = None
    ) -> None:
        """Apply an event to the view and buffer it for the turn's one commit."""
        # tuple.__new__ builds the same Event as Event(...) without the NamedTuple's Python __new__
        e = _new(Event, (self._view.last_seq + 1, typ, task_id, attempt, self._now(), data or _NO_DATA))
        self._apply(e)
        self._buf_append(e)

    def flush(self) -> None:
        """Commit buffered events and results in one transaction, retrying transient failures."""
        s = self.state
        if not s.buf:
            return
        events, results = s.buf, s.buf_results
        try:
            if self._timed is None:
                self.store.append(s.run_id, events, results)
            else:  # timed here, in the loop's frame: no wrapper frame per append
                append, took, failed = self._timed
                t0 = _perf()
                try:
                    append(s.run_id, events, results)
                except BaseException:
                    failed()
                    raise
                took(_perf() - t0)
        except ConflictError:
            raise
        except StoreError:
            self._append_retrying(events, results)
        s.buf, s.buf_results = [], []
        self._buf_append = s.buf.append
        for h in self.hooks:
            h(events, s.view)
        if self.logs:
            logs, self.logs = self.logs, []
            self._store_logs(logs)
        if (
            self._put_snapshot is not None
            and self._view.last_seq >= SNAPSHOT_EVENTS
            and (
                events[-1].type in _FINAL
                or (
                    self._view.last_seq - self._snapshot_seq >= SNAPSHOT_EVENTS
                    and self.clock.monotonic() >= self._snapshot_at
                )
            )
        ):
            self.snapshot()

    def snapshot(self) -> None:
        """Hand the store a snapshot of the view as of the last commit (never stops the run)."""
        if self._put_snapshot is None or self.state.buf:
            return
        started = self.clock.monotonic()
        seq = self._view.last_seq
        with contextlib.suppress(StoreError, TypeError, ValueError, RecursionError):
            self._put_snapshot(self.state.run_id, seq, encode(self._view))
            self._snapshot_seq = seq
        now = self.clock.monotonic()
        self._snapshot_at = now + max(SNAPSHOT_EVERY, SNAPSHOT_SHARE * (now - started))

    def ended(self, meta: AttemptMeta, task_id: str, attempt: int) -> dict[str, Any] | None:
        """Take what the executor told about an attempt that ended: keep its log, to be
        written after the commit of its outcome (the executor's record may name the call
        differently, as Ray's does); return its measured usage for the event (or None)."""
        log = meta.get("log")
        if log is not None and self._write_logs is not None:
            self.logs.append(log._replace(task_id=task_id, attempt=attempt))
        return usage_record(meta)

    def write_live_logs(self) -> None:
        """Store what this run's running attempts wrote so far."""
        if self._live_logs is None:
            return
        tasks = self.state.view.tasks
        mine = []
        for log in self._live_logs():  # the executor may serve other runs too: keep ours
            t = tasks.get(log.task_id)
            if t is not None and t.attempt == log.attempt and t.state == st.RUNNING:
                mine.append(log)
        if mine:
            self._store_logs(mine)

    def _store_logs(self, logs: list[LogRecord]) -> None:
        with contextlib.suppress(StoreError):  # a lost log must not stop the run
            self._write_logs(self.state.run_id, logs)  # type: ignore[misc]

    def _append_retrying(self, events: list[Event], results: list[ResultRecord]) -> None:
        """The append failed transiently: retry it a few times, then give up (re-raise)."""
        for i, pause in enumerate(WRITE_RETRIES):
            self.clock.sleep(pause * (1 + i * 0.1))
            try:
                self.store.append(self.state.run_id, events, results)
                return
            except ConflictError:
                raise
            except StoreError:
                if i == len(WRITE_RETRIES) - 1:
                    raise
