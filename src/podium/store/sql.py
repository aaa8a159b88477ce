"""SqlStore: the ``Store`` Protocol on a SQL database, shared by SQLite and PostgreSQL.

The two backends differ only in small hooks (see ``SqlStore``): how a connection is had, how a
write transaction begins and ends, how many rows are inserted at once, which driver error is a
unique violation, and the placeholder (``?`` or ``%s``). Everything else (statements, row
mapping, conflict detection and wording, history buffering, result tags) lives here once.

Invariants:
- One ``append`` (and one ``create_run``) is one transaction: events, results and history rows
  commit together or not at all. A duplicate ``(run_id, seq)`` or a second result for a task of
  a run raises ``ConflictError`` naming them; any other database failure raises ``StoreError``;
  both after a rollback. Every public method ends its transaction.
- One connection per store object, guarded by one lock: the engine writes from its thread,
  CLI/API threads may read concurrently.
- Results and cache entries are written with a tag made by this store's key and handed back only
  if it checks (``keys``): a result written or altered without the key comes back as corrupt.
- History rows (measured durations) are buffered and written with the append carrying a run's
  final event, every ``HISTORY_BATCH`` rows, before this object answers ``durations`` or
  ``history``, and on ``close``: each page an append dirties costs the database a write. A crash
  can lose buffered rows; they only feed estimates, and the events they come from are kept.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from podium.errors import ConflictError, NotFoundError, StoreError
from podium.model.events import RUN_CANCELLED, RUN_FAILED, RUN_SUCCEEDED, Event, ResultRecord, RunRecord
from podium.store import codec
from podium.store.files import warn
from podium.store.keys import ResultSigner, load_key
from podium.store.logs import SqlLogs
from podium.store.statements import Statements

T = TypeVar("T")
#: History rows buffered before they are written with the next append.
HISTORY_BATCH = 512
FINAL_EVENTS = frozenset({RUN_SUCCEEDED, RUN_FAILED, RUN_CANCELLED})


class SqlStore:
    """The ``Store`` Protocol over a DB-API connection; subclasses supply the dialect hooks.

    Hooks: ``SQL`` (statements with the dialect's placeholder), ``_connection()`` (the live
    connection, caller holds the lock), ``_begin``/``_commit``/``_rollback``, ``_batch`` (a
    context in which a transaction's statements are sent together), ``_many`` (one statement
    over many rows), ``_unique_table`` (the table a unique violation is on, or None),
    ``_errors`` (the driver's error classes), ``_label`` (how messages name the store) and
    ``_close_connection``."""

    SQL: Statements
    _errors: tuple[type[BaseException], ...] = ()
    #: Whether a new key may replace a lost one (see ``_load_signer``).
    _may_replace_key = False
    #: How a user points this kind of store at its key file (for messages).
    _key_hint = "the key file's path"

    def __init__(self) -> None:
        self.signer = ResultSigner.ephemeral()  # replaced by the store's own (``_load_signer``)
        self._lock = threading.Lock()
        self._workflows: dict[str, str] = {}  # run_id -> workflow name, for history rows
        self._history: list[codec.HistoryRow] = []  # committed successes not yet in the history table
        self.logs = SqlLogs(self.SQL, self._query, self._write_many)  # what task attempts wrote
        self._closed = False

    # -- dialect hooks ----------------------------------------------------------------------
    _label = "SQL store"

    def _connection(self) -> Any:
        raise NotImplementedError

    def _begin(self, conn: Any) -> None: ...

    def _commit(self, conn: Any) -> None:
        conn.commit()

    def _rollback(self, conn: Any) -> None:
        with contextlib.suppress(Exception):
            conn.rollback()

    def _batch(self, conn: Any) -> contextlib.AbstractContextManager[Any]:
        return contextlib.nullcontext()

    def _many(self, conn: Any, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        conn.executemany(sql, rows)

    def _unique_table(self, err: BaseException) -> str | None:
        return None

    def _close_connection(self) -> None: ...

    # -- plumbing ---------------------------------------------------------------------------
    def __enter__(self) -> SqlStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _fail(self, what: str, e: BaseException) -> StoreError:
        text = str(e).strip()
        return StoreError(
            f"{self._label}: {what} failed: {text.splitlines()[0] if text else type(e).__name__}"
        )

    @contextlib.contextmanager
    def _statement(self, what: str) -> Iterator[Any]:
        """The connection for one read or single-statement change, in its own transaction."""
        with self._lock:
            conn = self._connection()
            try:
                yield conn
                self._commit(conn)
            except self._errors as e:
                self._rollback(conn)
                raise self._fail(what, e) from None
            except BaseException:
                self._rollback(conn)
                raise

    def _query(self, what: str, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with self._statement(what) as conn:
            return list(conn.execute(sql, params).fetchall())

    def _write_many(self, what: str, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """One statement over ``rows`` in one transaction of its own."""
        with self._statement(what) as conn, self._batch(conn):
            self._begin(conn)
            self._many(conn, sql, rows)

    def _change(self, what: str, sql: str, params: Sequence[Any] = ()) -> int:
        with self._statement(what) as conn:
            return int(conn.execute(sql, params).rowcount)

    def _workflow(self, conn: Any, run_id: str) -> str:
        """The run's workflow name (for history rows); ``NotFoundError`` if the run is unknown.
        Caller holds the lock."""
        wf = self._workflows.get(run_id)
        if wf is None:
            try:
                row = conn.execute(self.SQL.select_workflow, (run_id,)).fetchone()
            except self._errors as e:
                self._rollback(conn)
                raise self._fail(f"append to run {run_id!r}", e) from None
            if row is None:
                self._rollback(conn)
                raise NotFoundError(f"run {run_id!r} not found")
            wf = self._workflows[run_id] = row[0]
        return wf

    def _write(
        self,
        conn: Any,
        run_id: str,
        first: tuple[str, Sequence[Any]] | None,
        rows: Sequence[codec.EventRow],
        results: Sequence[codec.ResultRow],
        history: Sequence[codec.HistoryRow],
        what: str = "",
    ) -> None:
        """One transaction (caller holds the lock): ``first`` (a run row), the event rows, the
        deletion of results their ``TaskInvalidated``/``TaskCleared`` events drop, results, history."""
        sql = self.SQL
        try:
            with self._batch(conn):
                self._begin(conn)
                if first is not None:
                    conn.execute(*first)
                if rows:
                    self._many(conn, sql.insert_event, rows)
                    dropped = codec.invalidated(run_id, rows)
                    if dropped:
                        self._many(conn, sql.delete_result, dropped)
                if results:
                    self._many(conn, sql.insert_result, results)
                if history:
                    self._many(conn, sql.insert_history, history)
            self._commit(conn)
        except self._errors as e:
            self._rollback(conn)
            table = self._unique_table(e)
            if table is None:
                raise self._fail(what or f"append to run {run_id!r}", e) from None
            raise self._conflict(conn, table, run_id, rows, results) from None
        except BaseException:
            self._rollback(conn)
            raise

    def _conflict(
        self,
        conn: Any,
        table: str,
        run_id: str,
        rows: Sequence[codec.EventRow],
        results: Sequence[codec.ResultRow],
    ) -> ConflictError:
        """The ``ConflictError`` for a unique violation on ``table``, naming what was already there
        (looked up after the rollback; only the wording depends on it)."""
        if table == "runs":
            return ConflictError(f"run {run_id!r} already exists")
        found: set[Any] = set()
        with contextlib.suppress(*self._errors):
            if table == "events" and rows:
                seqs = [r[1] for r in rows]
                dup = codec.duplicates(seqs)
                if not dup:
                    cur = conn.execute(self.SQL.seqs_between, (run_id, min(seqs), max(seqs)))
                    found = {r[0] for r in cur.fetchall()}
                    dup = sorted(set(seqs) & found)
                self._commit(conn)
                return ConflictError(codec.seq_conflict_message(run_id, dup))
            taken = codec.duplicates(r[1] for r in results)
            if not taken:
                found = {r[0] for r in conn.execute(self.SQL.result_tasks, (run_id,)).fetchall()}
                taken = sorted({r[1] for r in results} & found)
            self._commit(conn)
            return ConflictError(codec.result_conflict_message(run_id, taken))
        self._rollback(conn)
        if table == "events":
            return ConflictError(codec.seq_conflict_message(run_id, []))
        return ConflictError(codec.result_conflict_message(run_id, []))

    def _signed(self, run_id: str, results: Sequence[ResultRecord]) -> list[codec.ResultRow]:
        tag = self.signer.tag
        return [(run_id, t, a, bytes(d), c, e, tag(e, c)) for t, a, d, c, e in results]

    def _load_signer(self, path: Path) -> None:
        """Take the store's key from ``path`` (made on first use) and record its id in the
        database; refuse a key other than the recorded one. Where ``_may_replace_key``, a key
        file that is gone is replaced by a new key: results tagged with the old one then run
        again. Elsewhere a missing key file is an error once the database has recorded a key."""
        recorded = self._meta("key_id")
        if recorded is not None and not self._may_replace_key and not os.path.lexists(path):
            raise StoreError(
                f"{self._label}: its results are tagged with key {recorded}, but there is no key file "
                f"at {path}: copy this store's key file there, or set {self._key_hint} (see docs/store.md)"
            )
        key, created = load_key(path, create=recorded is None or self._may_replace_key)
        self.signer = ResultSigner(key)
        if recorded is None:
            with self._statement("recording the store key") as conn:
                conn.execute(self.SQL.put_meta, ("key_id", self.signer.id))
            recorded = self._meta("key_id")  # another process may have recorded its key first
        if recorded == self.signer.id:
            return
        if created and self._may_replace_key:
            with self._statement("recording the store key") as conn:
                conn.execute(self.SQL.delete_meta, ("key_id",))
                conn.execute(self.SQL.put_meta, ("key_id", self.signer.id))
            warn(
                f"{self._label}: its key file was missing, so a new key was made at {path}; "
                "results stored before cannot be authenticated and their tasks will run again"
            )
            return
        raise StoreError(
            f"{self._label}: the key at {path} (id {self.signer.id}) is not this store's key "
            f"(id {recorded}); use the store's own key file (see docs/store.md)"
        )

    def _meta(self, name: str) -> str | None:
        rows = self._query("reading the store's settings", self.SQL.get_meta, (name,))
        return str(rows[0][0]) if rows else None

    # -- the Store Protocol -----------------------------------------------------------------
    def create_run(self, run: RunRecord, events: Sequence[Event]) -> None:
        row = codec.run_row(run)
        rows = codec.event_rows(run.run_id, events)
        history = codec.history_rows(run.workflow, run.run_id, events)
        with self._lock:
            self._write(self._connection(), run.run_id, (self.SQL.insert_run, row), rows, (), history)
            self._workflows[run.run_id] = run.workflow

    def update_run(self, run_id: str, **fields: Any) -> None:
        updates = codec.run_updates(run_id, fields)
        if updates:
            p = self.SQL.param
            sets = ", ".join(f"{name} = {p}" for name, _ in updates)
            sql = f"UPDATE runs SET {sets} WHERE run_id = {p}"
            found = self._change(f"update of run {run_id!r}", sql, [v for _, v in updates] + [run_id]) > 0
        else:
            found = bool(self._query(f"reading run {run_id!r}", self.SQL.run_exists, (run_id,)))
        if not found:
            raise NotFoundError(f"run {run_id!r} not found")

    def append(self, run_id: str, events: Sequence[Event], results: Sequence[ResultRecord] = ()) -> None:
        rows = codec.event_rows(run_id, events)
        signed = self._signed(run_id, results)
        with self._lock:
            conn = self._connection()
            pending = self._history + codec.history_rows(self._workflow(conn, run_id), run_id, events)
            flush = len(pending) >= HISTORY_BATCH or any(e.type in FINAL_EVENTS for e in events)
            self._write(conn, run_id, None, rows, signed, pending if flush else ())
            self._history = [] if flush else pending

    def append_rows(
        self,
        run_id: str,
        rows: Sequence[codec.EventRow],
        results: Sequence[codec.ResultRow],
        history: Sequence[codec.HistoryRow],
    ) -> None:
        """``append`` for rows already encoded and results already tagged (by a journal): one
        transaction, history included; ``ConflictError`` if a seq or result is already there."""
        with self._lock:
            self._write(self._connection(), run_id, None, rows, results, history)

    def _decoded(self, what: str, convert: Callable[[Any], T], rows: Sequence[Any]) -> list[T]:
        """``convert`` each row; JSON that does not decode (a database altered behind the store's
        back) is a one-line ``StoreError``, never a traceback."""
        try:
            return [convert(r) for r in rows]
        except (ValueError, TypeError, RecursionError) as e:
            raise StoreError(f"{self._label}: {what}: {e} (was the database altered?)") from None

    def get_run(self, run_id: str) -> RunRecord:
        rows = self._query(f"reading run {run_id!r}", self.SQL.select_run, (run_id,))
        if not rows:
            raise NotFoundError(f"run {run_id!r} not found")
        return self._decoded(f"run {run_id!r}", codec.row_to_run, rows)[0]

    def list_runs(self, limit: int = 50) -> list[RunRecord]:
        rows = self._query("listing runs", self.SQL.list_runs, (max(limit, 0),))
        return self._decoded("listing runs", codec.row_to_run, rows)

    def events(self, run_id: str, after_seq: int = 0) -> list[Event]:
        rows = self._query(f"reading events of run {run_id!r}", self.SQL.select_events, (run_id, after_seq))
        return self._decoded(f"run {run_id!r}", codec.row_to_event, rows)

    def results(self, run_id: str, artifacts_only: bool = False) -> dict[str, ResultRecord]:
        sql = self.SQL.select_artifact_results if artifacts_only else self.SQL.select_results
        rows = self._query(f"reading results of run {run_id!r}", sql, (run_id,))
        check = self.signer.record
        return {r[0]: check(r) for r in rows}

    def put_snapshot(self, run_id: str, seq: int, data: bytes) -> None:
        """``SnapshotStore.put_snapshot``: refused past the run's last committed event; an older
        snapshot than the one kept changes nothing."""
        with self._statement(f"keeping a snapshot of run {run_id!r}") as conn:
            self._begin(conn)
            last = conn.execute(self.SQL.last_seq, (run_id,)).fetchone()
            if last is None or last[0] is None or int(last[0]) < seq:
                raise StoreError(f"snapshot of run {run_id!r} at seq {seq} is ahead of its log")
            conn.execute(self.SQL.upsert_snapshot, (run_id, seq, data))

    def snapshot(self, run_id: str) -> tuple[int, bytes] | None:
        rows = self._query(f"reading the snapshot of run {run_id!r}", self.SQL.select_snapshot, (run_id,))
        return (int(rows[0][0]), bytes(rows[0][1])) if rows else None

    def artifact_refs(self) -> list[bytes]:
        return [bytes(r[0]) for r in self._query("reading artifact references", self.SQL.artifact_refs, ())]

    def cache_get(self, key: str) -> ResultRecord | None:
        rows = self._query("reading the cache", self.SQL.select_cache, (key,))
        return self.signer.record(rows[0]) if rows else None

    def cache_put(self, key: str, result: ResultRecord) -> None:
        task_id, attempt, data, checksum, encoding = result
        row = (
            key,
            task_id,
            attempt,
            bytes(data),
            checksum,
            encoding,
            self.signer.tag(encoding, checksum),
            time.time(),
        )
        self._change("writing the cache", self.SQL.upsert_cache, row)

    def _flush_history(self) -> None:
        """Write buffered history rows (caller holds the lock)."""
        if self._history:
            self._write(self._connection(), "", None, (), (), self._history, "writing task history")
            self._history = []

    def durations(self, workflow: str, task: str, limit: int = 20) -> list[float]:
        if self._history:
            with self._lock:
                self._flush_history()
        rows = self._query("reading task history", self.SQL.durations, (workflow, task, max(limit, 0)))
        return [float(r[0]) for r in rows]

    def history(self, workflow: str, limit: int = 20) -> dict[str, list[float]]:
        if self._history:
            with self._lock:
                self._flush_history()
        rows = self._query("reading task history", self.SQL.history, (workflow, max(limit, 0)))
        return codec.group_durations(rows)

    def request_cancel(self, run_id: str) -> None:
        if self._change(f"cancelling run {run_id!r}", self.SQL.request_cancel, (run_id,)) == 0:
            raise NotFoundError(f"run {run_id!r} not found")

    def cancel_requested(self, run_id: str) -> bool:
        rows = self._query(f"reading run {run_id!r}", self.SQL.cancel_requested, (run_id,))
        return bool(rows and rows[0][0])

    def attention(self, run_id: str | None = None) -> dict[str, list[str]]:
        if run_id is None:
            rows = self._query("reading notes on runs", self.SQL.attention_all)
        else:
            rows = self._query("reading notes on runs", self.SQL.attention_of, (run_id,))
        out: dict[str, list[str]] = {}
        for rid, message in rows:
            out.setdefault(rid, []).append(message)
        return out

    def note_attention(self, run_id: str, message: str) -> None:
        """Mark ``run_id`` as needing a person's attention, saying why."""
        row = (run_id, time.time(), message)
        self._change("noting a run that needs attention", self.SQL.insert_attention, row)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            try:
                with contextlib.suppress(StoreError, *self._errors):
                    self._flush_history()  # derived data: the events it comes from are committed
            finally:
                self._closed = True
                self._close_connection()
