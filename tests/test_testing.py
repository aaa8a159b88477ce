"""``podium.testing.FakeClock``: time moves only when told, and scheduled callbacks run in order."""

from __future__ import annotations

import threading

import pytest

from podium.errors import InvalidValueError
from podium.testing import EPOCH, FakeClock
from podium.types import Clock


def test_time_moves_only_when_told() -> None:
    clock = FakeClock(start=5.0)
    assert isinstance(clock, Clock)
    assert clock.monotonic() == 5.0 and clock.time() == EPOCH + 5.0
    clock.advance(1.5)
    clock.sleep(0.5)
    clock.set(10.0)
    assert clock.monotonic() == 10.0 and clock.time() == EPOCH + 10.0
    with pytest.raises(InvalidValueError):
        clock.set(9.0)  # never back


def test_callbacks_run_at_their_time_in_order() -> None:
    clock = FakeClock()
    ran: list[tuple[str, float]] = []
    clock.call_at(2.0, lambda: ran.append(("b", clock.monotonic())))
    clock.call_at(1.0, lambda: ran.append(("a", clock.monotonic())))
    clock.call_at(2.0, lambda: ran.append(("c", clock.monotonic())))
    clock.advance(1.5)
    assert ran == [("a", 1.0)] and clock.monotonic() == 1.5
    clock.advance(10.0)
    assert ran == [("a", 1.0), ("b", 2.0), ("c", 2.0)] and clock.pending() == 0


def test_a_callback_may_schedule_another_that_falls_due_in_the_same_move() -> None:
    clock = FakeClock()
    ran: list[float] = []

    def tick() -> None:
        ran.append(clock.monotonic())
        if len(ran) < 3:
            clock.call_at(clock.monotonic() + 1.0, tick)

    clock.call_at(1.0, tick)
    clock.advance(5.0)
    assert ran == [1.0, 2.0, 3.0] and clock.monotonic() == 5.0


def test_wait_stops_when_a_callback_sets_the_event_or_at_the_timeout() -> None:
    clock = FakeClock()
    event = threading.Event()
    clock.call_at(3.0, event.set)
    assert clock.wait(event, 1.0) is False and clock.monotonic() == 1.0
    assert clock.wait(event, 10.0) is True and clock.monotonic() == 3.0  # not 11
    assert clock.wait(event, 10.0) is True and clock.monotonic() == 3.0  # already set: no time passes
