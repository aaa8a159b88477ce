"""SqliteStore: the default, zero-infrastructure ``Store`` on one SQLite file.

Invariants:
- One ``append`` (and one ``create_run``) is one ``BEGIN IMMEDIATE ... COMMIT`` transaction:
  events, results and history rows are all committed or none. A duplicate ``(run_id, seq)`` or a
  second result for a task of a run raises ``ConflictError``; any other SQLite failure raises
  ``StoreError``; in both cases the transaction is rolled back first.
- One connection per store object, opened with ``check_same_thread=False`` and guarded by one
  lock: the engine writes from its thread, CLI/API threads may read concurrently.
- The journal is WAL, so readers in other processes (``podium runs`` during a run) never block
  the writer, and a ``busy_timeout`` makes a second writer wait instead of failing.
- History rows (measured durations, derived from ``TaskSucceeded`` events) are buffered and
  written in batches: with the append that carries a run's final event, every
  ``HISTORY_BATCH`` rows, before this object answers ``durations``, and on ``close``. Each
  page an append dirties costs a WAL frame, so this keeps a typical append at two b-tree
  pages (events, results). A crash can lose the buffered rows; they only feed estimates, and
  the event log they come from is never lost.
- The WAL is checkpointed every ``CHECKPOINT_PAGES`` pages and on ``close``, not every 1,000
  pages (SQLite's default), since a checkpoint syncs the database file.

Durability trade-off: the default ``synchronous="NORMAL"`` in WAL mode never corrupts the
database and loses nothing when a *process* crashes or is killed (a committed append is in the
WAL file, which the OS holds); after a *power loss or OS crash* the last few transactions
before the failure may be rolled back (the file stays consistent, the run resumes from a
slightly earlier prefix of its log). ``SqliteStore(path, synchronous="FULL")`` fsyncs the WAL on
every commit and keeps them too, at a large cost per append on most disks.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Sequence
from itertools import chain
from pathlib import Path
from typing import Any

from podium.errors import ConflictError, NotFoundError, StoreError, UsageError
from podium.model.events import RUN_CANCELLED, RUN_FAILED, RUN_SUCCEEDED, Event, ResultRecord, RunRecord
from podium.store import codec
from podium.store.migrations import apply_sqlite

SYNCHRONOUS_MODES = ("NORMAL", "FULL", "EXTRA")
#: History rows buffered before they are written with the next append.
HISTORY_BATCH = 512
#: WAL pages between automatic checkpoints (4 KiB pages: 64 MiB).
CHECKPOINT_PAGES = 16384
_FINAL_EVENTS = frozenset({RUN_SUCCEEDED, RUN_FAILED, RUN_CANCELLED})

_RUN_COLS = "run_id, workflow, status, created_at, updated_at, params, source, owner"
_INSERT_RUN = f"INSERT INTO runs ({_RUN_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
_INSERT_EVENT = (
    "INSERT INTO events (run_id, seq, type, task_id, attempt, ts, data) VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_RESULT = (
    "INSERT INTO results (run_id, task_id, attempt, data, checksum, encoding) VALUES (?, ?, ?, ?, ?, ?)"
)
_DELETE_RESULT = "DELETE FROM results WHERE run_id = ? AND task_id = ?"
_INSERT_HISTORY = (
    "INSERT INTO history (workflow, task, ts, run_id, seq, duration, max_rss) VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_SELECT_EVENTS = (
    "SELECT seq, type, task_id, attempt, ts, data FROM events WHERE run_id = ? AND seq > ? ORDER BY seq"
)


class SqliteStore:
    """The ``Store`` Protocol on a SQLite database file (or ``":memory:"``)."""

    def __init__(
        self, path: str | os.PathLike[str], *, synchronous: str = "NORMAL", busy_timeout: float = 30.0
    ) -> None:
        sync = synchronous.upper()
        if sync not in SYNCHRONOUS_MODES:
            raise UsageError(
                f"sqlite synchronous={synchronous!r}: expected one of {', '.join(SYNCHRONOUS_MODES)}"
            )
        self.path = os.fspath(path)
        self.synchronous = sync
        self._lock = threading.Lock()
        self._workflows: dict[str, str] = {}  # run_id -> workflow name, for history rows
        self._history: list[codec.HistoryRow] = []  # committed successes not yet in the history table
        try:
            if self.path != ":memory:" and not self.path.startswith("file:"):
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                self.path,
                timeout=busy_timeout,
                isolation_level=None,  # we issue BEGIN/COMMIT ourselves
                check_same_thread=False,
                cached_statements=64,
            )
        except (OSError, sqlite3.Error) as e:
            raise StoreError(f"cannot open sqlite store {self.path!r}: {e}") from None
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={sync}")
            conn.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
            conn.execute(f"PRAGMA wal_autocheckpoint={CHECKPOINT_PAGES}")
            apply_sqlite(conn)
        except sqlite3.Error as e:
            conn.close()
            raise StoreError(f"cannot open sqlite store {self.path!r}: {e}") from None
        self._conn: sqlite3.Connection | None = conn

    # -- plumbing ---------------------------------------------------------------------------

    def __enter__(self) -> SqliteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SqliteStore({self.path!r}, synchronous={self.synchronous!r})"

    def _c(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError(f"sqlite store {self.path!r} is closed")
        return self._conn

    def _fail(self, what: str, e: sqlite3.Error) -> StoreError:
        return StoreError(f"sqlite store {self.path!r}: {what} failed: {e}")

    def _query(self, what: str, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with self._lock:
            try:
                return self._c().execute(sql, params).fetchall()
            except sqlite3.Error as e:
                raise self._fail(what, e) from None

    def _workflow(self, conn: sqlite3.Connection, run_id: str) -> str:
        wf = self._workflows.get(run_id)
        if wf is None:
            row = conn.execute("SELECT workflow FROM runs WHERE run_id = ?", (run_id,)).fetchone()
            if row is None:
                raise NotFoundError(f"run {run_id!r} not found")
            wf = self._workflows[run_id] = row[0]
        return wf

    @staticmethod
    def _rollback(conn: sqlite3.Connection) -> None:
        if conn.in_transaction:
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass

    @staticmethod
    def _column(conn: sqlite3.Connection, sql: str, params: Sequence[Any]) -> set[Any]:
        """First column of ``sql``'s rows, or nothing if it fails (only used to word an error)."""
        try:
            return {r[0] for r in conn.execute(sql, params)}
        except sqlite3.Error:
            return set()

    def _conflict(
        self,
        conn: sqlite3.Connection,
        run_id: str,
        events: Sequence[Event],
        results: Sequence[ResultRecord],
        err: sqlite3.IntegrityError,
    ) -> ConflictError | StoreError:
        msg = str(err)
        if "events." in msg:
            dup = codec.duplicate_seqs(events)
            if not dup:
                seqs = {e.seq for e in events}
                found = self._column(
                    conn,
                    "SELECT seq FROM events WHERE run_id = ? AND seq BETWEEN ? AND ?",
                    (run_id, min(seqs), max(seqs)),
                )
                dup = sorted(seqs & found)
            return ConflictError(codec.seq_conflict_message(run_id, dup))
        if "results." in msg:
            taken = codec.duplicate_tasks(results)
            if not taken:
                found = self._column(conn, "SELECT task_id FROM results WHERE run_id = ?", (run_id,))
                taken = sorted({r.task_id for r in results} & found)
            return ConflictError(codec.result_conflict_message(run_id, taken))
        if "runs." in msg:
            return ConflictError(f"run {run_id!r} already exists")
        return self._fail(f"append to run {run_id!r}", err)

    def _write(
        self,
        conn: sqlite3.Connection,
        run_id: str,
        first: tuple[str, Sequence[Any]] | None,
        rows: list[codec.EventRow],
        events: Sequence[Event],
        results: Sequence[ResultRecord],
        history: list[codec.HistoryRow],
    ) -> None:
        """One transaction; caller holds the lock."""
        try:
            conn.execute("BEGIN IMMEDIATE")
            if first is not None:
                conn.execute(*first)
            conn.executemany(_INSERT_EVENT, rows)
            dropped = codec.invalidated(run_id, rows)
            if dropped:
                conn.executemany(_DELETE_RESULT, dropped)
            if results:
                conn.executemany(_INSERT_RESULT, [codec.result_row(run_id, r) for r in results])
            if history:
                conn.executemany(_INSERT_HISTORY, history)
            conn.execute("COMMIT")
        except sqlite3.IntegrityError as e:
            self._rollback(conn)
            raise self._conflict(conn, run_id, events, results, e) from None
        except sqlite3.Error as e:
            self._rollback(conn)
            raise self._fail(f"append to run {run_id!r}", e) from None
        except BaseException:
            self._rollback(conn)
            raise

    # -- the Store Protocol -----------------------------------------------------------------

    def create_run(self, run: RunRecord, events: Sequence[Event]) -> None:
        row = codec.run_row(run)
        rows = codec.event_rows(run.run_id, events)
        history = codec.history_rows(run.workflow, run.run_id, events)
        with self._lock:
            conn = self._c()
            self._write(conn, run.run_id, (_INSERT_RUN, row), rows, events, (), history)
            self._workflows[run.run_id] = run.workflow

    def update_run(self, run_id: str, **fields: Any) -> None:
        updates = codec.run_updates(run_id, fields)
        with self._lock:
            conn = self._c()
            try:
                if updates:
                    sets = ", ".join(f"{name} = ?" for name, _ in updates)
                    cur = conn.execute(
                        f"UPDATE runs SET {sets} WHERE run_id = ?", [v for _, v in updates] + [run_id]
                    )
                    found = cur.rowcount > 0
                else:
                    found = (
                        conn.execute("SELECT 1 FROM runs WHERE run_id = ?", (run_id,)).fetchone() is not None
                    )
            except sqlite3.Error as e:
                raise self._fail(f"update of run {run_id!r}", e) from None
        if not found:
            raise NotFoundError(f"run {run_id!r} not found")

    def append(self, run_id: str, events: Sequence[Event], results: Sequence[ResultRecord] = ()) -> None:
        rows = codec.event_rows(run_id, events)
        with self._lock:
            conn = self._c()
            try:
                wf = self._workflow(conn, run_id)
            except sqlite3.Error as e:
                raise self._fail(f"append to run {run_id!r}", e) from None
            fresh = codec.history_rows(wf, run_id, events)
            pending = self._history + fresh
            if len(pending) >= HISTORY_BATCH or any(e.type in _FINAL_EVENTS for e in events):
                self._write(conn, run_id, None, rows, events, results, pending)
                self._history = []
            else:
                self._write(conn, run_id, None, rows, events, results, [])
                self._history = pending

    def _flush_history(self, conn: sqlite3.Connection) -> None:
        """Write buffered history rows (caller holds the lock)."""
        if not self._history:
            return
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(_INSERT_HISTORY, self._history)
            conn.execute("COMMIT")
        except sqlite3.Error as e:
            self._rollback(conn)
            raise self._fail("writing task history", e) from None
        self._history = []

    def append_rows(
        self,
        run_id: str,
        rows: Sequence[codec.EventRow],
        result_rows: Sequence[tuple[str, str, int, bytes, str, str]],
        history: Sequence[codec.HistoryRow],
    ) -> None:
        """``append`` for rows already encoded (by a journal): one transaction, history included.
        Raises ``ConflictError`` if any seq or result is already there (nothing committed)."""
        with self._lock:
            conn = self._c()
            try:
                conn.execute("BEGIN IMMEDIATE")
                _insert_many(conn, _INSERT_EVENT, 7, rows)
                dropped = codec.invalidated(run_id, rows)
                if dropped:
                    conn.executemany(_DELETE_RESULT, dropped)
                if result_rows:
                    _insert_many(conn, _INSERT_RESULT, 6, result_rows)
                if history:
                    _insert_many(conn, _INSERT_HISTORY, 7, history)
                conn.execute("COMMIT")
            except sqlite3.IntegrityError as e:
                self._rollback(conn)
                raise ConflictError(f"run {run_id!r}: already written ({e})") from None
            except sqlite3.Error as e:
                self._rollback(conn)
                raise self._fail(f"append to run {run_id!r}", e) from None
            except BaseException:
                self._rollback(conn)
                raise

    def get_run(self, run_id: str) -> RunRecord:
        rows = self._query(
            f"reading run {run_id!r}", f"SELECT {_RUN_COLS} FROM runs WHERE run_id = ?", (run_id,)
        )
        if not rows:
            raise NotFoundError(f"run {run_id!r} not found")
        return codec.row_to_run(rows[0])

    def list_runs(self, limit: int = 50) -> list[RunRecord]:
        rows = self._query(
            "listing runs",
            f"SELECT {_RUN_COLS} FROM runs ORDER BY created_at DESC, id DESC LIMIT ?",
            (max(limit, 0),),
        )
        return [codec.row_to_run(r) for r in rows]

    def events(self, run_id: str, after_seq: int = 0) -> list[Event]:
        rows = self._query(f"reading events of run {run_id!r}", _SELECT_EVENTS, (run_id, after_seq))
        return [codec.row_to_event(r) for r in rows]

    def results(self, run_id: str) -> dict[str, ResultRecord]:
        rows = self._query(
            f"reading results of run {run_id!r}",
            "SELECT task_id, attempt, data, checksum, encoding FROM results "
            "WHERE run_id = ? ORDER BY task_id",
            (run_id,),
        )
        return {r[0]: codec.row_to_result(r) for r in rows}

    def cache_get(self, key: str) -> ResultRecord | None:
        rows = self._query(
            "reading the cache",
            "SELECT task_id, attempt, data, checksum, encoding FROM cache WHERE key = ?",
            (key,),
        )
        return codec.row_to_result(rows[0]) if rows else None

    def cache_put(self, key: str, result: ResultRecord) -> None:
        self._query(
            "writing the cache",
            "INSERT INTO cache (key, task_id, attempt, data, checksum, encoding, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET task_id = excluded.task_id, "
            "attempt = excluded.attempt, data = excluded.data, checksum = excluded.checksum, "
            "encoding = excluded.encoding, created_at = excluded.created_at",
            (key, *codec.result_row("", result)[1:], time.time()),
        )

    def durations(self, workflow: str, task: str, limit: int = 20) -> list[float]:
        if self._history:
            with self._lock:
                self._flush_history(self._c())
        rows = self._query(
            "reading task history",
            "SELECT duration FROM history WHERE workflow = ? AND task = ? "
            "ORDER BY ts DESC, run_id DESC, seq DESC LIMIT ?",
            (workflow, task, max(limit, 0)),
        )
        return [r[0] for r in rows]

    def history(self, workflow: str, limit: int = 20) -> dict[str, list[float]]:
        if self._history:
            with self._lock:
                self._flush_history(self._c())
        rows = self._query(
            "reading task history",
            "SELECT task, duration FROM (SELECT task, duration, ROW_NUMBER() OVER "
            "(PARTITION BY task ORDER BY ts DESC, run_id DESC, seq DESC) AS k "
            "FROM history WHERE workflow = ?) WHERE k <= ? ORDER BY task, k",
            (workflow, max(limit, 0)),
        )
        return codec.group_durations(rows)

    def request_cancel(self, run_id: str) -> None:
        with self._lock:
            try:
                cur = self._c().execute("UPDATE runs SET cancel_requested = 1 WHERE run_id = ?", (run_id,))
            except sqlite3.Error as e:
                raise self._fail(f"cancelling run {run_id!r}", e) from None
        if cur.rowcount == 0:
            raise NotFoundError(f"run {run_id!r} not found")

    def cancel_requested(self, run_id: str) -> bool:
        rows = self._query(
            f"reading run {run_id!r}", "SELECT cancel_requested FROM runs WHERE run_id = ?", (run_id,)
        )
        return bool(rows and rows[0][0])

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                try:
                    self._flush_history(self._conn)
                    self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
                except (sqlite3.Error, StoreError):
                    pass  # history is derived data; the log itself is already committed
                try:
                    self._conn.close()
                finally:
                    self._conn = None


#: Rows per multi-row INSERT: chunks of 128, 64, ..., 1 keep few distinct statements (the
#: statement cache holds them all) and stay under SQLite's oldest limit of 999 variables.
_CHUNKS = (128, 64, 32, 16, 8, 4, 2, 1)
_MULTI: dict[tuple[str, int], str] = {}
_chain = chain.from_iterable


def _insert_many(conn: sqlite3.Connection, sql: str, width: int, rows: Sequence[Sequence[Any]]) -> None:
    """``executemany(sql, rows)`` as a few multi-row INSERTs: one statement step per chunk
    instead of one per row (SQLite does the same work; Python and the step calls cost less)."""
    n, i = len(rows), 0
    for size in _CHUNKS:
        while n - i >= size:
            text = _MULTI.get((sql, size))
            if text is None:
                one = "(" + ", ".join("?" * width) + ")"
                text = _MULTI[(sql, size)] = sql.replace(
                    f" VALUES {one}", " VALUES " + ", ".join([one] * size)
                )
            conn.execute(text, list(_chain(rows[i : i + size])))
            i += size
