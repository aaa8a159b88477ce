"""Schema migrations: named, ordered, each applied in one transaction with its record.

Invariants:
- Each backend has one ordered tuple of ``Migration``; names sort in application order and are
  never renamed or edited once released (add a new migration instead).
- A migration's statements and its row in ``schema_migrations`` commit together or not at all,
  so a crash mid-migration leaves the schema at the previous step.
- Two processes opening a fresh database at once apply each migration exactly once: SQLite
  serialises them with ``BEGIN IMMEDIATE``, PostgreSQL with a transaction-scoped advisory lock,
  and the applied set is re-read inside that lock.
- The shape of the schema is the same on both backends (column names, keys, order).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Migration:
    """One schema step: a unique ``name`` and the statements that make it."""

    name: str
    statements: tuple[str, ...]


#: The ``logs`` table, spelled with each backend's integer and float types.
_LOGS = """CREATE TABLE logs (
    run_id TEXT NOT NULL,
    task_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    text TEXT NOT NULL,
    cut {int} NOT NULL,
    marks TEXT NOT NULL,
    size {int} NOT NULL,
    first_ts {real} NOT NULL,
    PRIMARY KEY (run_id, task_id, attempt)
)"""

SQLITE_MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        "0001_initial",
        (
            """CREATE TABLE runs (
                id INTEGER PRIMARY KEY,
                run_id TEXT NOT NULL UNIQUE,
                workflow TEXT NOT NULL,
                status TEXT NOT NULL,
                created_at REAL NOT NULL,
                updated_at REAL NOT NULL,
                params TEXT NOT NULL DEFAULT '{}',
                source TEXT NOT NULL DEFAULT '{}',
                owner TEXT NOT NULL DEFAULT '',
                cancel_requested INTEGER NOT NULL DEFAULT 0
            )""",
            "CREATE INDEX runs_created ON runs (created_at, id)",
            """CREATE TABLE events (
                run_id TEXT NOT NULL,
                seq INTEGER NOT NULL,
                type TEXT NOT NULL,
                task_id TEXT,
                attempt INTEGER NOT NULL,
                ts REAL NOT NULL,
                data TEXT NOT NULL,
                PRIMARY KEY (run_id, seq)
            ) WITHOUT ROWID""",
            """CREATE TABLE results (
                run_id TEXT NOT NULL,
                task_id TEXT NOT NULL,
                attempt INTEGER NOT NULL,
                data BLOB NOT NULL,
                checksum TEXT NOT NULL,
                encoding TEXT NOT NULL,
                PRIMARY KEY (run_id, task_id)
            )""",
            """CREATE TABLE cache (
                key TEXT PRIMARY KEY,
                task_id TEXT NOT NULL,
                attempt INTEGER NOT NULL,
                data BLOB NOT NULL,
                checksum TEXT NOT NULL,
                encoding TEXT NOT NULL,
                created_at REAL NOT NULL
            )""",
            # Keyed for the one query (a task's newest durations) and WITHOUT ROWID so a history
            # row dirties one b-tree page, not two: each dirty page is a WAL frame per commit.
            """CREATE TABLE history (
                workflow TEXT NOT NULL,
                task TEXT NOT NULL,
                ts REAL NOT NULL,
                run_id TEXT NOT NULL,
                seq INTEGER NOT NULL,
                duration REAL NOT NULL,
                max_rss REAL,
                PRIMARY KEY (workflow, task, ts, run_id, seq)
            ) WITHOUT ROWID""",
        ),
    ),
    Migration(
        "0002_result_tags",
        (
            # A result's tag (see ``keys``): rows written before it are NULL and never trusted.
            "ALTER TABLE results ADD COLUMN mac BLOB",
            "ALTER TABLE cache ADD COLUMN mac BLOB",
            # The store's settings; ``key_id`` names the key its results are tagged with.
            "CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
        ),
    ),
    Migration(
        "0003_attention",
        (
            # Why a run needs a person's attention (a damaged journal record set aside, ...).
            "CREATE TABLE attention (run_id TEXT NOT NULL, ts REAL NOT NULL, message TEXT NOT NULL)",
            "CREATE INDEX attention_run ON attention (run_id)",
        ),
    ),
    Migration(
        "0004_logs",
        (
            # What each task attempt wrote, bounded (see ``logs``); rewritten as it grows.
            _LOGS.format(int="INTEGER", real="REAL"),
        ),
    ),
    Migration(
        "0005_snapshots",
        (
            # The latest snapshot of each run's view (``runtime.snapshot``), as of event ``seq``.
            "CREATE TABLE snapshots (run_id TEXT PRIMARY KEY, seq INTEGER NOT NULL, data BLOB NOT NULL)",
        ),
    ),
)

POSTGRES_MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        "0001_initial",
        (
            """CREATE TABLE runs (
                id BIGSERIAL PRIMARY KEY,
                run_id TEXT NOT NULL UNIQUE,
                workflow TEXT NOT NULL,
                status TEXT NOT NULL,
                created_at DOUBLE PRECISION NOT NULL,
                updated_at DOUBLE PRECISION NOT NULL,
                params TEXT NOT NULL DEFAULT '{}',
                source TEXT NOT NULL DEFAULT '{}',
                owner TEXT NOT NULL DEFAULT '',
                cancel_requested BOOLEAN NOT NULL DEFAULT FALSE
            )""",
            "CREATE INDEX runs_created ON runs (created_at, id)",
            """CREATE TABLE events (
                run_id TEXT NOT NULL,
                seq BIGINT NOT NULL,
                type TEXT NOT NULL,
                task_id TEXT,
                attempt INTEGER NOT NULL,
                ts DOUBLE PRECISION NOT NULL,
                data TEXT NOT NULL,
                PRIMARY KEY (run_id, seq)
            )""",
            """CREATE TABLE results (
                run_id TEXT NOT NULL,
                task_id TEXT NOT NULL,
                attempt INTEGER NOT NULL,
                data BYTEA NOT NULL,
                checksum TEXT NOT NULL,
                encoding TEXT NOT NULL,
                PRIMARY KEY (run_id, task_id)
            )""",
            """CREATE TABLE cache (
                key TEXT PRIMARY KEY,
                task_id TEXT NOT NULL,
                attempt INTEGER NOT NULL,
                data BYTEA NOT NULL,
                checksum TEXT NOT NULL,
                encoding TEXT NOT NULL,
                created_at DOUBLE PRECISION NOT NULL
            )""",
            """CREATE TABLE history (
                workflow TEXT NOT NULL,
                task TEXT NOT NULL,
                ts DOUBLE PRECISION NOT NULL,
                run_id TEXT NOT NULL,
                seq BIGINT NOT NULL,
                duration DOUBLE PRECISION NOT NULL,
                max_rss DOUBLE PRECISION,
                PRIMARY KEY (workflow, task, ts, run_id, seq)
            )""",
        ),
    ),
    Migration(
        "0002_result_tags",
        (
            "ALTER TABLE results ADD COLUMN mac BYTEA",
            "ALTER TABLE cache ADD COLUMN mac BYTEA",
            "CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
        ),
    ),
    Migration(
        "0003_attention",
        (
            "CREATE TABLE attention "
            "(run_id TEXT NOT NULL, ts DOUBLE PRECISION NOT NULL, message TEXT NOT NULL)",
            "CREATE INDEX attention_run ON attention (run_id)",
        ),
    ),
    Migration(
        "0004_logs",
        (_LOGS.format(int="BIGINT", real="DOUBLE PRECISION"),),
    ),
    Migration(
        "0005_snapshots",
        ("CREATE TABLE snapshots (run_id TEXT PRIMARY KEY, seq BIGINT NOT NULL, data BYTEA NOT NULL)",),
    ),
)

_CREATE_RECORDS = (
    "CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at {real} NOT NULL)"
)
#: Any constant works; it only has to be the same for every Podium process on the server.
_PG_LOCK_KEY = 0x70_6F_64_69_75_6D


def _check(migrations: Sequence[Migration]) -> None:
    names = [m.name for m in migrations]
    if len(set(names)) != len(names) or names != sorted(names):
        raise ValueError(f"migrations must have unique names in sorted order, got {names}")


def apply_sqlite(conn: Any, migrations: Sequence[Migration] = SQLITE_MIGRATIONS) -> list[str]:
    """Apply pending ``migrations`` on a ``sqlite3`` connection in autocommit mode
    (``isolation_level=None``); returns the names applied now."""
    _check(migrations)
    conn.execute(_CREATE_RECORDS.format(real="REAL"))
    done = {r[0] for r in conn.execute("SELECT name FROM schema_migrations")}
    applied: list[str] = []
    for m in migrations:
        if m.name in done:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Re-read under the write lock: another process may have applied it meanwhile.
            if conn.execute("SELECT 1 FROM schema_migrations WHERE name = ?", (m.name,)).fetchone():
                conn.execute("COMMIT")
                continue
            for stmt in m.statements:
                conn.execute(stmt)
            conn.execute(
                "INSERT INTO schema_migrations (name, applied_at) VALUES (?, ?)", (m.name, time.time())
            )
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        applied.append(m.name)
    return applied


def apply_postgres(conn: Any, migrations: Sequence[Migration] = POSTGRES_MIGRATIONS) -> list[str]:
    """Apply pending ``migrations`` on a psycopg 3 connection with autocommit off; returns the
    names applied now."""
    _check(migrations)
    applied: list[str] = []
    try:
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_PG_LOCK_KEY,))
        conn.execute(_CREATE_RECORDS.format(real="DOUBLE PRECISION"))
        conn.commit()
        for m in migrations:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_PG_LOCK_KEY,))
            if conn.execute("SELECT 1 FROM schema_migrations WHERE name = %s", (m.name,)).fetchone():
                conn.commit()
                continue
            for stmt in m.statements:
                conn.execute(stmt)
            conn.execute(
                "INSERT INTO schema_migrations (name, applied_at) VALUES (%s, %s)", (m.name, time.time())
            )
            conn.commit()
            applied.append(m.name)
    except BaseException:
        conn.rollback()
        raise
    return applied


def applied_names(conn: Any) -> list[str]:
    """Names recorded in ``schema_migrations``, in order (works on both backends)."""
    rows = conn.execute("SELECT name FROM schema_migrations ORDER BY name").fetchall()
    return [r[0] for r in rows]
