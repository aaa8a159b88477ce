"""The store's files on disk: private modes whatever the umask, the key beside the database and
what happens when it is missing, unsafe or another store's, and database files Podium did not make
(empty, not SQLite, another application's)."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from podium.errors import StoreError, UsageError
from podium.model.events import RUN_CREATED, TASK_SUCCEEDED, Event, ResultRecord, RunRecord
from podium.store import SqliteStore, open_store
from podium.store.keys import UNAUTHENTICATED
from podium.store.migrations import SQLITE_MIGRATIONS, apply_sqlite

from .conftest import podium

MODES = textwrap.dedent(
    """
    import json, os, sys
    from pathlib import Path
    os.umask(0)  # the most permissive umask: nothing the store makes may be open to others
    from podium.model.events import Event, ResultRecord, RunRecord
    from podium.store import default_store_url, open_store

    def modes():
        root = Path(".podium")
        return {str(p): [p.is_dir(), oct(p.stat().st_mode & 0o777)] for p in [root, *root.rglob("*")]}

    s = open_store(default_store_url())
    s.create_run(RunRecord("r1", "wf", "running", 1.0, 1.0), [Event(1, "RunCreated")])
    done = Event(2, "TaskSucceeded", "t", 1, 2.0, {"duration": 0.5})
    s.append("r1", [done], [ResultRecord.of("t", 1, b"v")])
    s.cache_put("k", ResultRecord.of("t", 1, b"v"))
    s.results("r1")
    open_ = modes()
    s.close()
    print(json.dumps({"open": open_, "closed": modes()}))
    """
)


def test_every_file_of_a_store_is_private_under_a_permissive_umask(tmp_path: Path) -> None:
    env = dict(os.environ)
    env.pop("PODIUM_STORE", None)
    out = subprocess.run(
        [sys.executable, "-c", MODES], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout)
    names = {Path(p).name for p in seen["open"]}
    # while open: the database, its WAL files, the key, the journal directory, a journal, a lease
    assert {"podium.db", "podium.db-wal", "podium.db-shm", "podium.db.podium-key"} <= names
    assert any(n.endswith(".journal") for n in names) and any(n.endswith(".lock") for n in names)
    for when in ("open", "closed"):
        for path, (is_dir, mode) in seen[when].items():
            want = "0o700" if is_dir else "0o600"
            assert mode == want, f"{when}: {path} has mode {mode}, expected {want}"


def test_an_older_store_with_open_modes_is_narrowed(tmp_path: Path) -> None:
    """A store made before (directory 0755, database 0644, journal directory 0755) is narrowed
    when opened: to the store's modes if this user owns the files."""
    home = tmp_path / ".podium"
    home.mkdir(mode=0o755)
    db = home / "podium.db"
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    apply_sqlite(conn, SQLITE_MIGRATIONS[:1])  # the schema of the first release
    conn.close()
    os.chmod(home, 0o755)
    os.chmod(db, 0o644)
    (home / "podium.db.podium-journal" / "runs").mkdir(parents=True, mode=0o755)
    s = open_store(str(db))
    s.close()
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    for d in (home / "podium.db.podium-journal", home / "podium.db.podium-journal" / "runs"):
        assert stat.S_IMODE(d.stat().st_mode) == 0o700


