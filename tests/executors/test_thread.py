"""ThreadExecutor: timeouts and kills fail the Future once and discard late results; the pool
never queues a submitted call; shell commands are killed with their process group."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from executor_helpers import gone, make_call, wait_until

from podium.errors import TaskFailedError
from podium.executors import ThreadExecutor
from podium.policy import Policy
from podium.registry import Registry


@pytest.fixture
def gated() -> tuple[Registry, threading.Event, list[str]]:
    """A registry with ``t:gated``: waits for the gate, records that it ran, returns 'late'."""
    gate, ran = threading.Event(), []

    def wait_for_gate() -> str:
        gate.wait(30)
        ran.append("finished")
        return "late"

    r = Registry()
    r.register("t:gated", wait_for_gate)
    return r, gate, ran


def test_timeout_fails_once_and_discards_the_late_result(gated: Any) -> None:
    registry, gate, ran = gated
    ex = ThreadExecutor(registry=registry)
    fut = ex.submit(make_call("t:gated", timeout=0.2))
    resolutions: list[Any] = []
    fut.add_done_callback(resolutions.append)
    exc = fut.exception(timeout=30)
    assert isinstance(exc, TaskFailedError) and exc.record.kind == "timeout"
    assert "'t:gated'" in exc.record.message and "0.2s" in exc.record.message
    gate.set()
    assert wait_until(lambda: ran == ["finished"])
    ex.shutdown(wait=True)  # the abandoned thread's late result arrives and is dropped
    assert fut.exception() is exc and resolutions == [fut]


def test_kill_fails_as_cancelled_and_discards_the_late_result(gated: Any) -> None:
    registry, gate, ran = gated
    ex = ThreadExecutor(registry=registry)
    fut = ex.submit(make_call("t:gated"))
    resolutions: list[Any] = []
    fut.add_done_callback(resolutions.append)
    ex.kill(fut)
    exc = fut.exception(timeout=30)
    assert isinstance(exc, TaskFailedError) and exc.record.kind == "cancelled" and not exc.record.retryable
    gate.set()
    assert wait_until(lambda: ran == ["finished"])
    ex.shutdown()
    assert fut.exception() is exc and resolutions == [fut]


def test_calls_without_timeout_resolve_exactly_once(registry: Registry) -> None:
    ex = ThreadExecutor(registry=registry)
    seen: list[Any] = []
    futs = [ex.submit(make_call("add", a=i, b=1)) for i in range(200)]
    for f in futs:
        f.add_done_callback(seen.append)
    assert [f.result(timeout=30) for f in futs] == [i + 1 for i in range(200)]
    ex.shutdown()
    assert sorted(map(id, seen)) == sorted(map(id, futs))


def test_pool_grows_so_submitted_calls_never_queue() -> None:
    n = 24
    barrier = threading.Barrier(n, timeout=30)
    r = Registry()
    r.register("t:meet", lambda: barrier.wait())
    ex = ThreadExecutor(registry=r)
    futs = [ex.submit(make_call("t:meet", task_id=f"meet[{i}]")) for i in range(n)]
    # all n calls meet at the barrier only if they all run at once
    assert sorted(f.result(timeout=60) for f in futs) == list(range(n))
    ex.shutdown()


def test_max_workers_caps_the_pool(registry: Registry) -> None:
    ex = ThreadExecutor(max_workers=2, registry=registry)
    futs = [ex.submit(make_call("add", a=i, b=0)) for i in range(20)]
    assert [f.result(timeout=30) for f in futs] == list(range(20))
    assert len(ex._threads) <= 2
    ex.shutdown()
    with pytest.raises(RuntimeError, match="shut down"):
        ex.submit(make_call("add", a=1, b=1))


def _shell_registry() -> Registry:
    reg = Registry()
    reg.grant(Policy(programs=("sh",)))
    return reg


def test_shell_timeout_kills_the_command(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    argv = ["sh", "-c", f'echo $$ > "{pidfile}.tmp"; mv "{pidfile}.tmp" "{pidfile}"; exec sleep 60']
    ex = ThreadExecutor(registry=_shell_registry())
    fut = ex.submit(make_call(kind="shell", timeout=0.5, config={"argv": argv}))
    assert fut.exception(timeout=30).record.kind == "timeout"
    assert wait_until(pidfile.exists)
    assert wait_until(lambda: gone(int(pidfile.read_text())))
    ex.shutdown()


def test_kill_of_a_shell_call_kills_the_command(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    argv = ["sh", "-c", f'echo $$ > "{pidfile}.tmp"; mv "{pidfile}.tmp" "{pidfile}"; exec sleep 60']
    ex = ThreadExecutor(registry=_shell_registry())
    fut = ex.submit(make_call(kind="shell", config={"argv": argv}))
    assert wait_until(pidfile.exists)
    ex.kill(fut)
    assert fut.exception(timeout=30).record.kind == "cancelled"
    assert wait_until(lambda: gone(int(pidfile.read_text())))
    ex.shutdown()
