"""``InlineExecutor``: calls run in the caller's thread; with a fake clock they take simulated time."""

from __future__ import annotations

import threading

import pytest
from executor_helpers import make_call

from podium.errors import TaskFailedError
from podium.executors.inline import InlineExecutor
from podium.model import Node, Resources
from podium.registry import Registry
from podium.testing import FakeClock
from podium.types import AttemptFuture, Executor, outcome_of


def test_a_call_runs_at_submit_in_the_calling_thread(registry: Registry) -> None:
    ex = InlineExecutor(registry=registry)
    assert isinstance(ex, Executor)
    seen: list[threading.Thread] = []
    fut = ex.submit(make_call("add", a=2, b=3))
    fut.add_done_callback(lambda f: seen.append(threading.current_thread()))
    assert isinstance(fut, AttemptFuture) and fut.done()
    assert fut.result() == 5 and outcome_of(fut) == (5, None)
    assert seen == [threading.current_thread()]
    assert [c.task_id for c in ex.calls] == ["add"]
    assert ex.nodes() == (Node("local", Resources(cpu=1.0)),)


def test_a_failing_call_fails_its_future_with_the_task_error(registry: Registry) -> None:
    fut = InlineExecutor(registry=registry).submit(make_call("boom", x=7))
    err = outcome_of(fut)[1]
    assert isinstance(err, TaskFailedError)
    assert err.record.kind == "user" and "bad x=7" in err.record.message


def test_with_a_fake_clock_a_call_ends_after_its_simulated_duration(registry: Registry) -> None:
    clock = FakeClock()
    ex = InlineExecutor(registry=registry, clock=clock, duration=lambda call: 2.5)
    fut = ex.submit(make_call("add", a=1, b=1))
    assert not fut.done()  # it ran, but its simulated run ends at 2.5
    clock.advance(2.4)
    assert not fut.done()
    clock.advance(0.1)
    assert fut.result() == 2 and fut.podium_meta == {"node": "local", "seconds": 2.5}


def test_a_simulated_call_past_its_timeout_fails_as_timeout_at_the_timeout(registry: Registry) -> None:
    clock = FakeClock()
    ex = InlineExecutor(registry=registry, clock=clock, duration=lambda call: 10.0)
    fut = ex.submit(make_call("add", a=1, b=1, timeout=3.0))
    clock.advance(3.0)
    err = outcome_of(fut)[1]
    assert isinstance(err, TaskFailedError) and err.record.kind == "timeout"
    assert "timed out after 3s" in err.record.message


def test_kill_cancels_a_simulated_call_that_has_not_ended(registry: Registry) -> None:
    clock = FakeClock()
    ex = InlineExecutor(registry=registry, clock=clock, duration=lambda call: 1.0)
    fut = ex.submit(make_call("add", a=1, b=1))
    ex.kill(fut)
    err = outcome_of(fut)[1]
    assert isinstance(err, TaskFailedError) and err.record.kind == "cancelled"
    clock.advance(5.0)  # its simulated end comes and goes: the future stays cancelled
    assert isinstance(outcome_of(fut)[1], TaskFailedError)
    done = ex.submit(make_call("add", a=1, b=2))
    clock.advance(1.0)
    ex.kill(done)  # a finished call: nothing to kill
    assert done.result() == 3


@pytest.mark.parametrize("durations", [(3.0, 1.0, 2.0), (1.0, 1.0, 1.0)])
def test_simulated_calls_end_in_order_of_their_end_times(registry: Registry, durations) -> None:
    clock = FakeClock()
    it = iter(durations)
    ex = InlineExecutor(registry=registry, clock=clock, duration=lambda call: next(it))
    ended: list[tuple[str, float]] = []
    for name in ("a", "b", "c"):
        f = ex.submit(make_call("add", task_id=name, a=1, b=1))
        f.add_done_callback(lambda f, name=name: ended.append((name, clock.monotonic())))
    clock.advance(10.0)
    expected = sorted(zip(("a", "b", "c"), durations, strict=True), key=lambda x: x[1])  # stable on ties
    assert ended == expected