def test_the_key_lives_beside_the_database_and_not_in_it(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    SqliteStore(db).close()
    key = tmp_path / "p.db.podium-key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and len(key.read_bytes()) == 32
    raw = db.read_bytes() + (tmp_path / "p.db-wal").read_bytes() if (tmp_path / "p.db-wal").exists() else b""
    assert key.read_bytes() not in raw


def _store_with_a_result(db: Path) -> None:
    s = SqliteStore(db)
    s.create_run(RunRecord("r1", "wf", "running", 1.0, 1.0), [Event(1, RUN_CREATED)])
    s.append("r1", [Event(2, TASK_SUCCEEDED, "t", 1, 2.0)], [ResultRecord.of("t", 1, b"value")])
    s.close()


def test_a_lost_key_is_replaced_loudly_and_old_results_are_no_longer_trusted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "p.db"
    _store_with_a_result(db)
    (tmp_path / "p.db.podium-key").unlink()
    s = SqliteStore(db)
    try:
        assert "key file was missing" in capsys.readouterr().err
        rec = s.results("r1")["t"]
        assert rec.checksum == UNAUTHENTICATED and not rec.verify()  # its task will run again
        s.append("r1", [Event(3, TASK_SUCCEEDED, "u", 1, 3.0)], [ResultRecord.of("u", 1, b"new")])
        assert s.results("r1")["u"].verify()  # new results carry the new key's tag
    finally:
        s.close()


def test_another_stores_key_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    _store_with_a_result(db)
    SqliteStore(tmp_path / "other.db").close()
    (tmp_path / "p.db.podium-key").write_bytes((tmp_path / "other.db.podium-key").read_bytes())
    with pytest.raises(StoreError, match="is not this store's key"):
        SqliteStore(db)


@pytest.mark.parametrize("unsafe", ["open to others", "symlink", "wrong size"])
def test_an_unsafe_key_file_is_refused_with_one_line(tmp_path: Path, unsafe: str) -> None:
    db = tmp_path / "p.db"
    _store_with_a_result(db)
    key = tmp_path / "p.db.podium-key"
    if unsafe == "open to others":
        key.chmod(0o644)
        match = "chmod 600"
    elif unsafe == "symlink":
        real = tmp_path / "elsewhere"
        real.write_bytes(key.read_bytes())
        real.chmod(0o600)
        key.unlink()
        key.symlink_to(real)
        match = "plain file"
    else:
        key.write_bytes(b"short")
        match = "not a Podium key"
    with pytest.raises(StoreError, match=match) as info:
        SqliteStore(db)
    assert "\n" not in str(info.value)


def test_an_empty_database_file_is_refused_not_taken_for_a_new_store(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    db.touch()
    with pytest.raises(UsageError, match=r"empty file \(0 bytes\)"):
        open_store(str(db))
    assert db.stat().st_size == 0  # left as found
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.db"]  # no key, no journal made for it
    out = podium("runs", "--store", str(db))
    assert out.returncode == 2 and "empty file" in out.stderr and "Traceback" not in out.stderr


def _foreign(path: Path, kind: str) -> str:
    """Write a file at ``path`` that Podium did not make; returns what the refusal must say."""
    if kind == "text":
        path.write_text("name,score\nada,3\n")
        return "not a SQLite database"
    if kind == "garbled":  # the SQLite header over bytes that are not a database
        path.write_bytes(b"SQLite format 3\x00" + bytes(range(256)) * 16)
        return "not a readable SQLite database"
    conn = sqlite3.connect(path)
    if kind == "other-app":
        conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
        conn.execute("INSERT INTO notes (body) VALUES ('keep me')")
    else:  # a SQLite file with no tables at all
        conn.execute("PRAGMA user_version = 7")
    conn.commit()
    conn.close()
    return "another application" if kind == "other-app" else "an empty SQLite database"


@pytest.mark.parametrize("kind", ["text", "garbled", "other-app", "no-tables"])
def test_a_database_file_podium_did_not_make_is_refused_and_left_as_found(tmp_path: Path, kind: str) -> None:
    db = tmp_path / "p.db"
    match = _foreign(db, kind)
    db.chmod(0o644)
    before = db.read_bytes()
    for opener in (lambda: SqliteStore(db), lambda: open_store(str(db))):
        with pytest.raises(UsageError, match=match) as info:
            opener()
        assert "\n" not in str(info.value) and "p.db" in str(info.value)
    out = podium("runs", "--store", str(db))
    assert out.returncode == 2 and match in out.stderr and "Traceback" not in out.stderr
    # nothing written: same bytes, same mode, no key, journal or WAL files beside it
    assert db.read_bytes() == before and stat.S_IMODE(db.stat().st_mode) == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.db"]


def test_three_processes_creating_one_store_agree_on_one_key(tmp_path: Path) -> None:
    db = tmp_path / "fresh.db"
    code = "import sys; from podium.store import SqliteStore; print(SqliteStore(sys.argv[1]).signer.id)"
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(db)], stdout=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    ids = {p.communicate(timeout=60)[0].strip() for p in procs}
    assert len(ids) == 1 and all(p.returncode == 0 for p in procs)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".new")]  # no temporary file left
