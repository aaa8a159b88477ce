"""A small queueing executor for the engine's lane tests (a unit-test stand-in for Ray's lanes).

Each worker is a thread running its calls one at a time, in order. ``submit(call)`` starts a
new worker; ``submit(call, follow=f)`` queues the call behind ``f``'s call on its worker. A
worker marked lost (``lose``) reports its running call as ``worker_lost`` and fails every call
queued behind it without running them, as a dead Ray actor does. The executor records what ran
where, so tests check the engine against what really happened.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from podium.errors import CANCELLED, WORKER_LOST, ErrorRecord, TaskFailedError
from podium.executors.kinds import record_of, run_call
from podium.model.cluster import Node
from podium.model.task import TaskCall
from podium.registry import REGISTRY


@dataclass
class Ran:
    task_id: str
    worker: int
    start: float
    end: float
    followed: bool


@dataclass(eq=False)
class _Worker:
    wid: int
    calls: deque = field(default_factory=deque)  # (call, future, followed)
    cond: threading.Condition = field(default_factory=threading.Condition)
    lost: bool = False
    running: str | None = None


class LaneExecutor:
    name = "lanes"

    def __init__(self, node: Node, depth: int = 8, rtt: float = 0.001) -> None:
        self._node = node
        self.depth, self.rtt = depth, rtt
        self.ran: list[Ran] = []
        self.followed: list[tuple[str, str]] = []  # (task, task of the call it follows)
        self._worker_of: dict[Future[Any], _Worker] = {}
        self._task_of: dict[Future[Any], str] = {}
        self._workers: list[_Worker] = []
        self._lock = threading.Lock()
        self._closed = False

    # the queueing executor protocol
    def nodes(self) -> list[Node]:
        return [self._node]

    def queue_limits(self, node: str) -> tuple[int, float]:
        return self.depth, self.rtt

    def submit(self, call: TaskCall, follow: Future[Any] | None = None) -> Future[Any]:
        fut: Future[Any] = Future()
        with self._lock:
            w = self._worker_of.get(follow) if follow is not None else None
            if w is None:
                w = _Worker(len(self._workers))
                self._workers.append(w)
                threading.Thread(target=self._loop, args=(w,), daemon=True).start()
            else:
                self.followed.append((call.task_id, self._task_of[follow]))
            self._worker_of[fut] = w
            self._task_of[fut] = call.task_id
        with w.cond:
            w.calls.append((call, fut, follow is not None))
            w.cond.notify()
        return fut

    def kill(self, future: Future[Any]) -> None:
        w = self._worker_of.get(future)
        if w is None or future.done():
            return
        with w.cond:
            for item in list(w.calls):
                if item[1] is future:  # not started: drop it
                    w.calls.remove(item)
                    break
        err = ErrorRecord("Cancelled", "cancelled", kind=CANCELLED)
        if not future.done():
            future.set_exception(TaskFailedError(err))

    def shutdown(self, wait: bool = True) -> None:
        self._closed = True
        for w in self._workers:
            with w.cond:
                w.cond.notify()

    # test controls
    def lose(self, task_id: str) -> None:
        """Mark the worker running ``task_id`` lost."""
        for w in self._workers:
            if w.running == task_id:
                w.lost = True
                return
        raise AssertionError(f"{task_id} is not running")

    def queued_behind(self, task_id: str) -> int:
        for w in self._workers:
            if w.running == task_id:
                return len(w.calls)
        return 0

    def _loop(self, w: _Worker) -> None:
        while not self._closed:
            with w.cond:
                while not w.calls and not self._closed:
                    w.cond.wait(0.1)
                if self._closed:
                    return
                call, fut, followed = w.calls.popleft()
                w.running = call.task_id
            if fut.done():  # killed before it started
                continue
            t0 = time.monotonic()
            try:
                value, error = run_call(call, REGISTRY), None
            except BaseException as e:
                value, error = None, TaskFailedError(record_of(e))
            t1 = time.monotonic()
            self.ran.append(Ran(call.task_id, w.wid, t0, t1, followed))
            fut.podium_meta = {"seconds": t1 - t0, "node": self._node.name}  # type: ignore[attr-defined]
            if w.lost:
                rec = ErrorRecord("WorkerLost", "worker died", retryable=True, kind=WORKER_LOST)
                lost = TaskFailedError(rec)
                self._set(fut, None, lost)
                with w.cond:
                    rest, w.calls = list(w.calls), deque()
                for _call, f, _followed in rest:  # never ran
                    self._set(f, None, lost)
                w.running = None
                return
            self._set(fut, value, error)
            w.running = None

    @staticmethod
    def _set(fut: Future[Any], value: Any, error: BaseException | None) -> None:
        if fut.done():
            return
        if error is not None:
            fut.set_exception(error)
        else:
            fut.set_result(value)
