"""Which thread does what: Ray's own callback thread, and the completer thread behind it.

Ray runs done-callbacks on its own io thread, where a blocking Ray call (``ray.kill``,
``ray.cancel``, creating an actor, ``ray.nodes()``, placement groups) deadlocks. A result is
handled right there (one thread hand-off less per task) with the thread marked as Ray's
(``as_callback``); whatever may block on Ray checks ``in_callback()`` and, if so, is handed to
the completer thread (``defer``), which also handles every Ray failure.

Invariants: deferred work runs in the order it was deferred, one job at a time, on one daemon
thread; a job that raises is logged and never stops that thread; ``stop()`` ends it after the
jobs deferred before it.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger("podium.ray")

#: Work for the completer thread: a function and its arguments.
Job = tuple[Callable[..., None], tuple[Any, ...]]


class Completer:
    """The completer thread and the mark of Ray's callback thread (see the module docstring)."""

    def __init__(self) -> None:
        self._tls = threading.local()  # .ray_cb: this thread is running a Ray done-callback
        self._done: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name="podium-ray-done", daemon=True)
        self._thread.start()

    def in_callback(self) -> bool:
        """Whether this thread runs a Ray done-callback (where blocking Ray calls deadlock)."""
        return getattr(self._tls, "ray_cb", False)

    def defer(self, fn: Callable[..., None], *args: Any) -> None:
        """Run ``fn(*args)`` in the completer thread."""
        self._done.put((fn, args))

    def as_callback(self, fn: Callable[..., None], *args: Any) -> None:
        """Run ``fn`` marked as Ray's callback thread: whatever may block on Ray is deferred."""
        tls = self._tls
        outer = getattr(tls, "ray_cb", False)
        tls.ray_cb = True
        try:
            fn(*args)
        finally:
            tls.ray_cb = outer

    def best_effort(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Call ``fn``, a Ray call that may block, ignoring its failure; from Ray's own
        callback thread it runs in the completer thread."""
        if self.in_callback():
            self.defer(lambda: self.best_effort(fn, *args, **kwargs))
            return
        with contextlib.suppress(Exception):
            fn(*args, **kwargs)

    def stop(self) -> None:
        """End the completer thread once the jobs deferred so far have run."""
        self._done.put(None)

    def _loop(self) -> None:
        get = self._done.get
        while True:
            item = get()
            if item is None:
                return
            fn, args = item
            try:
                fn(*args)
            except Exception:  # never lose the completer thread
                log.exception("podium-ray: deferred %s failed", getattr(fn, "__name__", fn))
            del item, fn, args
