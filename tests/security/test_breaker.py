"""Calling services robustly: ``Retry-After`` sets the engine's retry delay, and a per-origin
circuit breaker fails calls at once while a service is down, then lets one through.

The HTTP tests talk to real servers on 127.0.0.1 and count the requests they receive."""

from __future__ import annotations

import email.utils
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler

import pytest
from security_helpers import Server, json_reply, reply

from podium.errors import TaskFailedError
from podium.executors.breaker import MAX_RETRY_AFTER, Breaker, retry_after
from podium.executors.inline import InlineExecutor
from podium.executors.kinds import run_call
from podium.model import Resources, RetryPolicy, TaskCall, TaskSpec, Workflow
from podium.model import events as ev
from podium.policy import Policy
from podium.registry import Registry
from podium.runtime.engine import Engine
from podium.store.memory import MemoryStore
from podium.testing import FakeClock


class Tick:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


# -- the breaker ------------------------------------------------------------------------------
def test_a_breaker_opens_after_failures_in_a_row_then_lets_one_call_through() -> None:
    clock = Tick()
    b = Breaker(failures=3, cooldown=10.0, clock=clock)
    for _ in range(2):
        b.failed_call()
        assert b.admit() is None  # not yet: two failures
    b.succeeded()  # a success resets the count
    for _ in range(3):
        assert b.admit() is None
        b.failed_call()
    assert b.admit() == 10.0  # open: fail fast, saying how long
    clock.now = 9.5
    assert b.admit() == pytest.approx(0.5)
    clock.now = 10.0
    assert b.admit() is None  # half-open: one trial call
    assert b.admit() is not None  # ... and only one while it is on its way
    b.failed_call()  # the trial failed: open twice as long
    assert b.admit() == 20.0
    clock.now = 30.0
    assert b.admit() is None
    b.succeeded()  # the service is back
    assert b.admit() is None and b.admit() is None


def test_retry_after_reads_seconds_and_dates_and_is_bounded() -> None:
    assert retry_after("3") == 3.0
    assert retry_after(None) is None and retry_after("soon") is None and retry_after("-1") is None
    assert retry_after("99999999") == MAX_RETRY_AFTER
    date = email.utils.formatdate(1_000_120.0, usegmt=True)
    assert retry_after(date, now=1_000_000.0) == pytest.approx(120.0)
    assert retry_after(email.utils.formatdate(999_000.0, usegmt=True), now=1_000_000.0) == 0.0


# -- against real servers ---------------------------------------------------------------------
def http_call(url: str) -> TaskCall:
    spec = TaskSpec(name="t", kind="http", config={"url": url})
    return TaskCall("r", "t", 1, spec, {}, spec.config, Resources())


@pytest.fixture
def loopback() -> Registry:
    reg = Registry()
    reg.grant(Policy(hosts=("127.0.0.1",), http_breaker_failures=3, http_breaker_cooldown=60.0))
    return reg


@pytest.fixture
def down() -> Iterator[Server]:
    """A service that answers every call with 500."""
    s = Server(lambda h: reply(h, 500, b"boom"))
    yield s
    s.close()


def test_an_open_breaker_fails_calls_without_sending_them(down: Server, loopback: Registry) -> None:
    for _ in range(3):
        with pytest.raises(TaskFailedError) as e:
            run_call(http_call(down.url + "/x"), loopback)
        assert e.value.record.type == "HTTPError"
    assert len(down.hits) == 3
    with pytest.raises(TaskFailedError) as e:
        run_call(http_call(down.url + "/x"), loopback)
    rec = e.value.record
    assert len(down.hits) == 3  # not sent
    assert rec.type == "CircuitOpen" and rec.retryable
    assert f"127.0.0.1:{down.port} failed 3 calls in a row (circuit open)" in rec.message
    assert 59.0 < rec.extra["retry_after"] <= 60.0


def test_a_refused_request_does_not_count_against_the_service(loopback: Registry) -> None:
    ok = Server(lambda h: json_reply(h, {"ok": True}))
    try:
        for _ in range(5):  # a path the policy refuses (credentials in the URL) is never a failure
            with pytest.raises(TaskFailedError):
                run_call(http_call(f"http://u:p@127.0.0.1:{ok.port}/"), loopback)
        assert run_call(http_call(ok.url + "/"), loopback) == {"ok": True}
    finally:
        ok.close()


def test_retry_after_sets_the_engine_retry_delay() -> None:
    """A 503 with ``Retry-After: 7`` is retried 7 s later (on a fake clock), not after the
    task's own 0.01 s backoff; the wait is in the event log."""
    answers = iter([(503, "7"), (429, "2")])

    def handle(h: BaseHTTPRequestHandler) -> None:
        step = next(answers, None)
        if step is None:
            json_reply(h, {"ok": True})
        else:
            reply(h, step[0], b"busy", **{"Retry-After": step[1]})

    s = Server(handle)
    try:
        reg = Registry()
        reg.grant(Policy(hosts=("127.0.0.1",)))
        spec = TaskSpec(
            name="call", kind="http", config={"url": s.url + "/"}, retry=RetryPolicy(attempts=3, delay=0.01)
        )
        store, clock = MemoryStore(), FakeClock()
        executor = InlineExecutor(registry=reg)
        result = Engine(store, executor, clock=clock, registry=reg).run(
            Workflow(name="w", tasks={"call": spec})
        )
        assert result.status == "succeeded", result.view.tasks
        delays = [e.data["delay"] for e in store.events(result.run_id) if e.type == ev.TASK_RETRYING]
        assert delays == [7.0, 2.0]
        assert len(s.hits) == 3
    finally:
        s.close()
