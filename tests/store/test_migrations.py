"""Migrations: named, ordered, each applied once in one transaction with its record."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from podium.store.migrations import (
    POSTGRES_MIGRATIONS,
    SQLITE_MIGRATIONS,
    Migration,
    applied_names,
    apply_postgres,
    apply_sqlite,
)

GOOD = Migration("0001_a", ("CREATE TABLE a (x INTEGER)",))
BAD = Migration("0002_b", ("CREATE TABLE b (x INTEGER)", "INSERT INTO a VALUES (1)", "THIS IS NOT SQL"))


def sqlite_conn(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


def tables(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def test_both_backends_define_the_same_named_steps() -> None:
    assert [m.name for m in SQLITE_MIGRATIONS] == [m.name for m in POSTGRES_MIGRATIONS]


def test_sqlite_applies_each_migration_once_with_its_record(tmp_path: Path) -> None:
    conn = sqlite_conn(tmp_path / "m.db")
    assert apply_sqlite(conn) == [m.name for m in SQLITE_MIGRATIONS]
    assert apply_sqlite(conn) == []
    assert applied_names(conn) == [m.name for m in SQLITE_MIGRATIONS]
    assert {"runs", "events", "results", "cache", "history", "schema_migrations"} <= tables(conn)
    conn.close()


def test_sqlite_failed_migration_leaves_neither_schema_nor_record(tmp_path: Path) -> None:
    conn = sqlite_conn(tmp_path / "m.db")
    with pytest.raises(sqlite3.Error):
        apply_sqlite(conn, [GOOD, BAD])
    assert applied_names(conn) == ["0001_a"]
    assert "b" not in tables(conn)
    assert conn.execute("SELECT count(*) FROM a").fetchone()[0] == 0
    fixed = Migration("0002_b", ("CREATE TABLE b (x INTEGER)",))
    assert apply_sqlite(conn, [GOOD, fixed]) == ["0002_b"]
    conn.close()


def test_migrations_must_be_named_in_order() -> None:
    with pytest.raises(ValueError, match="sorted"):
        apply_sqlite(sqlite3.connect(":memory:", isolation_level=None), [BAD, GOOD])


def test_two_processes_opening_a_fresh_file_migrate_once(tmp_path: Path) -> None:
    path = tmp_path / "fresh.db"
    code = "import sys; from podium.store import SqliteStore; SqliteStore(sys.argv[1]).close()"
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(path)], stderr=subprocess.PIPE) for _ in range(3)
    ]
    for p in procs:
        _, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
    conn = sqlite_conn(path)
    assert applied_names(conn) == [m.name for m in SQLITE_MIGRATIONS]
    conn.close()


@pytest.mark.postgres
def test_postgres_failed_migration_leaves_neither_schema_nor_record(pg_url: str) -> None:
    import psycopg

    with psycopg.connect(pg_url, autocommit=False) as conn:
        assert apply_postgres(conn) == [m.name for m in POSTGRES_MIGRATIONS]
        assert apply_postgres(conn) == []
        with pytest.raises(psycopg.Error):
            apply_postgres(conn, [*POSTGRES_MIGRATIONS, BAD])
        assert applied_names(conn) == [m.name for m in POSTGRES_MIGRATIONS]
        exists = conn.execute("SELECT to_regclass('b') IS NOT NULL").fetchone()
        assert exists == (False,)
        conn.rollback()
