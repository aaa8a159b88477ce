"""Measured usage of every attempt, recorded by the runtime in its end event's ``usage`` and read
back by ``attempt_usage``: real worker processes (``wait4``) and real threads (their CPU clock)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import metrics_tasks  # noqa: F401  (registers the task functions)
import pytest

from podium.cli import main
from podium.executors.local import LocalExecutor, detect_node
from podium.executors.thread import RECHECK, ThreadExecutor
from podium.model import TaskSpec, Workflow
from podium.model import events as ev
from podium.model.task import RetryPolicy
from podium.model.usage import attempt_usage, usage_record
from podium.runtime.engine import Engine
from podium.store import open_store
from podium.store.memory import MemoryStore


def _ended(wf: Workflow) -> dict[str, list[dict[str, Any]]]:
    """Run ``wf`` on the local executor; the data of every event that ended an attempt, by task."""
    store, executor = MemoryStore(), LocalExecutor([detect_node()])
    try:
        Engine(store, executor).run(wf, run_id="u1")
    finally:
        executor.shutdown()
    out: dict[str, list[dict[str, Any]]] = {}
    for e in store.events("u1"):
        if e.task_id is not None and "duration" in e.data:
            out.setdefault(e.task_id, []).append(dict(e.data, type=e.type))
    return out


def test_process_attempts_record_cpu_time_and_peak_memory_of_their_worker() -> None:
    wf = Workflow.build(
        "usage",
        [
            TaskSpec("burn", call="metrics_tasks:spin", args={"n": 3_000_000}, isolation="process"),
            TaskSpec("hog", call="metrics_tasks:hog", args={"mib": 200}, isolation="process"),
            TaskSpec(
                "hogfail",
                call="metrics_tasks:hog_and_fail",
                args={"mib": 120},
                isolation="process",
                retry=RetryPolicy(attempts=1),
            ),
        ],
        fail_fast=False,
    )
    # a large orchestrator: Linux carries a parent's peak RSS into its children's wait4 figure,
    # so a worker measured that way would report these 300 MiB as its own
    ballast = bytearray(300 << 20)
    ballast[::4096] = b"x" * len(range(0, len(ballast), 4096))
    ended = _ended(wf)
    del ballast
    burn = attempt_usage(ended["burn"][0])
    assert burn is not None and burn.source == "process"
    assert burn.peak_memory is not None and burn.peak_memory < 150 << 20  # its own, not the parent's
    assert burn.cpu_time >= 0.03  # three million steps of Python, plus the worker's start-up
    hog = attempt_usage(ended["hog"][0])
    assert hog is not None and hog.peak_memory >= 200 << 20
    # per attempt, each in its own worker
    assert hog.peak_memory >= burn.peak_memory + (100 << 20)
    failed = ended["hogfail"][0]
    assert failed["type"] == ev.TASK_FAILED
    assert attempt_usage(failed).peak_memory >= 120 << 20  # failures are measured too


def test_thread_attempts_record_their_threads_cpu_time_and_no_memory() -> None:
    wf = Workflow.build(
        "usage-t",
        [
            TaskSpec("burn", call="metrics_tasks:spin", args={"n": 3_000_000}),
            TaskSpec("nap", call="metrics_tasks:nap", args={"seconds": 0.2}),
        ],
    )
    ended = _ended(wf)
    burn, nap = attempt_usage(ended["burn"][0]), attempt_usage(ended["nap"][0])
    assert burn.source == nap.source == "thread"
    assert burn.cpu_time >= 0.03  # busy: three million steps of Python
    assert nap.cpu_time < 0.01 < 0.2 <= nap.wall_time  # asleep: its thread used next to no CPU
    assert burn.wall_time >= burn.cpu_time
    assert burn.peak_memory is None and nap.peak_memory is None  # unknown, never a guessed 0


def test_threads_measure_short_functions_once_in_recheck_calls() -> None:
    """A function that last ran under a millisecond is not measured (its CPU clock costs more
    than it is worth), except one call in RECHECK, which notices when it becomes slow."""
    from podium.model import Resources, TaskCall

    spec = TaskSpec("n", call="metrics_tasks:nap")
    executor = ThreadExecutor(nodes=[detect_node()])
    metas = []
    try:
        for i in range(RECHECK + 1):
            call = TaskCall("r", f"n{i}", 1, spec, {"seconds": 0.0}, {}, Resources(), "local", None)
            fut = executor.submit(call)
            fut.result(timeout=10)
            metas.append(fut.podium_meta)
    finally:
        executor.shutdown()
    measured = [m for m in metas if m]
    assert metas[0] and metas[0]["measured"] == "thread"  # a function seen for the first time
    assert 2 <= len(measured) <= 3  # the first, then one in RECHECK
    assert usage_record(None) is None and usage_record({"node": "x", "seconds": 1.0}) is None


def test_malformed_usage_reads_as_unknown() -> None:
    for bad in ("x", {"cpu_time": -1}, {"cpu_time": float("nan")}, {"cpu_time": True}, {"peak_memory": "9"}):
        assert attempt_usage({"usage": bad}) is None
    assert attempt_usage({"usage": {"cpu_time": 1, "source": "<script>"}}).source is None
    assert attempt_usage(None) is None and attempt_usage({}) is None


def test_show_prints_the_measured_usage_of_each_task(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    wf = Workflow.build(
        "shown", [TaskSpec("hog", call="metrics_tasks:hog", args={"mib": 100}, isolation="process")]
    )
    db = tmp_path / "s.db"
    store, executor = open_store(str(db)), LocalExecutor([detect_node()])
    try:
        assert Engine(store, executor).run(wf, run_id="s1").ok
    finally:
        executor.shutdown()
        store.close()
    monkeypatch.setenv("COLUMNS", "200")
    main(["show", "s1", "--store", str(db)])
    out = capsys.readouterr().out
    assert "cpu used" in out and "peak memory" in out and "(process)" in out
    row = next(line for line in out.splitlines() if "hog" in line and "succeeded" in line)
    assert "MiB" in row  # a peak of 100MiB and more, as the worker measured it
