"""25 ``kill -9``s of ``podium run`` at random moments across a 200-task DAG, then finish.

Each ``podium run --run-id X`` process is SIGKILLed after a random delay and started again
with the same id (same id resumes) until one finishes; the DAG mixes thread and process
tasks in random layers and each task counts its executions in a side-effect file. When a run
finishes before all kills are spent, a fresh run of the same DAG takes the remaining kills.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from chaos_harness import cli_env, cluster_file, layered_spec, podium_cmd, rng_for, run_args
from chaos_invariants import STATS, assert_no_leftovers, check_run, count_faults

from podium.store.sqlite import SqliteStore

KILLS = 25
TASKS = 200


@pytest.mark.chaos
def test_kill_9_the_orchestrator_25_times(tmp_path: Path, tag: str) -> None:
    rng = rng_for("orchestrator-kills")
    spec = tmp_path / "dag.yaml"
    spec.write_text(
        layered_spec(rng, "chaos-orchestrator", TASKS, process_share=0.2, seconds=(0.01, 0.08)),
        encoding="utf-8",
    )
    cluster = cluster_file(tmp_path / "cluster.yaml")
    db = tmp_path / "state.db"
    env = cli_env(tag)
    kills = 0
    run_no = 0
    while kills < KILLS:
        run_no += 1
        run_id = f"orch{run_no}"
        log = tmp_path / f"effects-{run_id}.log"
        killed_here = 0
        while True:
            proc = subprocess.Popen(
                podium_cmd(*run_args(spec, log, run_id, db, cluster)),
                cwd=tmp_path,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            if kills < KILLS:
                try:
                    proc.wait(rng.uniform(0.3, 1.6))
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(30)
                    kills += 1
                    killed_here += 1
                    STATS["orchestrator_kills"] += 1
                    proc.stderr.close()  # type: ignore[union-attr]
                    continue
            _out, err = proc.communicate(timeout=110)
            assert proc.returncode == 0, f"run {run_id} after {killed_here} kills: {err.decode()[-2000:]}"
            break
        store = SqliteStore(str(db))
        try:
            verdict = check_run(store, run_id, log, db=db)
        finally:
            store.close()
        count_faults(verdict)
        STATS["runs_completed"] += 1
    assert_no_leftovers(tag, tmp_path)
