"""Calling services robustly: a per-origin circuit breaker and ``Retry-After``.

A service that is down should not be hammered by every HTTP task that needs it, nor make each
of them wait for its own timeout. ``Breakers`` keeps one ``Breaker`` per origin (scheme, host,
port) in this process: after ``failures`` calls in a row failed (connection errors, timeouts,
5xx, 429) the breaker *opens* and calls fail at once, for ``cooldown`` seconds, with a message
naming the host and when it will be tried again; then one call is let through (*half-open*):
its success closes the breaker, its failure opens it again for twice as long (at most
``MAX_COOLDOWN``). The engine's retries (backoff with jitter, ``retries:`` of the task) do the
retrying; a failure says how long to wait (``retry_after``: the server's ``Retry-After``, or the
time left until the breaker lets a call through), and the engine waits at least that long.

Invariants: a breaker's state changes only under its lock; time comes from an injected clock
(monotonic seconds); the state is per process (each worker process learns on its own) and
never outlives it. This module imports nothing of ours.
"""

from __future__ import annotations

import email.utils
import threading
import time
from collections.abc import Callable

#: Longest an open breaker waits before letting a call through (doubling from ``cooldown``).
MAX_COOLDOWN = 300.0
#: Longest ``Retry-After`` honoured (a server asking for more is waited this long).
MAX_RETRY_AFTER = 3600.0
Origin = tuple[str, str, int]


class Breaker:
    """One origin's breaker (see the module docstring)."""

    def __init__(self, failures: int, cooldown: float, clock: Callable[[], float]) -> None:
        self.threshold = failures
        self.cooldown = cooldown
        self.clock = clock
        self.lock = threading.Lock()
        self.failed = 0  # calls in a row that failed
        self.opened_for = 0.0  # seconds of the current (or last) open period
        self.until = 0.0  # while open: when the next call may go through
        self.trial = False  # half-open: one call is on its way

    def admit(self) -> float | None:
        """None if a call may go now, else the seconds until one may."""
        with self.lock:
            if self.failed < self.threshold:
                return None
            now = self.clock()
            if now < self.until:
                return self.until - now
            if self.trial:  # half-open and the trial call has not answered yet
                return max(0.1, self.opened_for / 10)
            self.trial = True
            return None

    def succeeded(self) -> None:
        with self.lock:
            self.failed, self.opened_for, self.trial = 0, 0.0, False

    def failed_call(self) -> None:
        with self.lock:
            self.failed += 1
            if self.failed >= self.threshold:
                if self.trial or self.opened_for:  # the trial failed: wait twice as long
                    self.opened_for = min(MAX_COOLDOWN, max(self.cooldown, self.opened_for * 2))
                else:
                    self.opened_for = self.cooldown
                self.until = self.clock() + self.opened_for
                self.trial = False


class Breakers:
    """The breakers of one process, one per origin, made on first use."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.lock = threading.Lock()
        self.by_origin: dict[Origin, Breaker] = {}

    def of(self, origin: Origin, failures: int, cooldown: float) -> Breaker:
        with self.lock:
            b = self.by_origin.get(origin)
            if b is None:
                b = self.by_origin[origin] = Breaker(failures, cooldown, self.clock)
            b.threshold, b.cooldown = failures, cooldown  # the current run's policy
            return b


BREAKERS = Breakers()


def retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds a ``Retry-After`` header asks to wait (delta seconds or an HTTP date), at most
    ``MAX_RETRY_AFTER``; None if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(MAX_RETRY_AFTER, float(value))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None or when.tzinfo is None:
        return None
    wall = time.time() if now is None else now
    return min(MAX_RETRY_AFTER, max(0.0, when.timestamp() - wall))
