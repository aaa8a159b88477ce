"""Lanes: ready tasks queued behind a running call, on its worker, to hide the dispatch round trip.

``Lanes`` works on the run's ``RunState`` (its ``Lane`` records, ``queued`` calls and ``free``
capacity), active only with an executor that queues (``types.QueueingExecutor``, checked once):
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

from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from podium.errors import TaskFailedError, worker_survived
from podium.model import events as ev
from podium.model.resources import fits
from podium.runtime.readiness import Readiness
from podium.runtime.state import Emit, Lane, Running, RunState, Waiting
from podium.types import outcome_of

#: Seconds ahead of a worker's expected free time that a task may be queued on it, at least ...
LOOKAHEAD = 0.020
#: ... and at most (whatever the round trip).
MAX_LOOKAHEAD = 0.250
#: Weight of a new sample in a function's moving average run time.
_ALPHA = 0.2
_INF = float("inf")
_NO_ROOM = (0, _INF, 0.0)
#: Per node: (depth, overdue before, horizon end), computed once per dispatch.
Limits = dict[str, tuple[int, float, float]]


class Lanes:
    """Opens, fills, advances and closes lanes (see the module docstring)."""

    def __init__(
        self,
        state: RunState,
        emit: Emit,
        readiness: Readiness,
        monotonic: Callable[[], float],
        queue_limits: Callable[[str], tuple[int, float]],
    ) -> None:
        self.state = state
        self.emit = emit
        self.readiness = readiness
        self.monotonic = monotonic
        self.queue_limits = queue_limits

    def rooms(self) -> tuple[int, Limits]:
        """How many tasks may still join lanes, and the per-node limits; once per dispatch."""
        now = self.monotonic()
        per: Limits = {}
        for n in self.state.free:
            depth, rtt = self.queue_limits(n)
            span = min(max(2.0 * rtt, LOOKAHEAD), MAX_LOOKAHEAD)
            per[n] = (depth, now - span, now + span)
        rooms = 0
        for lane in self.state.open_lanes:
            rooms += room(lane, per)
        return rooms, per

    def expected(self, name: str) -> float | None:
        """Expected run time of task ``name``: its estimate, else what its function took in
        this run so far (None if neither is known)."""
        s = self.state
        est = s.estimates.get(name)
        if est is None:
            est = s.run_times.get(s.specs[name].call)
        return est

    def ran_for(self, name: str, seconds: float) -> None:
        """A call of task ``name`` ran ``seconds`` on its worker (as the executor reports)."""
        s = self.state
        fn = s.specs[name].call
        old = s.run_times.get(fn)
        s.run_times[fn] = seconds if old is None else old + _ALPHA * (seconds - old)

    def lane_for(self, name: str, need: dict[str, float], per: Limits) -> Lane | None:
        """The lane a ready task may join: on its planned node (if planned), with room,
        holding at least its need, expected to drain within the horizon and not overdue; the
        first to drain."""
        s = self.state
        planned = s.placement.get(name) if s.placement else None
        best: Lane | None = None
        best_at = 0.0
        for lane in s.open_lanes:
            if (planned is not None and lane.node != planned) or not room(lane, per):
                continue
            if fits(need, lane.need):
                at = lane.end + lane.backlog
                if best is None or at < best_at:
                    best, best_at = lane, at
        return best

    def open(self, node: str, need: dict[str, float], name: str) -> Lane:
        """A call of ``name`` starts on ``node`` holding ``need``: it opens a lane."""
        est = self.expected(name)
        lane = Lane(node, need, _INF if est is None else self.monotonic() + est)
        self.state.open_lanes.add(lane)
        return lane

    @staticmethod
    def join(lane: Lane, est: float) -> None:
        """Reserve a place in ``lane`` for a call expected to run ``est`` seconds."""
        lane.backlog += est
        lane.waiting.append(None)  # the future takes this place at submit (``submitted``)

    def submitted(self, lane: Lane, fut: Future[Any], entry: Waiting) -> None:
        """The call that reserved a place in ``lane`` was submitted as ``fut``."""
        waiting = lane.waiting
        for i, f in enumerate(waiting):  # the place reserved at dispatch
            if f is None:
                waiting[i] = fut
                break
        else:
            waiting.append(fut)
        lane.tail = fut
        s = self.state
        s.lane_of[fut] = lane
        s.queued[fut] = entry

    def continues(self, fut: Future[Any], lane: Lane) -> bool:
        """Whether the lane's next waiting call runs after ``fut``'s (its worker lives on):
        after a success or the task's own error; not after a lost, killed or timed-out one."""
        if not lane.waiting or self.state.cancelling:
            return False
        return worker_survived(outcome_of(fut)[1])

    def close(self, lane: Lane) -> None:
        """Release the lane's hold (its waiting calls, if any, fail without running)."""
        s = self.state
        s.open_lanes.discard(lane)
        cap = s.free.get(lane.node)
        if cap is not None:
            for k, v in lane.need.items():
                cap[k] += v
        s.dirty = True

    def advance(self, lane: Lane) -> None:
        """The lane's running call completed: its first waiting call starts and takes over the hold."""
        s = self.state
        fut = lane.waiting.popleft()
        assert fut is not None  # places are filled at submit, before any completion
        w = s.queued.pop(fut)
        lane.backlog = max(0.0, lane.backlog - w.expected)
        now = self.monotonic()
        lane.end = now + w.expected
        self.emit(ev.TASK_STARTED, w.task_id, w.attempt, s.start_data(lane.node, w.need))
        s.running[fut] = Running(w.task_id, w.attempt, lane.node, lane.need, now)

    def queued_done(self, fut: Future[Any]) -> bool:
        """A waiting call resolved before it started: normally because its worker was lost or
        it was killed (it never ran: back to the ready queue, no attempt used). True if it ran
        anyway (an executor that did not keep its order): it is then started and running, for
        the loop to complete."""
        s = self.state
        w = s.queued.pop(fut)
        lane = s.lane_of.pop(fut, None)
        if lane is not None:
            try:
                lane.waiting.remove(fut)
                lane.backlog = max(0.0, lane.backlog - w.expected)
            except ValueError:
                pass
        if s.cancelling:
            return False  # cancel() has cancelled the task (it was queued)
        exc = outcome_of(fut)[1]
        if isinstance(exc, TaskFailedError) and not worker_survived(exc):  # it never ran
            self.readiness.push(w.task_id, first=True)
            return False
        node = lane.node if lane is not None else ""
        self.emit(ev.TASK_STARTED, w.task_id, w.attempt, s.start_data(node, w.need))
        s.running[fut] = Running(w.task_id, w.attempt, node, {}, self.monotonic())
        return True


def room(lane: Lane, per: Limits) -> int:
    """How many more calls may join ``lane`` now (0 if it is overdue or drains too late)."""
    depth, overdue, horizon = per.get(lane.node, _NO_ROOM)
    if overdue <= lane.end and lane.end + lane.backlog <= horizon:
        return max(0, depth - len(lane.waiting))
    return 0
