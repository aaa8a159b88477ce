"""Damaged journal records in the journal of a real killed writer: found, kept aside, reported
loudly (stderr, ``attention``, ``podium runs`` / ``show``), and every intact record after them
recovered that keeps its run's log gap-free."""

from __future__ import annotations

import contextlib
import os
import signal
import stat
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from podium.store import journal_format as jf
from podium.store import open_store
from podium.types import Store

from .conftest import podium

WRITER = textwrap.dedent(
    """
    import pickle, sys, time
    import podium.store.journal as journal
    journal.APPLY_BATCHES = 10**9  # keep every batch in the journal, as a writer killed early
    journal.APPLY_AGE = 3600.0
    from podium.model.events import Event, ResultRecord, RunRecord
    from podium.store import open_store
    s = open_store(sys.argv[1])
    runs = sys.argv[2].split(",")
    seq = {}
    for r in runs:
        s.create_run(RunRecord(r, "wf", "running", 1.0, 1.0), [Event(1, "RunCreated")])
        seq[r] = 1
    for i in range(int(sys.argv[3])):
        r = runs[i % len(runs)]
        s.append(r, [Event(seq[r] + 1, "TaskQueued", f"t{i}"),
                     Event(seq[r] + 2, "TaskSucceeded", f"t{i}", 1, 2.0, {"duration": 0.5})],
                 [ResultRecord.of(f"t{i}", 1, pickle.dumps(i))])
        seq[r] += 2
    print("written", flush=True)
    time.sleep(120)
    """
)


def killed_writer(db: Path, runs: str, batches: int) -> Path:
    """Run a writer that journals ``batches`` batches and never applies them; SIGKILL it; return
    its journal file."""
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(db), runs, str(batches)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "written"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stdout.close()
    (journal,) = (db.parent / f"{db.name}.podium-journal").glob("*.journal")
    return journal


def flip(journal: Path, at: int, data: bytes = b"\xff\xff\xff\xff") -> None:
    with journal.open("r+b") as f:
        f.seek(at)
        f.write(data)


def record_of(scan: jf.Scan, run_id: str, first_seq: int) -> int:
    """The index of the record of ``run_id`` whose first event has seq ``first_seq``."""
    return next(i for i, (r, rows, _) in enumerate(scan.records) if r == run_id and rows[0][1] == first_seq)


def body_start(scan: jf.Scan, record: int) -> int:
    return scan.spans[record][0] + 22 + len(scan.records[record][0].encode())


@contextlib.contextmanager
def reopened(db: Path) -> Iterator[Store]:
    """The store opened again after the writer's death (which recovers its journal)."""
    s = open_store(str(db))
    try:
        yield s
    finally:
        s.close()


def killed_and_damaged(
    tmp_path: Path, runs: str, batches: int, where: Callable[[jf.Scan], int], data: bytes = b"\xff" * 4
) -> tuple[Path, Path, jf.Scan]:
    """A killed writer's journal with ``data`` written at ``where(scan of it)``: (db, journal, scan)."""
    db = tmp_path / "p.db"
    journal = killed_writer(db, runs, batches)
    scan = jf.scan(journal.read_bytes())
    flip(journal, where(scan), data)
    return db, journal, scan


def seqs(s: Store, run_id: str) -> list[int]:
    return [e.seq for e in s.events(run_id)]


