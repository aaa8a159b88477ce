"""A simulated queueing executor for the engine's lane tests (a unit-test stand-in for Ray's lanes).

Calls take simulated time on a ``FakeClock`` (``seconds`` from the call's ``seconds`` argument,
else 0.002). Each worker runs its calls one at a time, in order: ``submit(call)`` starts a new
worker; ``submit(call, follow=f)`` queues the call behind ``f``'s call on its worker. A call's
function runs when its worker starts it; its future resolves when its simulated time is up.
A worker reports a call's end before it starts the next, as a worker thread calling back into
the engine would. ``lose(task)`` kills the worker running ``task``: that call fails as
``worker_lost`` and every call queued behind it fails without running, as behind a dead Ray
actor. The executor records what ran where and when, and when each call joined a lane, so
tests check the engine against what happened, to the simulated instant.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from podium.errors import CANCELLED, WORKER_LOST, ErrorRecord, TaskFailedError
from podium.executors.kinds import record_of, run_call
from podium.model.cluster import Node
from podium.model.task import TaskCall
from podium.registry import REGISTRY
from podium.testing import FakeClock
from podium.types import AttemptFuture


@dataclass
class Ran:
    task_id: str
    worker: int
    start: float
    end: float
    followed: bool


@dataclass
class Joined:
    task_id: str
    ahead: str  #: the task of the call it was queued behind
    at: float  #: when it was submitted


@dataclass(eq=False)
class _Worker:
    wid: int
    queue: deque[tuple[TaskCall, AttemptFuture, bool]] = field(default_factory=deque)
    running: tuple[TaskCall, AttemptFuture, bool, float] | None = None
    lost: bool = False


class LaneExecutor:
    name = "lanes"

    def __init__(self, node: Node, clock: FakeClock, depth: int = 8, rtt: float = 0.001) -> None:
        self._node = node
        self._clock = clock
        self.depth, self.rtt = depth, rtt
        self.ran: list[Ran] = []
        self.joined: list[Joined] = []
        self._worker_of: dict[AttemptFuture, _Worker] = {}
        self._task_of: dict[AttemptFuture, str] = {}
        self._workers: list[_Worker] = []

    @property
    def followed(self) -> list[tuple[str, str]]:
        """(task, task of the call it was queued behind), in order."""
        return [(j.task_id, j.ahead) for j in self.joined]

    # the queueing executor protocol
    def nodes(self) -> list[Node]:
        return [self._node]

    def queue_limits(self, node: str) -> tuple[int, float]:
        return self.depth, self.rtt

    def submit(self, call: TaskCall, follow: AttemptFuture | None = None) -> AttemptFuture:
        fut = AttemptFuture()
        fut.set_running_or_notify_cancel()
        w = self._worker_of.get(follow) if follow is not None else None
        if w is None:
            w = _Worker(len(self._workers))
            self._workers.append(w)
        else:
            self.joined.append(Joined(call.task_id, self._task_of[follow], self._clock.monotonic()))  # type: ignore[index]
        self._worker_of[fut] = w
        self._task_of[fut] = call.task_id
        if w.lost:  # queued behind a call whose worker is already gone: it never runs
            self._fail(fut, WORKER_LOST)
        elif w.running is None:
            self._start(w, call, fut, follow is not None)
        else:
            w.queue.append((call, fut, follow is not None))
        return fut

    def kill(self, future: Any) -> None:
        w = self._worker_of.get(future)
        if w is None or future.done():
            return
        for item in list(w.queue):
            if item[1] is future:  # not started: drop it
                w.queue.remove(item)
                break
        self._fail(future, CANCELLED)

    def shutdown(self, wait: bool = True) -> None:
        pass

    # test controls
    def lose(self, task_id: str) -> None:
        """Kill the worker running ``task_id``."""
        for w in self._workers:
            if w.running is not None and w.running[0].task_id == task_id:
                call, fut, followed, start = w.running
                w.lost, w.running = True, None
                self.ran.append(Ran(call.task_id, w.wid, start, self._clock.monotonic(), followed))
                rest, w.queue = list(w.queue), deque()
                self._fail(fut, WORKER_LOST)
                for _call, f, _followed in rest:  # never ran
                    self._fail(f, WORKER_LOST)
                return
        raise AssertionError(f"{task_id} is not running")

    def queued_behind(self, task_id: str) -> int:
        for w in self._workers:
            if w.running is not None and w.running[0].task_id == task_id:
                return len(w.queue)
        return 0

    def _start(self, w: _Worker, call: TaskCall, fut: AttemptFuture, followed: bool) -> None:
        start = self._clock.monotonic()
        w.running = (call, fut, followed, start)
        try:
            value, error = run_call(call, REGISTRY), None
        except Exception as e:
            value, error = None, TaskFailedError(record_of(e))
        seconds = float(call.kwargs.get("seconds", 0.002))
        fut.podium_meta = {"seconds": seconds, "node": self._node.name}
        self._clock.call_at(start + seconds, lambda: self._end(w, fut, value, error))

    def _end(self, w: _Worker, fut: AttemptFuture, value: Any, error: BaseException | None) -> None:
        if w.running is None or w.running[1] is not fut:  # its worker was lost meanwhile
            return
        call, _, followed, start = w.running
        self.ran.append(Ran(call.task_id, w.wid, start, self._clock.monotonic(), followed))
        # report first (calls queued meanwhile go behind the ones waiting), then start the next
        if not fut.done():  # (killed meanwhile: the late outcome is dropped)
            if error is not None:
                fut.set_exception(error)
            else:
                fut.set_result(value)
        w.running = None
        if w.queue and not w.lost:
            self._start(w, *w.queue.popleft())

    def _fail(self, fut: AttemptFuture, kind: str) -> None:
        if fut.done():
            return
        if kind == WORKER_LOST:
            rec = ErrorRecord("WorkerLost", "worker died", retryable=True, kind=WORKER_LOST)
        else:
            rec = ErrorRecord("Cancelled", "cancelled", retryable=False, kind=CANCELLED)
        fut.set_exception(TaskFailedError(rec))
