"""50 SIGKILLs of running task processes under a live ``podium run``.

The victims are found as psutil children of the orchestrator whose pid wrote a side-effect
line (so the task is known); a task is killed at most twice, which the engine absorbs as lost
workers without spending the task's own retries. Runs follow one another until all kills
are spent; each must finish (resumed once with the same id if a kill made it fail).
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest
from chaos_harness import cli_env, cluster_file, layered_spec, podium_cmd, rng_for, run_args
from chaos_invariants import STATS, assert_no_leftovers, check_run, count_faults, read_effects

from podium.store.sqlite import SqliteStore

KILLS = 50
TASKS = 40
PER_TASK = 2


def _children(pid: int) -> set[int]:
    try:
        return {c.pid for c in psutil.Process(pid).children() if c.status() != psutil.STATUS_ZOMBIE}
    except psutil.NoSuchProcess:
        return set()


@pytest.mark.chaos
def test_sigkill_50_task_processes(tmp_path: Path, tag: str) -> None:
    rng = rng_for("worker-kills")
    spec = tmp_path / "dag.yaml"
    spec.write_text(
        layered_spec(rng, "chaos-workers", TASKS, process_share=1.0, seconds=(0.3, 0.8)), encoding="utf-8"
    )
    cluster = cluster_file(tmp_path / "cluster.yaml", cpu=4)
    db = tmp_path / "state.db"
    env = cli_env(tag)
    kills = 0
    run_no = 0
    while kills < KILLS:
        run_no += 1
        run_id = f"work{run_no}"
        log = tmp_path / f"effects-{run_id}.log"
        args = run_args(spec, log, run_id, db, cluster)
        proc = subprocess.Popen(
            podium_cmd(*args), cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        per_task: collections.Counter[str] = collections.Counter()
        while proc.poll() is None and kills < KILLS:
            time.sleep(rng.uniform(0.05, 0.25))
            task_of = {line.pid: line.task for line in read_effects(log)}  # latest line per pid
            alive = _children(proc.pid)
            victims = sorted(p for p, t in task_of.items() if p in alive and per_task[t] < PER_TASK)
            if not victims:
                continue
            pid = rng.choice(victims)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                continue
            per_task[task_of[pid]] += 1
            kills += 1
            STATS["worker_kills"] += 1
        _out, _err = proc.communicate(timeout=110)
        if proc.returncode != 0:  # a task ran out of retries: faults have stopped, so resuming finishes
            again = subprocess.run(podium_cmd(*args), cwd=tmp_path, env=env, capture_output=True, timeout=110)
            assert again.returncode == 0, f"run {run_id} did not finish once kills stopped: {again.stderr!r}"
        store = SqliteStore(str(db))
        try:
            verdict = check_run(store, run_id, log, db=db)
        finally:
            store.close()
        count_faults(verdict)
        assert verdict.kinds["worker_lost"] >= sum(per_task.values()) - 2, (
            "each kill of a running worker shows in the log as a lost worker",
            verdict.kinds,
            per_task,
        )
        STATS["runs_completed"] += 1
    assert_no_leftovers(tag, tmp_path)