def test_a_damaged_record_is_kept_reported_and_the_log_stays_a_prefix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db, journal, scan = killed_and_damaged(tmp_path, "r1", 12, lambda scan: body_start(scan, 5) + 10)
    assert len(scan.records) == 12 and not scan.damaged  # the scan from before the damage
    with reopened(db) as s:
        err = capsys.readouterr().err
        assert "podium: warning:" in err and "damaged" in err and journal.name in err
        # records 0-4 are applied (seqs 1..11); 5 is damaged; 6-11 would leave a gap: kept aside
        assert seqs(s, "r1") == list(range(1, 12))
        assert sorted(s.results("r1")) == [f"t{i}" for i in range(5)]
        assert all(r.verify() for r in s.results("r1").values())
        notes = s.attention("r1")["r1"]
        assert len(notes) == 1 and "damaged" in notes[0] and "6 later batch(es)" in notes[0]
        assert s.attention() == {"r1": notes}
    assert not journal.exists()
    kept = journal.with_suffix(".damaged")
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    held = kept.read_bytes()
    data_after = [scan.spans[i] for i in range(5, 12)]
    assert held.count(b"# damaged") == 1 and held.count(b"# not applied") == 6
    assert all(b"t%d" % i in held for i in range(5, 12)) and len(held) > sum(e - s for s, e in data_after)

    runs = podium("runs", "--store", str(db))
    assert runs.returncode == 0 and "needs attention" in runs.stdout
    show = podium("show", "r1", "--store", str(db))
    assert show.returncode == 0 and "needs attention: journal" in show.stdout


def test_records_of_other_runs_after_the_damage_are_all_recovered(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # ten batches of each run, interleaved; damage in r1's 4th
    db, _, _ = killed_and_damaged(
        tmp_path, "r1,r2", 20, lambda scan: body_start(scan, record_of(scan, "r1", 8))
    )
    with reopened(db) as s:
        assert seqs(s, "r2") == list(range(1, 22))  # all ten batches of r2
        assert seqs(s, "r1") == list(range(1, 8))  # r1's first three batches
        assert set(s.attention()) == {"r1"}
    assert "damaged" in capsys.readouterr().err


def test_a_damaged_header_is_skipped_by_finding_the_next_record(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def marker_of_r2s_4th(scan: jf.Scan) -> int:
        return scan.spans[record_of(scan, "r2", 8)][0] + 1

    db, _, _ = killed_and_damaged(tmp_path, "r1,r2", 20, marker_of_r2s_4th, b"\x00\x13\x37")
    with reopened(db) as s:
        # the damage names no run, so both may have lost events: r1's log continues (its records
        # are contiguous), r2's stops before the damage
        assert seqs(s, "r1") == list(range(1, 22))
        assert seqs(s, "r2") == list(range(1, 8))
        assert set(s.attention()) == {"r1", "r2"}
    err = capsys.readouterr().err
    assert "1 damaged span" in err and "later batch(es)" in err


def test_damage_after_the_last_record_is_reported_and_loses_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    garbage = b"garbage where the next header would be"
    db, _, _ = killed_and_damaged(tmp_path, "r1", 4, lambda scan: scan.spans[-1][1] + 5, garbage)
    with reopened(db) as s:
        assert seqs(s, "r1") == list(range(1, 10))
        assert "r1" in s.attention()
    assert "1 damaged span" in capsys.readouterr().err


def test_an_intact_journal_of_a_killed_writer_is_recovered_quietly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "p.db"
    journal = killed_writer(db, "r1", 6)
    with reopened(db) as s:
        assert seqs(s, "r1") == list(range(1, 14))
        assert s.attention() == {}
    assert "warning" not in capsys.readouterr().err
    assert not journal.exists() and not list(journal.parent.glob("*.damaged"))


def test_an_older_versions_journal_is_never_read(tmp_path: Path) -> None:
    """Records in the pickled format of older versions: refused with a message; an empty one
    (nothing left to apply) is just removed."""
    db = tmp_path / "p.db"
    open_store(str(db)).close()
    jdir = tmp_path / "p.db.podium-journal"
    empty = jdir / "1-aaaa.journal"
    empty.write_bytes(jf.LEGACY_MAGIC + bytes(64))
    open_store(str(db)).close()
    assert not empty.exists()
    held = jdir / "2-bbbb.journal"
    held.write_bytes(jf.LEGACY_MAGIC + (5).to_bytes(4, "little") + bytes(4) + b"\x80\x05N.")
    from podium.errors import StoreError

    with pytest.raises(StoreError, match="older Podium") as info:
        open_store(str(db))
    assert str(held) in str(info.value) and held.exists()
    os.unlink(held)  # what the message says to do if the batches need not be kept
    open_store(str(db)).close()
