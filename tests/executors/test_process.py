"""ProcessExecutor: one killable, memory-limited process per attempt; every way a worker can end
maps to the right ErrorRecord kind; no process outlives its attempt or the executor."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from executor_helpers import gone, make_call, wait_until

from podium.errors import TaskFailedError
from podium.executors import ProcessExecutor
from podium.registry import Registry


@pytest.fixture
def ex(registry: Registry) -> Iterator[ProcessExecutor]:
    executor = ProcessExecutor(registry=registry, grace=0.5)
    yield executor
    executor.shutdown()


def failure_of(fut: object) -> TaskFailedError:
    exc = fut.exception(timeout=60)  # type: ignore[attr-defined]
    assert isinstance(exc, TaskFailedError)
    return exc


def descendants() -> list[psutil.Process]:
    return [p for p in psutil.Process().children(recursive=True) if p.status() != psutil.STATUS_ZOMBIE]


def test_task_from_a_flow_file_runs_in_another_process(ex: ProcessExecutor, flow_file: Path) -> None:
    # the flow file is not importable by name: the worker loads it by path from the snapshot
    assert str(flow_file.parent) not in sys.path
    fut = ex.submit(make_call("pid"))
    child = fut.result(timeout=60)
    assert child != os.getpid()
    assert fut.podium_meta["pid"] == child and fut.podium_meta["peak_rss"] > 0  # type: ignore[attr-defined]


def test_timeout_kills_the_whole_process_group(ex: ProcessExecutor, tmp_path: Path) -> None:
    pidfile = tmp_path / "grandchild"
    fut = ex.submit(make_call("spawn_and_sleep", timeout=2.0, pidfile=str(pidfile)))
    exc = failure_of(fut)
    assert exc.record.kind == "timeout" and "'spawn_and_sleep'" in exc.record.message
    assert pidfile.exists(), "the task should have started its grandchild before timing out"
    assert wait_until(lambda: gone(int(pidfile.read_text())))
    assert ex.pids() == {}


def test_memory_hog_fails_as_oom(ex: ProcessExecutor) -> None:
    exc = failure_of(ex.submit(make_call("hog", memory="200MiB")))
    assert exc.record.kind == "oom" and exc.record.type == "MemoryError"


def test_sigkill_near_the_memory_request_counts_as_oom(ex: ProcessExecutor) -> None:
    # what the kernel's OOM killer does: SIGKILL while the worker's RSS is near its request
    exc = failure_of(ex.submit(make_call("fill_then_die", memory="200MiB", mib=190)))
    assert exc.record.kind == "oom" and "SIGKILL" in exc.record.message
    assert exc.record.extra["peak_rss"] >= 190 * 1024**2


def test_worker_killed_by_a_signal_is_worker_lost(ex: ProcessExecutor) -> None:
    fut = ex.submit(make_call("nap", s=60))
    assert wait_until(lambda: "nap" in ex.pids())
    os.kill(ex.pids()["nap"], signal.SIGKILL)
    exc = failure_of(fut)
    assert exc.record.kind == "worker_lost"
    assert exc.record.message == "worker process for task 'nap' was killed by SIGKILL"


def test_worker_exiting_without_a_result_is_worker_lost(ex: ProcessExecutor) -> None:
    exc = failure_of(ex.submit(make_call("vanish")))
    assert exc.record.kind == "worker_lost" and "exited with code 3" in exc.record.message


def test_unpicklable_result_fails_without_retry(ex: ProcessExecutor) -> None:
    exc = failure_of(ex.submit(make_call("unpicklable")))
    assert not exc.record.retryable and "cannot be pickled" in exc.record.message


def test_kill_cancels_and_kills_the_group(ex: ProcessExecutor, tmp_path: Path) -> None:
    pidfile = tmp_path / "grandchild"
    fut = ex.submit(make_call("spawn_and_sleep", pidfile=str(pidfile)))
    assert wait_until(pidfile.exists)
    worker = ex.pids()["spawn_and_sleep"]
    ex.kill(fut)
    exc = failure_of(fut)
    assert exc.record.kind == "cancelled" and not exc.record.retryable
    assert wait_until(lambda: gone(worker) and gone(int(pidfile.read_text())))


def test_shutdown_leaves_no_process_behind(registry: Registry, tmp_path: Path) -> None:
    ex = ProcessExecutor(registry=registry)
    pidfile = tmp_path / "grandchild"
    futs = [ex.submit(make_call("nap", task_id=f"nap[{i}]", s=60)) for i in range(3)]
    futs.append(ex.submit(make_call("spawn_and_sleep", pidfile=str(pidfile))))
    assert wait_until(pidfile.exists)
    assert len(descendants()) >= 5
    ex.shutdown()
    assert all(failure_of(f).record.kind == "cancelled" for f in futs)
    assert wait_until(lambda: not descendants()), descendants()
    with pytest.raises(RuntimeError, match="shut down"):
        ex.submit(make_call("pid"))


def test_worker_dies_when_the_orchestrator_goes_away(registry: Registry) -> None:
    ex = ProcessExecutor(registry=registry)
    fut = ex.submit(make_call("nap", s=60))
    assert wait_until(lambda: "nap" in ex.pids())
    worker = ex.pids()["nap"]
    w = ex._workers[fut]
    os.close(w.ctl)  # what the kernel does for us when the orchestrator dies
    w.ctl = os.open(os.devnull, os.O_WRONLY)  # keep the bookkeeping's fd valid for shutdown
    exc = failure_of(fut)
    assert exc.record.kind == "worker_lost" and "SIGKILL" in exc.record.message and gone(worker)
    ex.shutdown()
