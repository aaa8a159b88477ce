"""SQLite specifics: pragmas, the durability option, waiting on another writer, failures."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from podium.errors import StoreError, UsageError
from podium.model.events import TASK_STARTED, Event, ResultRecord, RunRecord
from podium.store import SqliteStore


def new(path: Path, **kw: object) -> SqliteStore:
    s = SqliteStore(path, **kw)  # type: ignore[arg-type]
    s.create_run(RunRecord("r1", "wf", "running", 1.0, 1.0), [])
    return s


def pragma(path: Path, name: str) -> object:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(f"PRAGMA {name}").fetchone()[0]
    finally:
        conn.close()


def test_creates_parent_dirs_and_uses_wal(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "podium.db"
    s = SqliteStore(path)
    try:
        assert path.exists()
        assert pragma(path, "journal_mode") == "wal"
        assert s._conn is not None and s._conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
        assert s._conn.execute("PRAGMA busy_timeout").fetchone()[0] > 0
    finally:
        s.close()


def test_synchronous_full_is_an_option(tmp_path: Path) -> None:
    s = SqliteStore(tmp_path / "p.db", synchronous="full")
    try:
        assert s._conn is not None and s._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    finally:
        s.close()


def test_bad_synchronous_mode_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="synchronous='OFF'"):
        SqliteStore(tmp_path / "p.db", synchronous="OFF")


def test_unopenable_path_is_a_store_error(tmp_path: Path) -> None:
    (tmp_path / "dir.db").mkdir()
    with pytest.raises(StoreError, match=r"dir\.db"):
        SqliteStore(tmp_path / "dir.db")


def test_append_waits_for_another_writer_instead_of_failing(tmp_path: Path) -> None:
    path = tmp_path / "p.db"
    store = new(path)
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    release = threading.Timer(0.3, lambda: other.execute("COMMIT"))
    release.start()
    try:
        store.append("r1", [Event(1, TASK_STARTED, "a")])
    finally:
        release.join()
        other.close()
    assert [e.seq for e in store.events("r1")] == [1]
    store.close()


def test_lock_timeout_is_a_retryable_store_error_that_commits_nothing(tmp_path: Path) -> None:
    path = tmp_path / "p.db"
    store = new(path, busy_timeout=0.05)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreError, match="locked") as info:
            store.append("r1", [Event(1, TASK_STARTED, "a")], [ResultRecord.of("a", 1, b"x")])
        assert info.value.retryable
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert store.events("r1") == [] and store.results("r1") == {}
    store.append("r1", [Event(1, TASK_STARTED, "a")], [ResultRecord.of("a", 1, b"x")])  # the retry works
    assert [e.seq for e in store.events("r1")] == [1]
    store.close()


def test_in_memory_database_works(tmp_path: Path) -> None:
    s = new(Path(":memory:"))
    s.append("r1", [Event(1, TASK_STARTED, "a")])
    assert len(s.events("r1")) == 1
    s.close()
