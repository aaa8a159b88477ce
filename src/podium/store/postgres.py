"""PostgresStore: the ``Store`` Protocol on PostgreSQL, for shared and multi-host deployments.

Invariants:
- psycopg 3 is imported only when a ``PostgresStore`` is created (the ``postgres`` extra).
- One connection per store object, autocommit off, guarded by one lock; every public method
  ends its transaction (commit or rollback), so no connection idles inside a transaction.
- One ``append`` (and one ``create_run``) is one transaction sent through a pipeline: events,
  results and history rows commit together or not at all. A unique violation on the event or
  result key raises ``ConflictError``; any other database failure raises ``StoreError`` after a
  rollback. A broken connection is replaced on the next call, so ``StoreError`` is retryable.
- The schema has the same shape as SQLite's (see ``migrations.py``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

from podium.errors import ConflictError, NotFoundError, StoreError, UsageError
from podium.model.events import Event, ResultRecord, RunRecord
from podium.store import codec
from podium.store.migrations import apply_postgres

_RUN_COLS = "run_id, workflow, status, created_at, updated_at, params, source, owner"
_INSERT_RUN = f"INSERT INTO runs ({_RUN_COLS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
_INSERT_EVENT = (
    "INSERT INTO events (run_id, seq, type, task_id, attempt, ts, data) VALUES (%s, %s, %s, %s, %s, %s, %s)"
)
_INSERT_RESULT = (
    "INSERT INTO results (run_id, task_id, attempt, data, checksum, encoding) VALUES (%s, %s, %s, %s, %s, %s)"
)
_INSERT_HISTORY = (
    "INSERT INTO history (workflow, task, ts, run_id, seq, duration, max_rss) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s)"
)


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError:
        raise UsageError("a postgresql:// store needs psycopg 3: pip install 'podium[postgres]'") from None
    return psycopg


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


class PostgresStore:
    """The ``Store`` Protocol on a PostgreSQL database named by a ``postgresql://`` URL."""

    def __init__(self, url: str, *, connect_timeout: int = 10) -> None:
        self._pg = _psycopg()
        self.url = url
        self._connect_timeout = connect_timeout
        self._lock = threading.Lock()
        self._workflows: dict[str, str] = {}  # run_id -> workflow name, for history rows
        self._closed = False
        self._conn: Any = self._connect()

    # -- plumbing ---------------------------------------------------------------------------

    def __enter__(self) -> PostgresStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"PostgresStore({codec.redact(self.url)!r})"

    def _connect(self) -> Any:
        pg = self._pg
        try:
            conn = pg.connect(self.url, autocommit=False, connect_timeout=self._connect_timeout)
        except pg.Error as e:
            raise StoreError(
                f"cannot connect to PostgreSQL at {codec.redact(self.url)}: {_first_line(e)}"
            ) from None
        try:
            apply_postgres(conn)
        except pg.Error as e:
            conn.close()
            raise StoreError(
                f"cannot migrate PostgreSQL store {codec.redact(self.url)}: {_first_line(e)}"
            ) from None
        return conn

    def _c(self) -> Any:
        """The live connection; reconnects if the previous one broke. Caller holds the lock."""
        if self._closed:
            raise StoreError(f"PostgreSQL store {codec.redact(self.url)} is closed")
        if self._conn is None or self._conn.closed or self._conn.broken:
            if self._conn is not None:
                self._conn.close()
            self._conn = None
            self._conn = self._connect()
        return self._conn

    def _fail(self, what: str, e: BaseException) -> StoreError:
        return StoreError(f"PostgreSQL store {codec.redact(self.url)}: {what} failed: {_first_line(e)}")

    @staticmethod
    def _rollback(conn: Any) -> None:
        try:
            if not conn.closed:
                conn.rollback()
        except Exception:
            pass

    def _run(self, what: str, sql: str, params: Sequence[Any] = ()) -> tuple[list[Any], int]:
        """Run one statement in its own transaction: (rows or [], rowcount)."""
        with self._lock:
            conn = self._c()
            try:
                cur = conn.execute(sql, params)
                rows = cur.fetchall() if cur.description is not None else []
                count = cur.rowcount
                conn.commit()
                return rows, count
            except self._pg.Error as e:
                self._rollback(conn)
                raise self._fail(what, e) from None
            except BaseException:
                self._rollback(conn)
                raise

    def _workflow(self, conn: Any, run_id: str) -> str:
        wf = self._workflows.get(run_id)
        if wf is None:
            row = conn.execute("SELECT workflow FROM runs WHERE run_id = %s", (run_id,)).fetchone()
            if row is None:
                conn.rollback()
                raise NotFoundError(f"run {run_id!r} not found")
            wf = self._workflows[run_id] = row[0]
        return wf

    def _conflict(
        self,
        conn: Any,
        run_id: str,
        events: Sequence[Event],
        results: Sequence[ResultRecord],
        err: BaseException,
    ) -> ConflictError | StoreError:
        constraint = getattr(getattr(err, "diag", None), "constraint_name", "") or ""
        try:
            if constraint.startswith("events"):
                dup = codec.duplicate_seqs(events)
                if not dup:
                    seqs = {e.seq for e in events}
                    rows = conn.execute(
                        "SELECT seq FROM events WHERE run_id = %s AND seq BETWEEN %s AND %s",
                        (run_id, min(seqs), max(seqs)),
                    ).fetchall()
                    conn.rollback()
                    dup = sorted(seqs & {r[0] for r in rows})
                return ConflictError(codec.seq_conflict_message(run_id, dup))
            if constraint.startswith("results"):
                taken = codec.duplicate_tasks(results)
                if not taken:
                    rows = conn.execute("SELECT task_id FROM results WHERE run_id = %s", (run_id,)).fetchall()
                    conn.rollback()
                    taken = sorted({r.task_id for r in results} & {r[0] for r in rows})
                return ConflictError(codec.result_conflict_message(run_id, taken))
        except self._pg.Error:
            self._rollback(conn)
        if constraint.startswith("runs"):
            return ConflictError(f"run {run_id!r} already exists")
        return self._fail(f"append to run {run_id!r}", err)

    def _write(
        self,
        conn: Any,
        run_id: str,
        first: tuple[str, Sequence[Any]] | None,
        rows: list[codec.EventRow],
        events: Sequence[Event],
        results: Sequence[ResultRecord],
        history: list[codec.HistoryRow],
    ) -> None:
        """One transaction; caller holds the lock."""
        pg = self._pg
        try:
            with conn.pipeline(), conn.cursor() as cur:
                if first is not None:
                    cur.execute(*first)
                if rows:
                    cur.executemany(_INSERT_EVENT, rows)
                    dropped = codec.invalidated(run_id, rows)
                    if dropped:
                        cur.executemany("DELETE FROM results WHERE run_id = %s AND task_id = %s", dropped)
                if results:
                    cur.executemany(_INSERT_RESULT, [codec.result_row(run_id, r) for r in results])
                if history:
                    cur.executemany(_INSERT_HISTORY, history)
            conn.commit()
        except pg.errors.UniqueViolation as e:
            self._rollback(conn)
            raise self._conflict(conn, run_id, events, results, e) from None
        except pg.Error as e:
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
        if updates:
            sets = ", ".join(f"{name} = %s" for name, _ in updates)
            _, count = self._run(
                f"update of run {run_id!r}",
                f"UPDATE runs SET {sets} WHERE run_id = %s",
                [v for _, v in updates] + [run_id],
            )
            found = count > 0
        else:
            rows, _ = self._run(f"reading run {run_id!r}", "SELECT 1 FROM runs WHERE run_id = %s", (run_id,))
            found = bool(rows)
        if not found:
            raise NotFoundError(f"run {run_id!r} not found")

    def append(self, run_id: str, events: Sequence[Event], results: Sequence[ResultRecord] = ()) -> None:
        rows = codec.event_rows(run_id, events)
        with self._lock:
            conn = self._c()
            try:
                wf = self._workflow(conn, run_id)
            except self._pg.Error as e:
                self._rollback(conn)
                raise self._fail(f"append to run {run_id!r}", e) from None
            self._write(conn, run_id, None, rows, events, results, codec.history_rows(wf, run_id, events))

    def get_run(self, run_id: str) -> RunRecord:
        rows, _ = self._run(
            f"reading run {run_id!r}", f"SELECT {_RUN_COLS} FROM runs WHERE run_id = %s", (run_id,)
        )
        if not rows:
            raise NotFoundError(f"run {run_id!r} not found")
        return codec.row_to_run(rows[0])

    def list_runs(self, limit: int = 50) -> list[RunRecord]:
        rows, _ = self._run(
            "listing runs",
            f"SELECT {_RUN_COLS} FROM runs ORDER BY created_at DESC, id DESC LIMIT %s",
            (max(limit, 0),),
        )
        return [codec.row_to_run(r) for r in rows]

    def events(self, run_id: str, after_seq: int = 0) -> list[Event]:
        rows, _ = self._run(
            f"reading events of run {run_id!r}",
            "SELECT seq, type, task_id, attempt, ts, data FROM events "
            "WHERE run_id = %s AND seq > %s ORDER BY seq",
            (run_id, after_seq),
        )
        return [codec.row_to_event(r) for r in rows]

    def results(self, run_id: str) -> dict[str, ResultRecord]:
        rows, _ = self._run(
            f"reading results of run {run_id!r}",
            "SELECT task_id, attempt, data, checksum, encoding FROM results "
            "WHERE run_id = %s ORDER BY task_id",
            (run_id,),
        )
        return {r[0]: codec.row_to_result(r) for r in rows}

    def cache_get(self, key: str) -> ResultRecord | None:
        rows, _ = self._run(
            "reading the cache",
            "SELECT task_id, attempt, data, checksum, encoding FROM cache WHERE key = %s",
            (key,),
        )
        return codec.row_to_result(rows[0]) if rows else None

    def cache_put(self, key: str, result: ResultRecord) -> None:
        self._run(
            "writing the cache",
            "INSERT INTO cache (key, task_id, attempt, data, checksum, encoding, created_at) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (key) DO UPDATE SET task_id = EXCLUDED.task_id, "
            "attempt = EXCLUDED.attempt, data = EXCLUDED.data, checksum = EXCLUDED.checksum, "
            "encoding = EXCLUDED.encoding, created_at = EXCLUDED.created_at",
            (key, *codec.result_row("", result)[1:], time.time()),
        )

    def durations(self, workflow: str, task: str, limit: int = 20) -> list[float]:
        rows, _ = self._run(
            "reading task history",
            "SELECT duration FROM history WHERE workflow = %s AND task = %s "
            "ORDER BY ts DESC, run_id DESC, seq DESC LIMIT %s",
            (workflow, task, max(limit, 0)),
        )
        return [float(r[0]) for r in rows]

    def history(self, workflow: str, limit: int = 20) -> dict[str, list[float]]:
        rows, _ = self._run(
            "reading task history",
            "SELECT task, duration FROM (SELECT task, duration, ROW_NUMBER() OVER "
            "(PARTITION BY task ORDER BY ts DESC, run_id DESC, seq DESC) AS k "
            "FROM history WHERE workflow = %s) AS h WHERE k <= %s ORDER BY task, k",
            (workflow, max(limit, 0)),
        )
        return codec.group_durations(rows)

    def request_cancel(self, run_id: str) -> None:
        _, count = self._run(
            f"cancelling run {run_id!r}",
            "UPDATE runs SET cancel_requested = TRUE WHERE run_id = %s",
            (run_id,),
        )
        if count == 0:
            raise NotFoundError(f"run {run_id!r} not found")

    def cancel_requested(self, run_id: str) -> bool:
        rows, _ = self._run(
            f"reading run {run_id!r}", "SELECT cancel_requested FROM runs WHERE run_id = %s", (run_id,)
        )
        return bool(rows and rows[0][0])

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._conn is not None:
                try:
                    self._conn.close()
                finally:
                    self._conn = None
