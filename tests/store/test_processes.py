"""Real processes against real databases: two writers fencing each other on one run, and a
writer SIGKILLed mid-loop. Both run on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from podium.model.events import RUN_CREATED, Event, RunRecord
from podium.store import open_store

WORKERS = str(Path(__file__).with_name("workers.py"))
DURABLE = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=DURABLE)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{(tmp_path / 'podium.db').as_posix()}"
    else:
        yield request.getfixturevalue("pg_url")


def new_run(url: str) -> None:
    store = open_store(url)
    store.create_run(RunRecord("r1", "wf", "running", 1.0, 1.0), [])
    store.close()


def test_two_writers_on_one_run_each_seq_won_once_nothing_half_written(url: str, tmp_path: Path) -> None:
    new_run(url)
    go, n = tmp_path / "go", 240
    sizes = {"A": 3, "B": 4}  # misaligned batches: many partial overlaps
    procs = {
        w: subprocess.Popen(
            [sys.executable, WORKERS, "contend", url, "r1", w, str(size), str(n), str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w, size in sizes.items()
    }
    for p in procs.values():  # both connected before either starts
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    go.touch()
    committed: dict[str, list[tuple[int, int]]] = {}
    for w, p in procs.items():
        out, err = p.communicate(timeout=100)
        assert p.returncode == 0, err
        committed[w] = [(d["first"], d["count"]) for d in map(json.loads, out.splitlines())]

    store = open_store(url)
    try:
        events = store.events("r1")
        results = store.results("r1")
    finally:
        store.close()
    by_seq = {e.seq: e.data["writer"] for e in events}
    assert len(by_seq) == len(events)  # each seq once
    expected: dict[int, str] = {}
    for w, batches in committed.items():
        for first, count in batches:
            for s in range(first, first + count):
                assert s not in expected, f"seq {s} reported committed by two writers"
                expected[s] = w
            assert results[f"batch{first}"].data == w.encode()
    assert by_seq == expected  # exactly the reported batches, whole, from the writer that won
    assert set(results) == {f"batch{first}" for b in committed.values() for first, _ in b}
    assert expected
    print(
        {w: len(b) for w, b in committed.items()},
        "batches committed of",
        {w: -(-n // s) for w, s in sizes.items()},
    )


def test_sigkilled_writer_leaves_a_prefix_of_whole_batches(url: str) -> None:
    store = open_store(url)
    store.create_run(RunRecord("r1", "wf", "running", 1.0, 1.0), [Event(1, RUN_CREATED)])
    store.close()
    size = 7
    proc = subprocess.Popen(
        [sys.executable, WORKERS, "crash", url, "r1", str(size)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    last = -1
    for line in proc.stdout:
        last = int(line)
        if last >= 60:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL

    store = open_store(url)
    try:
        seqs = [e.seq for e in store.events("r1")]
        results = store.results("r1")
    finally:
        store.close()
    batches = (len(seqs) - 1) // size
    assert batches >= last + 1  # everything reported as committed is there
    assert seqs == list(range(1, 2 + batches * size))  # a gap-free prefix of whole batches
    assert sorted(results) == sorted(f"b{k}" for k in range(batches))
    assert all(
        r.verify() and r.data == bytes([k % 256]) * 3000
        for k, r in ((int(t[1:]), r) for t, r in results.items())
    )
    if url.startswith("sqlite"):
        path = url.removeprefix("sqlite:///")
        conn = sqlite3.connect(path)
        try:
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        finally:
            conn.close()
