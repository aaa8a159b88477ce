"""The invariant checker itself: it passes a clean run and catches each kind of violation.

Without these, a checker that accepted everything would make every scenario pass.
"""

from __future__ import annotations

import collections
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from chaos_harness import engine_for, executor, layered_spec, load, registry, rng_for
from chaos_invariants import STATS, TAG_ENV, check_run, leftover_processes
from chaos_tasks import record

from podium.model import events as ev
from podium.model.events import Event
from podium.model.states import IllegalTransition
from podium.store.sqlite import SqliteStore


@pytest.fixture
def clean_run(tmp_path: Path) -> Iterator[tuple[SqliteStore, Path, Path]]:
    """A small finished run (threads and processes); the session counters are left untouched."""
    saved = collections.Counter(STATS)
    reg = registry()
    wf = load(layered_spec(rng_for("checker"), "checker", 12, process_share=0.3, seconds=(0.0, 0.01)), reg)
    db, log = tmp_path / "state.db", tmp_path / "effects.log"
    store = SqliteStore(str(db))
    ex = executor(reg)
    try:
        assert engine_for(store, ex).run(wf, {"log": str(log)}, run_id="r").ok
    finally:
        ex.shutdown()
    yield store, log, db
    store.close()
    STATS.clear()
    STATS.update(saved)


@pytest.mark.chaos
def test_a_clean_run_passes(clean_run: tuple[SqliteStore, Path, Path]) -> None:
    store, log, db = clean_run
    verdict = check_run(store, "r", log, db=db)
    assert verdict.reexecutions == 0 and len(verdict.committed) == 12


@pytest.mark.chaos
def test_a_committed_task_running_again_is_caught(clean_run: tuple[SqliteStore, Path, Path]) -> None:
    store, log, db = clean_run
    record(str(log), "t003")
    with pytest.raises(AssertionError, match="t003: ran again"):
        check_run(store, "r", log, db=db)


@pytest.mark.chaos
def test_a_side_effect_before_any_durable_start_is_caught(clean_run: tuple[SqliteStore, Path, Path]) -> None:
    store, log, db = clean_run
    with log.open("a", encoding="utf-8") as f:
        f.write(f"t001 {time.time_ns() - 3600 * 10**9} 1\n")
    with pytest.raises(AssertionError, match="no TaskStarted before it"):
        check_run(store, "r", log, db=db)
    starts = {e.seq: 0 for e in store.events("r") if e.type == ev.TASK_STARTED}
    late = {seq: time.time_ns() for seq in starts}
    log.write_text("".join(line + "\n" for line in log.read_text().splitlines()[:-1]))
    with pytest.raises(AssertionError, match=r"before its TaskStarted .* was durable"):
        check_run(store, "r", log, db=db, durable_ns=late)


@pytest.mark.chaos
def test_a_corrupt_result_and_an_illegal_transition_are_caught(
    clean_run: tuple[SqliteStore, Path, Path],
) -> None:
    store, log, db = clean_run
    con = sqlite3.connect(db)
    con.execute("UPDATE results SET data = X'00' WHERE run_id = 'r' AND task_id = 't000'")
    con.commit()
    con.close()
    with pytest.raises(AssertionError, match="fails its checksum"):
        check_run(store, "r", log, db=db)
    last = store.events("r")[-1].seq
    store.append("r", [Event(last + 1, ev.TASK_STARTED, "t000", 9, time.time(), {})])
    with pytest.raises(IllegalTransition):
        check_run(store, "r", log, db=db)


@pytest.mark.chaos
def test_a_process_left_behind_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TAG_ENV, "checker-tag")
    proc = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        assert any(str(proc.pid) in p for p in leftover_processes("checker-tag", tmp_path))
    finally:
        proc.kill()
        proc.wait()
    assert leftover_processes("checker-tag", tmp_path) == []
