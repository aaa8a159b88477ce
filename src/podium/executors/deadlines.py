"""Deadlines: one daemon thread that calls back when an item's deadline passes.

Shared by the executors that enforce timeouts without a thread per call. Invariants: the
thread starts with the first ``Deadlines`` object and stops with ``stop()``; callbacks run on
that thread, outside the lock, at most once per scheduled item; items already done (by the
``done`` predicate) are dropped from the heap now and then, so a long run with many short
calls does not grow it without bound.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Deadlines(Generic[T]):
    #: Drop entries of finished items from the heap after this many schedules.
    COMPACT_EVERY = 1024

    def __init__(
        self, name: str, expire: Callable[[T], None], done: Callable[[T], bool] | None = None
    ) -> None:
        self._expire = expire
        self._done = done
        self._heap: list[tuple[float, int, T]] = []
        self._cond = threading.Condition()
        self._seq = itertools.count()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def schedule(self, deadline: float, item: T) -> None:
        """Call ``expire(item)`` at ``deadline`` (a ``time.monotonic()`` value)."""
        with self._cond:
            n = next(self._seq)
            if self._done is not None and n % self.COMPACT_EVERY == self.COMPACT_EVERY - 1:
                done = self._done
                self._heap = [e for e in self._heap if not done(e[2])]
                heapq.heapify(self._heap)
            heapq.heappush(self._heap, (deadline, n, item))
            if self._heap[0][1] == n:
                self._cond.notify()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._heap.clear()
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopped:
                    now = time.monotonic()
                    if self._heap and self._heap[0][0] <= now:
                        break
                    self._cond.wait(self._heap[0][0] - now if self._heap else None)
                if self._stopped:
                    return
                _, _, item = heapq.heappop(self._heap)
            self._expire(item)
