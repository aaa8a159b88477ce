"""Lanes: ready tasks queued behind a running call, on its worker, to hide the dispatch round trip.

A mixin of ``RunLoop``, active only with an executor that queues (``types.QueueingExecutor``):
``queue_limits(node) -> (depth, round_trip)`` and ``submit(call, follow=future)`` (the call
runs on the worker of ``future``'s call, right after it, and its Future resolves after that
one's; if that worker is lost, the call fails as ``worker_lost`` without running).

A *lane* opens when a call starts within a node's free capacity and holds that call's
resources until it drains. When no node has room, a ready task may join a lane instead: one
whose hold covers the task's need, on the task's planned node if it has one, with fewer than
``depth`` tasks waiting, expected to drain within the *horizon* (two round trips, within
``LOOKAHEAD`` and ``MAX_LOOKAHEAD``), and of those the one expected to drain first: list
scheduling onto the worker predicted to be free first, decided at most a horizon ahead. A
lane whose running call is overdue by more than the horizon takes nobody (it may be stuck).
Expected run times are the task's estimate (declared or measured in earlier runs), else the
moving average of what its function took in this run (as the worker reports it); a task with
neither joins no lane and nothing joins behind it. The task's call is submitted at once, so it
is already at the worker when the call before it ends; but it is only *started*
(``TaskStarted``, attempt counted) once the call before it has completed, when it takes over
the lane's hold. A lane whose running call was lost, killed or timed out closes: its hold is
released, and its waiting tasks, which fail without running, go back to the ready queue
without using an attempt.

Invariants: in the log, a lane's started calls never overlap, and each holds at most the
lane's resources, so the running tasks' resources never exceed any node's capacity; a lane's
hold is released exactly once; a waiting task is never both waiting and ready.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from podium.errors import TaskFailedError, worker_survived
from podium.model import events as ev

if TYPE_CHECKING:
    from podium.runtime.loop import RunLoop

    _Base = RunLoop
else:
    _Base = object

_EPS = 1e-9
#: Seconds ahead of a worker's expected free time that a task may be queued on it, at least ...
LOOKAHEAD = 0.020
#: ... and at most (whatever the round trip).
MAX_LOOKAHEAD = 0.250
#: Weight of a new sample in a function's moving average run time.
_ALPHA = 0.2
_INF = float("inf")
_NO_ROOM = (0, _INF, 0.0)


class Lane:
    """A running call's hold on a node and the tasks waiting behind it."""

    __slots__ = ("backlog", "end", "need", "node", "tail", "waiting")

    def __init__(self, node: str, need: dict[str, float], end: float) -> None:
        self.node = node
        self.need = need  # the hold: resources of the call that opened the lane
        self.end = end  # when the running call is expected to end (monotonic; inf: unknown)
        self.backlog = 0.0  # expected seconds of the waiting tasks
        self.tail: Future[Any] | None = None  # the last call submitted to the lane
        self.waiting: deque[Future[Any]] = deque()


