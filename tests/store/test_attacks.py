"""Attacks on the store by someone who can write its files but cannot read its key: a planted
journal record, a tampered result and a tampered cache entry (each with checksums recomputed) must
never run code. Each plants a pickle whose loading would create a sentinel file, then runs the
real ``podium`` CLI the way a user would; the sentinel must never appear."""

from __future__ import annotations

import hashlib
import os
import pickle
import sqlite3
import struct
import textwrap
import zlib
from pathlib import Path

import pytest

from podium.errors import StoreError
from podium.model.events import RUN_CREATED, TASK_SUCCEEDED, Event, ResultRecord, RunRecord
from podium.runtime import codec
from podium.runtime.codec import CorruptResult
from podium.store import open_store
from podium.store.keys import UNAUTHENTICATED

from .conftest import Opener, podium

FLOW = textwrap.dedent(
    """
    import os
    import podium

    @podium.task
    def a() -> int:
        with open(os.environ["PODIUM_TEST_LOG"], "a", encoding="utf-8") as f:
            f.write("a\\n")
        return 1

    @podium.task
    def b(x: int, gate: str) -> int:
        if not os.path.exists(gate):
            raise RuntimeError("gate closed")
        return x + 1

    @podium.task(cache=True)
    def c(n: int) -> int:
        with open(os.environ["PODIUM_TEST_LOG"], "a", encoding="utf-8") as f:
            f.write("c\\n")
        return n * 10

    @podium.flow(name="attacked")
    def attacked(gate: str):
        b(x=a(), gate=gate)

    @podium.flow(name="cached")
    def cached(n: int = 4):
        c(n=n)
    """
)


