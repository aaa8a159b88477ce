"""Store write failures injected at 10% under an in-process engine running a 200-task DAG.

``FaultyStore`` fails ``append`` before writing with probability 0.1 (seeded). The engine must
retry the write or stop cleanly with ``StoreError``; either way it never acts on a state it
did not persist: every side effect follows the moment its ``TaskStarted`` became durable.
Then the run is resumed on the healthy store and must finish.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from chaos_harness import FaultyStore, engine_for, executor, layered_spec, load, registry, rng_for
from chaos_invariants import STATS, assert_no_leftovers, check_run, count_faults

from podium.errors import StoreError
from podium.store.sqlite import SqliteStore

TASKS = 200
RATE = 0.1


def _run(rate: float, seed: str, spec: str, tmp_path: Path, tag: str) -> tuple[int, int]:
    """Run the DAG under ``rate`` faults then finish it healthy; return (injected, stops)."""
    rng = rng_for(seed)
    reg = registry()
    wf = load(spec, reg)
    db = tmp_path / "state.db"
    log = tmp_path / "effects.log"
    real = SqliteStore(str(db))
    faulty = FaultyStore(real, rate, rng)
    healthy = FaultyStore(real, 0.0, rng)  # no faults; still records when events became durable
    ex = executor(reg)
    stops = 0
    try:
        try:
            result = engine_for(faulty, ex).run(wf, {"log": str(log)}, run_id="faulty")
        except StoreError:
            stops += 1  # the store stayed down past the engine's retries: it stopped cleanly
        else:
            assert result.ok, result.status
        result = engine_for(healthy, ex).run(wf, {"log": str(log)}, run_id="faulty")
        assert result.ok, result.status
        durable = {**faulty.durable_ns, **healthy.durable_ns}
        verdict = check_run(real, "faulty", log, db=db, durable_ns=durable)
    finally:
        ex.shutdown()
        real.close()
    count_faults(verdict)
    STATS["runs_completed"] += 1
    assert_no_leftovers(tag, tmp_path)
    return faulty.injected, stops


@pytest.mark.chaos
def test_store_write_failures_at_10_percent(tmp_path: Path, tag: str) -> None:
    spec = layered_spec(
        rng_for("store-faults-dag"), "chaos-store", TASKS, process_share=0.2, seconds=(0.0, 0.03)
    )
    injected, _stops = _run(RATE, "store-faults", spec, tmp_path, tag)
    STATS["store_errors"] += injected
    assert injected > 0, "the faulty store never failed: the scenario tested nothing"


@pytest.mark.chaos
def test_a_store_that_stays_down_stops_the_engine_cleanly(tmp_path: Path, tag: str) -> None:
    """At a 90% failure rate the engine's write retries run out: it must stop with StoreError
    (not act on unpersisted state), and the healthy store finishes the run."""
    spec = layered_spec(
        rng_for("store-down-dag"), "chaos-store-down", 30, process_share=0.3, seconds=(0.0, 0.02)
    )
    injected, stops = _run(0.9, "store-down", spec, tmp_path, tag)
    STATS["store_errors"] += injected
    assert stops == 1, "a store failing 90% of writes should exhaust the engine's write retries"
