"""The contracts in ``podium.types``: the attempt future, its outcome and metadata, and the
optional executor capabilities the engine checks once when a run starts."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import CancelledError, Future, InvalidStateError
from typing import Any

import pytest

from podium.model import Node, Resources
from podium.types import (
    AttemptFuture,
    Executor,
    QueueingExecutor,
    RefreshingExecutor,
    meta_of,
    outcome_of,
)


def test_the_outcome_is_recorded_before_the_done_callbacks_run() -> None:
    seen: list[Any] = []
    ok, bad = AttemptFuture(), AttemptFuture()
    for f in (ok, bad):
        f.set_running_or_notify_cancel()
        f.add_done_callback(lambda f: seen.append(f.outcome))
    ok.set_result(42)
    err = ValueError("x")
    bad.set_exception(err)
    assert seen == [(42, None), (None, err)]
    assert outcome_of(ok) == (42, None) and outcome_of(bad) == (None, err)


def test_a_future_resolves_once_and_keeps_its_first_outcome() -> None:
    f = AttemptFuture()
    f.set_exception(RuntimeError("killed"))
    with pytest.raises(InvalidStateError):
        f.set_result(1)
    assert isinstance(outcome_of(f)[1], RuntimeError)
    with pytest.raises(RuntimeError):
        f.result()


def test_racing_resolutions_leave_one_outcome_that_agrees_with_result() -> None:
    """A worker finishing while a kill fails the same future: whoever wins, the outcome the
    loop reads is the one ``result()`` reports."""
    for _ in range(300):
        f = AttemptFuture()
        f.set_running_or_notify_cancel()
        go = threading.Barrier(2)

        def finish(f: AttemptFuture = f, go: threading.Barrier = go) -> None:
            go.wait()
            try:
                f.set_result("value")
            except InvalidStateError:
                pass

        t = threading.Thread(target=finish)
        t.start()
        go.wait()
        try:
            f.set_exception(CancelledError())
        except InvalidStateError:
            pass
        t.join()
        value, exc = outcome_of(f)
        if exc is None:
            assert f.result() == value == "value"
        else:
            assert f.exception() is exc


def test_plain_futures_are_read_through_their_public_api() -> None:
    ok, bad, cancelled = Future(), Future(), Future()
    ok.set_result(1)
    bad.set_exception(KeyError("k"))
    cancelled.cancel()
    assert outcome_of(ok) == (1, None)
    assert isinstance(outcome_of(bad)[1], KeyError)
    assert isinstance(outcome_of(cancelled)[1], CancelledError)
    f = AttemptFuture()
    f.cancel()  # cancelled before it ran: no outcome recorded, read like any future
    assert f.outcome is None and isinstance(outcome_of(f)[1], CancelledError)


def test_attempt_metadata_of_an_attempt_future_and_of_an_annotated_plain_future() -> None:
    f = AttemptFuture()
    assert meta_of(f) is None
    f.podium_meta = {"node": "a", "seconds": 0.5}
    assert meta_of(f) == {"node": "a", "seconds": 0.5}
    plain: Future[Any] = Future()
    assert meta_of(plain) is None
    plain.podium_meta = {"pid": 7}  # type: ignore[attr-defined]  (the contract before AttemptFuture)
    assert meta_of(plain) == {"pid": 7}


class _Basic:
    name = "basic"

    def submit(self, call: Any) -> Future[Any]:
        return Future()

    def kill(self, future: Future[Any]) -> None: ...

    def nodes(self) -> Sequence[Node]:
        return [Node("n", Resources(cpu=1))]

    def shutdown(self, wait: bool = True) -> None: ...


class _Refreshing(_Basic):
    def refresh(self) -> Sequence[Node]:
        return self.nodes()


class _Queueing(_Basic):
    def submit(self, call: Any, follow: Future[Any] | None = None) -> Future[Any]:
        return Future()

    def queue_limits(self, node: str) -> tuple[int, float]:
        return 4, 0.001


def test_optional_capabilities_are_protocols_an_executor_matches_or_not() -> None:
    basic, refreshing, queueing = _Basic(), _Refreshing(), _Queueing()
    assert all(isinstance(e, Executor) for e in (basic, refreshing, queueing))
    assert isinstance(refreshing, RefreshingExecutor) and not isinstance(basic, RefreshingExecutor)
    assert isinstance(queueing, QueueingExecutor) and not isinstance(basic, QueueingExecutor)
    assert not isinstance(refreshing, QueueingExecutor)