class _Payload:
    """Unpickling this creates ``path`` (it is never unpickled by the test itself)."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (self.path, "w"))


def evil_pickle(sentinel: Path) -> bytes:
    return pickle.dumps(_Payload(sentinel), protocol=5)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "flow.py").write_text(FLOW, encoding="utf-8")
    monkeypatch.setenv("PODIUM_TEST_LOG", str(tmp_path / "calls.log"))
    return tmp_path


def calls(project: Path) -> list[str]:
    log = project / "calls.log"
    return log.read_text(encoding="utf-8").split() if log.exists() else []


def test_planted_pickle_journal_record_runs_nothing_on_podium_runs(project: Path) -> None:
    """A journal file in the old record format (a pickle) planted beside the database: opening the
    store (``podium runs``) must not unpickle it."""
    db, sentinel = project / "state.db", project / "PWNED"
    open_store(str(db)).close()  # the store exists (`podium runs` never creates one)
    payload = evil_pickle(sentinel)
    journal = project / "state.db.podium-journal" / "4242-feedfacecafe.journal"
    journal.write_bytes(b"PODIUMJ1" + struct.pack("<II", len(payload), zlib.crc32(payload)) + payload)
    out = podium("runs", "--store", str(db), cwd=project)
    assert not sentinel.exists(), "a planted journal record ran code"
    assert out.returncode != 0 and "Traceback" not in out.stderr
    assert "older Podium" in out.stderr and journal.name in out.stderr
    assert journal.exists()  # left for its owner to decide, never read


def test_planted_pickle_in_a_current_journal_record_runs_nothing(project: Path) -> None:
    """The same payload framed as a record of the current format (valid checksums): it is data that
    does not decode, set aside as damage, and nothing runs."""
    from podium.store import journal_format as jf

    db, sentinel = project / "state.db", project / "PWNED"
    open_store(str(db)).close()
    body = evil_pickle(sentinel)
    head = jf.record_header(1, b"r1", body)
    journal = project / "state.db.podium-journal" / "4242-feedfacecafe.journal"
    journal.write_bytes(jf.file_header(1) + head + body)
    out = podium("runs", "--store", str(db), cwd=project)
    assert not sentinel.exists(), "a planted journal record ran code"
    assert out.returncode == 0, out.stderr
    assert "damaged" in out.stderr and not journal.exists()
    kept = list(journal.parent.glob("*.damaged"))
    assert len(kept) == 1 and body in kept[0].read_bytes()


def test_tampered_result_with_recomputed_sha256_runs_nothing_on_resume(project: Path) -> None:
    db, sentinel, gate = project / "state.db", project / "PWNED", project / "gate"
    first = podium(
        "run", "flow.py:attacked", "-p", f"gate={gate}", "--run-id", "r1", "--store", str(db),
        "--no-progress", cwd=project,
    )  # fmt: skip
    assert first.returncode == 1, first.stderr  # b fails: the run is resumable, a's result committed
    assert calls(project) == ["a"]
    evil = evil_pickle(sentinel)
    conn = sqlite3.connect(db)
    with conn:
        changed = conn.execute(
            "UPDATE results SET data = ?, checksum = ? WHERE run_id = 'r1' AND task_id = 'a'",
            (evil, hashlib.sha256(evil).hexdigest()),
        ).rowcount
    conn.close()
    assert changed == 1
    gate.touch()
    resumed = podium("resume", "r1", "--store", str(db), "--no-progress", cwd=project)
    assert not sentinel.exists(), "a tampered result was unpickled"
    assert resumed.returncode == 0, resumed.stderr
    assert calls(project) == ["a", "a"]  # a's result was refused, so a ran again
    shown = podium("show", "r1", "--store", str(db), "--events", cwd=project)
    assert "TaskInvalidated" in shown.stdout and "fails its checksum or authentication" in shown.stdout


def test_tampered_cache_entry_with_recomputed_sha256_is_a_miss(project: Path) -> None:
    db, sentinel = project / "state.db", project / "PWNED"
    args = ("run", "flow.py:cached", "--store", str(db), "--no-progress")
    assert podium(*args, cwd=project).returncode == 0
    assert podium(*args, cwd=project).returncode == 0
    assert calls(project) == ["c"]  # the second run was served from the cache
    evil = evil_pickle(sentinel)
    conn = sqlite3.connect(db)
    with conn:
        changed = conn.execute(
            "UPDATE cache SET data = ?, checksum = ?", (evil, hashlib.sha256(evil).hexdigest())
        ).rowcount
    conn.close()
    assert changed == 1
    third = podium(*args, cwd=project)
    assert not sentinel.exists(), "a tampered cache entry was unpickled"
    assert third.returncode == 0, third.stderr
    assert calls(project) == ["c", "c"]  # a miss: the task ran


DURABLE = ["sqlite", "journal", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.mark.parametrize("backend", DURABLE)
def test_results_and_cache_entries_altered_behind_the_store_are_never_trusted(
    backend: str, open_same: Opener, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Every durable backend: bytes replaced with their sha256 recomputed (the genuine tag kept), or
    a row planted with a made-up tag, come back failing ``verify()``; the codec refuses them."""
    s = open_same()
    s.create_run(RunRecord("r1", "wf", "running", 1.0, 1.0), [Event(1, RUN_CREATED)])
    genuine = ResultRecord.of("a", 1, pickle.dumps(7))
    s.append("r1", [Event(2, TASK_SUCCEEDED, "a", 1, 2.0)], [genuine])
    s.cache_put("k", genuine)
    s.close()
    evil = evil_pickle(tmp_path / "PWNED")
    digest = hashlib.sha256(evil).hexdigest()
    raw_sql(
        backend, tmp_path, request,
        ("UPDATE results SET data = ?, checksum = ? WHERE task_id = 'a'", (evil, digest)),
        ("UPDATE cache SET data = ?, checksum = ?", (evil, digest)),
        ("INSERT INTO results VALUES ('r1', 'b', 1, ?, ?, 'pickle', ?)", (evil, digest, os.urandom(32))),
    )  # fmt: skip
    again = open_same()
    got = again.results("r1")
    for rec in (got["a"], got["b"], again.cache_get("k")):
        assert rec is not None and rec.data == evil
        assert rec.checksum == UNAUTHENTICATED and not rec.verify()
        with pytest.raises(CorruptResult):
            codec.decode(rec)
    assert not (tmp_path / "PWNED").exists()


def raw_sql(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest, *statements: tuple[str, tuple[object, ...]]
) -> None:
    """Run statements on the backend's database directly, as someone who can write it would."""
    if backend == "postgres":
        import psycopg

        with psycopg.connect(request.getfixturevalue("pg_url"), autocommit=True) as conn:
            for sql, params in statements:
                conn.execute(sql.replace("?", "%s"), params)
        return
    conn = sqlite3.connect(tmp_path / "store" / "podium.db")
    with conn:
        for sql, params in statements:
            conn.execute(sql, params)
    conn.close()


@pytest.mark.parametrize("backend", DURABLE)
def test_events_altered_to_be_unreadable_are_a_store_error_not_a_crash(
    backend: str, open_same: Opener, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    s = open_same()
    s.create_run(RunRecord("r1", "wf", "running", 1.0, 1.0), [Event(1, RUN_CREATED)])
    s.close()
    deep = '{"a":' * 100_000 + "1" + "}" * 100_000
    raw_sql(backend, tmp_path, request, ("UPDATE events SET data = ?", (deep,)))
    again = open_same()
    with pytest.raises(StoreError, match="altered"):
        again.events("r1")
    raw_sql(backend, tmp_path, request, ("UPDATE events SET data = ?", ("[1, 2]",)))
    with pytest.raises(StoreError, match="not a JSON object"):
        again.events("r1")
    raw_sql(backend, tmp_path, request, ("UPDATE runs SET params = ?", (deep,)))
    for read in (lambda: again.get_run("r1"), lambda: again.list_runs()):
        with pytest.raises(StoreError, match="altered"):
            read()
