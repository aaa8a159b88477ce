"""Migrations: named, ordered, each applied once in one transaction with its record."""

from __future__ import annotations

import pickle
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from podium.model.events import TASK_SUCCEEDED, Event, ResultRecord, checksum
from podium.store import open_store
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
            apply_postgres(conn, [*POSTGRES_MIGRATIONS, Migration("9999_b", BAD.statements)])
        assert applied_names(conn) == [m.name for m in POSTGRES_MIGRATIONS]
        exists = conn.execute("SELECT to_regclass('b') IS NOT NULL").fetchone()
        assert exists == (False,)
        conn.rollback()


def first_release_store(db: Path) -> None:
    """A store as the first release left it: schema 0001, results and a cache entry without tags,
    files with the default modes."""
    conn = sqlite_conn(db)
    conn.execute("PRAGMA journal_mode=WAL")
    apply_sqlite(conn, SQLITE_MIGRATIONS[:1])
    conn.execute(
        "INSERT INTO runs (run_id, workflow, status, created_at, updated_at, params, source, owner) "
        "VALUES ('r1', 'wf', 'failed', 1.0, 2.0, '{\"n\":1}', '{}', '')"
    )
    conn.executemany(
        "INSERT INTO events VALUES ('r1', ?, ?, ?, 1, ?, ?)",
        [(1, "RunCreated", None, 1.0, "{}"), (2, "TaskSucceeded", "a", 2.0, '{"duration":0.5}')],
    )
    data = pickle.dumps(42)
    conn.execute("INSERT INTO results VALUES ('r1', 'a', 1, ?, ?, 'pickle')", (data, checksum(data)))
    conn.execute("INSERT INTO cache VALUES ('k', 'a', 1, ?, ?, 'pickle', 3.0)", (data, checksum(data)))
    conn.execute("INSERT INTO history VALUES ('wf', 'a', 2.0, 'r1', 2, 0.5, NULL)")
    conn.close()
    db.chmod(0o644)


def test_a_store_of_the_first_release_opens_and_keeps_working(tmp_path: Path) -> None:
    db = tmp_path / "podium.db"
    first_release_store(db)
    store = open_store(str(db))
    try:
        assert [r.run_id for r in store.list_runs()] == ["r1"] and store.get_run("r1").params == {"n": 1}
        assert [e.seq for e in store.events("r1")] == [1, 2]
        assert store.durations("wf", "a") == [0.5]
        # results written before results had tags cannot be authenticated: they are not trusted
        # (the task runs again on resume, the cache entry is a miss), never unpickled
        assert not store.results("r1")["a"].verify()
        cached = store.cache_get("k")
        assert cached is not None and not cached.verify()
        store.append("r1", [Event(3, TASK_SUCCEEDED, "b", 1, 3.0)], [ResultRecord.of("b", 1, b"x")])
        assert store.results("r1")["b"].verify()
    finally:
        store.close()
    conn = sqlite_conn(db)
    assert applied_names(conn) == [m.name for m in SQLITE_MIGRATIONS]
    conn.close()
    assert stat.S_IMODE(db.stat().st_mode) == 0o600


def test_a_run_with_results_from_before_tags_resumes_and_reruns_them(tmp_path: Path) -> None:
    from .test_attacks import FLOW, calls, podium

    (tmp_path / "flow.py").write_text(FLOW, encoding="utf-8")
    db, gate = tmp_path / "state.db", tmp_path / "gate"
    env = {"PODIUM_TEST_LOG": str(tmp_path / "calls.log")}
    args = ("run", "flow.py:attacked", "-p", f"gate={gate}", "--run-id", "r1", "--store", str(db))
    assert podium(*args, "--no-progress", cwd=tmp_path, env=env).returncode == 1
    conn = sqlite_conn(db)
    conn.execute("UPDATE results SET mac = NULL")  # as rows written before the upgrade
    conn.close()
    gate.touch()
    resumed = podium("resume", "r1", "--store", str(db), "--no-progress", cwd=tmp_path, env=env)
    assert resumed.returncode == 0, resumed.stderr
    assert calls(tmp_path) == ["a", "a"]
