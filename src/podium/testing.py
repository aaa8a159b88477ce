"""Helpers for testing code that runs on Podium: ``FakeClock``, a clock that moves only when told.

``FakeClock`` implements ``podium.types.Clock``. Its time starts at ``start`` (monotonic) and
``epoch + start`` (wall) and moves only through ``advance``/``set``, or when something sleeps
or waits on it: ``sleep(s)`` advances by ``s`` and ``wait(event, timeout)`` advances until the
event is set or the timeout has passed, so a run waiting for a retry's backoff takes no real
time. ``call_at(when, fn)`` schedules ``fn`` for a moment on this clock; advancing runs what
falls due, in time order, at its time (``podium.executors.inline.InlineExecutor`` uses it to
finish simulated calls). Meant for runs whose work happens on the waiting thread (the inline
executor): with an executor that works on other threads, ``wait`` returns at once instead of
blocking.

Invariants: time never goes back; scheduled callbacks run once, in order of their time (then
of scheduling), outside the clock's lock, on the thread that moves the clock.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections.abc import Callable

from podium.errors import InvalidValueError

#: Wall time at monotonic 0 unless given (2023-11-14 22:13:20 UTC: any fixed moment will do).
EPOCH = 1_700_000_000.0


class FakeClock:
    """A ``Clock`` whose time moves only when told to (see the module docstring)."""

    def __init__(self, start: float = 0.0, epoch: float = EPOCH) -> None:
        self._now = float(start)
        self._epoch = float(epoch)
        self._lock = threading.Lock()
        self._alarms: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()

    def time(self) -> float:
        return self._epoch + self._now

    def monotonic(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``, running the callbacks that fall due on the way."""
        if seconds < 0:
            raise InvalidValueError(f"a clock cannot go back ({seconds:g}s)")
        self._run_until(self._now + seconds)

    def set(self, monotonic: float) -> None:
        """Move time forward to ``monotonic`` (never back)."""
        self.advance(monotonic - self._now)

    def sleep(self, seconds: float) -> None:
        self.advance(max(0.0, seconds))

    def wait(self, event: threading.Event, timeout: float) -> bool:
        """Advance until ``event`` is set (by a callback that fell due) or ``timeout`` passed."""
        if not event.is_set():
            self._run_until(self._now + max(0.0, timeout), event)
        return event.is_set()

    def call_at(self, when: float, fn: Callable[[], None]) -> None:
        """Run ``fn`` once time reaches ``when`` (at once on the next move if it already has)."""
        with self._lock:
            heapq.heappush(self._alarms, (when, next(self._seq), fn))

    def pending(self) -> int:
        """How many scheduled callbacks have not run yet."""
        with self._lock:
            return len(self._alarms)

    def _run_until(self, target: float, event: threading.Event | None = None) -> None:
        while True:
            with self._lock:
                if not self._alarms or self._alarms[0][0] > target:
                    self._now = max(self._now, target)
                    return
                when, _, fn = heapq.heappop(self._alarms)
                self._now = max(self._now, when)
            fn()
            if event is not None and event.is_set():
                return


__all__ = ["EPOCH", "FakeClock"]