class Lanes(_Base):
    def _init_lanes(self, estimates: dict[str, float] | None) -> None:
        self.queue_limits: Callable[[str], tuple[int, float]] | None = getattr(
            self.executor, "queue_limits", None
        )
        self.estimates = estimates or {}  # task name -> declared or earlier measured seconds
        self.run_times: dict[str, float] = {}  # function -> moving average seconds, this run
        self.lane_of: dict[Future[Any], Lane] = {}  # running or waiting call -> its lane
        # waiting call -> (task id, attempt, its need, expected seconds)
        self.queued: dict[Future[Any], tuple[str, int, dict[str, float], float]] = {}
        self.open_lanes: set[Lane] = set()

    def _lane_rooms(self) -> tuple[int, dict[str, tuple[int, float, float]]]:
        """How many tasks may still join lanes, and per node (depth, overdue before, horizon
        end); once per dispatch."""
        limits = self.queue_limits
        if limits is None:
            return 0, {}
        now = self._monotonic()
        per: dict[str, tuple[int, float, float]] = {}
        for n in self.free:
            depth, rtt = limits(n)
            span = min(max(2.0 * rtt, LOOKAHEAD), MAX_LOOKAHEAD)
            per[n] = (depth, now - span, now + span)
        rooms = 0
        for lane in self.open_lanes:
            rooms += self._room(lane, per)
        return rooms, per

    @staticmethod
    def _room(lane: Lane, per: dict[str, tuple[int, float, float]]) -> int:
        depth, overdue, horizon = per.get(lane.node, _NO_ROOM)
        if overdue <= lane.end and lane.end + lane.backlog <= horizon:
            return max(0, depth - len(lane.waiting))
        return 0

    def expected(self, name: str) -> float | None:
        """Expected run time of task ``name``: its estimate, else what its function took in
        this run so far (None if neither is known)."""
        est = self.estimates.get(name)
        if est is None:
            est = self.run_times.get(self.specs[name].call)
        return est

    def _ran_for(self, name: str, seconds: float) -> None:
        fn = self.specs[name].call
        old = self.run_times.get(fn)
        self.run_times[fn] = seconds if old is None else old + _ALPHA * (seconds - old)

    def _lane_for(
        self, name: str, need: dict[str, float], per: dict[str, tuple[int, float, float]]
    ) -> Lane | None:
        """The lane a ready task may join: on its planned node (if planned), with room,
        holding at least its need, expected to drain within the horizon and not overdue; the
        first to drain."""
        planned = self.placement.get(name) if self.placement else None
        best: Lane | None = None
        best_at = 0.0
        room = self._room
        for lane in self.open_lanes:
            if (planned is not None and lane.node != planned) or not room(lane, per):
                continue
            hold = lane.need
            for k, v in need.items():
                if hold.get(k, 0.0) + _EPS < v:
                    break
            else:
                at = lane.end + lane.backlog
                if best is None or at < best_at:
                    best, best_at = lane, at
        return best

    def _open_lane(self, node: str, need: dict[str, float], name: str) -> Lane:
        est = self.expected(name)
        lane = Lane(node, need, _INF if est is None else self._monotonic() + est)
        self.open_lanes.add(lane)
        return lane

    def _join_lane(self, lane: Lane, est: float) -> None:
        lane.backlog += est
        # the future is added at submit (``_submitted_waiting``); count the place now
        lane.waiting.append(None)  # type: ignore[arg-type]

    def _submitted_waiting(
        self, lane: Lane, fut: Future[Any], entry: tuple[str, int, dict[str, float], float]
    ) -> None:
        waiting = lane.waiting
        for i, f in enumerate(waiting):  # the place reserved at dispatch
            if f is None:
                waiting[i] = fut
                break
        else:
            waiting.append(fut)
        lane.tail = fut
        self.lane_of[fut] = lane
        self.queued[fut] = entry

    def _lane_continues(self, fut: Future[Any], lane: Lane) -> bool:
        """Whether the lane's next waiting call runs after ``fut``'s (its worker lives on):
        after a success or the task's own error; not after a lost, killed or timed-out one."""
        if not lane.waiting or self.cancelling:
            return False
        return worker_survived(fut._exception)  # a done-callback runs once the future is final

    def _close_lane(self, lane: Lane) -> None:
        """Release the lane's hold (its waiting calls, if any, fail without running)."""
        self.open_lanes.discard(lane)
        cap = self.free.get(lane.node)
        if cap is not None:
            for k, v in lane.need.items():
                cap[k] += v
        self.dirty = True

    def _advance(self, lane: Lane) -> None:
        """The lane's running call completed: its first waiting call starts and takes over the hold."""
        fut = lane.waiting.popleft()
        tid, attempt, need, est = self.queued.pop(fut)
        lane.backlog = max(0.0, lane.backlog - est)
        now = self._monotonic()
        lane.end = now + est
        self.emit(ev.TASK_STARTED, tid, attempt, self._start_data(lane.node, need))
        self.running[fut] = (tid, attempt, lane.node, lane.need, now)

    def _queued_done(self, fut: Future[Any]) -> None:
        """A waiting call resolved before it started: normally because its worker was lost or
        it was killed (it never ran: back to the ready queue, no attempt used)."""
        tid, attempt, need, est = self.queued.pop(fut)
        lane = self.lane_of.pop(fut, None)
        if lane is not None:
            try:
                lane.waiting.remove(fut)
                lane.backlog = max(0.0, lane.backlog - est)
            except ValueError:
                pass
        if self.cancelling:
            return  # cancel() has cancelled the task (it was queued)
        exc = fut._exception if fut._state == "FINISHED" else None
        if isinstance(exc, TaskFailedError) and not worker_survived(exc):  # it never ran
            self._push(tid)
            return
        # it ran (an executor that did not keep its order): account for it as an attempt
        node = lane.node if lane is not None else ""
        self.emit(ev.TASK_STARTED, tid, attempt, self._start_data(node, need))
        self.running[fut] = (tid, attempt, node, {}, self._monotonic())
        self.complete(fut)
