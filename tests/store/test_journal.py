"""The journal in front of SQLite: what a killed writer leaves is applied exactly once, a torn
tail is ignored, and a run is leased to one writer at a time."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from podium.errors import ConflictError
from podium.model.events import RUN_CREATED, RUN_SUCCEEDED, Event, ResultRecord, RunRecord
from podium.store import journal_format as jf
from podium.store import open_store
from podium.store.journal import JOURNAL_SPACE, JournaledStore
from podium.store.sqlite import SqliteStore

WRITER = textwrap.dedent(
    """
    import sys, time
    from podium.model.events import Event, ResultRecord, RunRecord
    from podium.store import open_store
    s = open_store(sys.argv[1])
    s.create_run(RunRecord("r1", "wf", "running", 1.0, 1.0), [Event(1, "RunCreated")])
    seq = 1
    for i in range(10_000):
        s.append("r1", [Event(seq + 1, "TaskQueued", f"t{i}"), Event(seq + 2, "TaskStarted", f"t{i}", 1)],
                 [ResultRecord.of(f"t{i}", 1, str(i).encode())])
        seq += 2
        print(seq, flush=True)
    time.sleep(60)
    """
)


def _stop_applier(s: JournaledStore) -> None:
    """Keep everything in the journal, as in a process killed before its applier ran."""
    s._closed = True
    with s._cv:
        s._cv.notify_all()
    s._applier.join()
    s._closed = False


def journal_seqs(path: Path) -> list[int]:
    """The seqs of every intact record in a journal file, in order."""
    return [row[1] for _, rows, _ in jf.scan(path.read_bytes()).records for row in rows]


def _die(s: JournaledStore) -> None:
    """Drop the handles a killed process leaves behind; the journal file stays."""
    s._map.close()
    os.close(s._fd)
    for fd in s._leases.values():
        os.close(fd)
    s.inner.close()


def test_a_killed_writer_loses_no_acknowledged_batch(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(db)], stdout=subprocess.PIPE, text=True)
    acked = 0
    assert proc.stdout is not None
    for line in proc.stdout:
        acked = int(line)
        if acked > 600:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    # the bare SQLite file may lag; the journal holds the rest
    bare = SqliteStore(str(db))
    lagging = len(bare.events("r1"))
    bare.close()
    store = open_store(str(db))
    try:
        assert isinstance(store, JournaledStore) and store.recovered > 0
        seqs = [e.seq for e in store.events("r1")]
        assert seqs == list(range(1, len(seqs) + 1))  # gap-free, each once
        assert len(seqs) >= max(acked, lagging)  # nothing acknowledged or applied is lost
        assert all(r.verify() for r in store.results("r1").values())
    finally:
        store.close()
    assert not list((tmp_path / "p.db.podium-journal").glob("*.journal"))


def test_an_append_cut_short_is_ignored_quietly_and_the_rest_applied(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "p.db"
    s = open_store(str(db))
    assert isinstance(s, JournaledStore)
    s.create_run(RunRecord("r1", "wf", "running", 1.0, 1.0), [Event(1, RUN_CREATED)])
    _stop_applier(s)
    s.append("r1", [Event(2, "TaskQueued", "a")])
    s.append("r1", [Event(3, "TaskQueued", "b")])
    path = s.path
    # An append killed mid-copy: its body is written, its header (written last) is not.
    body = jf.encode_body([("r1", 4, "TaskQueued", "c", 0, 1.0, "{}")], [])
    with path.open("r+b") as f:
        f.seek(s._size + len(jf.record_header(s._gen, b"r1", body)))
        f.write(body)
    assert journal_seqs(path) == [2, 3]
    _die(s)
    again = open_store(str(db))
    try:
        assert [e.seq for e in again.events("r1")] == [1, 2, 3]
        assert again.attention() == {}
    finally:
        again.close()
    assert "warning" not in capfd.readouterr().err
    assert not list(path.parent.glob("*.damaged"))


def test_a_record_larger_than_the_journal_space_grows_it_and_survives_a_crash(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    s = open_store(str(db))
    assert isinstance(s, JournaledStore)
    s.create_run(RunRecord("r1", "wf", "running", 1.0, 1.0), [Event(1, RUN_CREATED)])
    _stop_applier(s)
    big = os.urandom(3 * JOURNAL_SPACE)
    s.append("r1", [Event(2, "TaskQueued", "a")])
    s.append(
        "r1", [Event(3, "TaskSucceeded", "a", 1, 2.0, {"duration": 0.5})], [ResultRecord.of("a", 1, big)]
    )
    s.append("r1", [Event(4, "TaskQueued", "b")])
    assert len(s._map) > 3 * JOURNAL_SPACE
    assert journal_seqs(s.path) == [2, 3, 4]
    _die(s)
    again = open_store(str(db))
    try:
        assert [e.seq for e in again.events("r1")] == [1, 2, 3, 4]
        rec = again.results("r1")["a"]
        assert rec.verify() and rec.data == big
        assert again.durations("wf", "a") == [0.5]
    finally:
        again.close()


def test_run_is_leased_to_one_writer_until_its_final_event(tmp_path: Path) -> None:
    db = str(tmp_path / "p.db")
    a, b = open_store(db), open_store(db)
    try:
        a.create_run(RunRecord("r1", "wf", "running", 1.0, 1.0), [Event(1, RUN_CREATED)])
        a.append("r1", [Event(2, "TaskQueued", "x")], [ResultRecord.of("x", 1, b"1")])
        with pytest.raises(ConflictError, match="another process"):
            b.append("r1", [Event(3, "TaskQueued", "y")])
        a.append("r1", [Event(3, RUN_SUCCEEDED)])  # releases the lease
        b.append("r1", [Event(4, "RunStarted")])
        with pytest.raises(ConflictError, match="seq 3"):
            b.append("r1", [Event(3, "RunStarted")])
        with pytest.raises(ConflictError):
            b.append("r1", [Event(5, "TaskSucceeded", "x")], [ResultRecord.of("x", 1, b"again")])
        assert [e.seq for e in b.events("r1")] == [1, 2, 3, 4]
    finally:
        a.close()
        b.close()


def test_seqs_below_the_highest_written_are_checked_against_the_whole_run(tmp_path: Path) -> None:
    s = open_store(str(tmp_path / "p.db"))
    try:
        s.create_run(RunRecord("r1", "wf", "running", 1.0, 1.0), [Event(1, RUN_CREATED)])
        s.append("r1", [Event(2, "TaskQueued", "a"), Event(5, "TaskQueued", "b")])
        s.append("r1", [Event(3, "TaskQueued", "c")])  # below the highest, but new: accepted
        with pytest.raises(ConflictError, match="seq 5"):
            s.append("r1", [Event(4, "TaskQueued", "d"), Event(5, "TaskQueued", "e")])
        with pytest.raises(ConflictError, match="seq 6"):
            s.append("r1", [Event(6, "TaskQueued", "d"), Event(6, "TaskQueued", "e")])
        s.append("r1", [Event(4, "TaskQueued", "d")])
        s.append("r1", [Event(6, "TaskQueued", "e")])
        assert [e.seq for e in s.events("r1")] == [1, 2, 3, 4, 5, 6]
    finally:
        s.close()
