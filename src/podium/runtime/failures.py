"""Failures: what the loop does when an attempt fails, and how a run is stopped.

``Failures`` works on the run's ``RunState`` through the loop's ``Emit`` and ``Readiness``. A
failed attempt is retried (lost workers and out-of-memory first, as free retries within caps;
then the task's own retry policy with backoff on the run's clock), or fails for good: then its
dependents are skipped (failure handlers excepted) and, with fail-fast, the run is cancelled.
Cancelling kills running attempts and cancels what has not run. After a lost worker, an
executor that can tell which nodes live (``types.RefreshingExecutor``) is asked once and its
answer adopted; one that watches its nodes (``types.WatchingExecutor``) has a change adopted
between turns.

Invariants: only memory grows after an out-of-memory, and never past the largest node or the
configured cap; a task that keeps killing its worker ends quarantined with a message naming it
and the signal; failure handlers still run after a fail-fast stop; every error record is
redacted (``podium.secrets.redact_record``) before it is emitted: the orchestrator revealed
its run's secrets, so it knows them whichever process or node the record came from.
"""

from __future__ import annotations

import contextlib
import heapq
import random
from typing import Any, NamedTuple

from podium.errors import OOM, WORKER_LOST, ErrorRecord
from podium.model import events as ev
from podium.model import states as st
from podium.model.resources import Resources
from podium.model.task import TaskSpec
from podium.runtime.readiness import HANDLER_TRIGGERS, Readiness
from podium.runtime.state import Emit, RunState, Timer
from podium.runtime.view import base_name, is_item
from podium.secrets import redact_record
from podium.types import Clock, Executor, RefreshingExecutor, WatchingExecutor

#: Lost workers retried without consuming the task's own retries, at most this many times.
LOST_WORKER_CAP = 3


class OomPolicy(NamedTuple):
    """How an attempt that ran out of memory is retried."""

    growth: float = 2.0  #: the next attempt gets this many times the memory (1: no growth)
    retries: int = 3  #: at most this many such retries per task (they use none of its own)
    cap: int | None = None  #: never more memory than this (bytes), nor than the largest node


class Failures:
    """Retries, quarantine, fail-fast and cancellation (see the module docstring)."""

    def __init__(
        self,
        state: RunState,
        emit: Emit,
        readiness: Readiness,
        executor: Executor,
        clock: Clock,
        rng: random.Random,
        oom: OomPolicy = OomPolicy(),
    ) -> None:
        self.state = state
        self.emit = emit
        self.readiness = readiness
        self.executor = executor
        self.clock = clock
        self.rng = rng
        # the executor's live nodes, if it can tell; a number that moves when they change, if
        # it watches them itself (optional capabilities, checked once here)
        self.refresh = executor.refresh if isinstance(executor, RefreshingExecutor) else None
        self.epoch = executor.nodes_epoch if isinstance(executor, WatchingExecutor) else None
        self.seen_epoch = self.epoch() if self.epoch is not None else 0
        self.oom = oom

    def attempt_failed(
        self, tid: str, attempt: int, err: ErrorRecord, duration: float, usage: dict[str, Any] | None = None
    ) -> None:
        """An attempt ended in ``err`` after ``duration`` seconds (``usage``: what the executor
        measured, ``model.usage.usage_record``): retry it, grow its memory, or fail the task."""
        s = self.state
        err = redact_record(err)  # a task's message or traceback may quote a secret it was given
        data: dict[str, Any] = {"error": err.to_dict(), "duration": round(duration, 6)}
        if usage is not None:
            data["usage"] = usage
        if s.cancelling:
            self.emit(ev.TASK_CANCELLED, tid, attempt, data)
            return
        spec = s.specs[base_name(tid)]
        tv = s.view.tasks[tid]
        if err.kind == WORKER_LOST:
            self.sync_nodes()
        if err.kind == WORKER_LOST and tv.lost < LOST_WORKER_CAP:
            data["delay"] = 0.0
            data["free"] = WORKER_LOST
            self.emit(ev.TASK_RETRYING, tid, attempt, data)
            self._timer(tid, 0.0)
            return
        if err.kind == OOM and self.oom.growth > 1.0 and tv.ooms < self.oom.retries:
            grown = self._grow_memory(tid, spec)
            if grown is not None:
                data["delay"] = 0.0
                data["memory"] = grown
                data["free"] = OOM
                self.emit(ev.TASK_RETRYING, tid, attempt, data)
                self._timer(tid, 0.0)
                return
        policy = spec.retry
        if err.retryable and err.kind in policy.retry_on and tv.failures + 1 < policy.attempts:
            delay = policy.delay_before(tv.failures + 2, self.rng)
            asked = err.extra.get("retry_after") if err.extra else None
            if isinstance(asked, int | float) and asked > delay:  # Retry-After, an open breaker
                delay = min(float(asked), policy.max_delay)
            data["delay"] = round(delay, 6)
            self.emit(ev.TASK_RETRYING, tid, attempt, data)
            self._timer(tid, delay)
            return
        if err.kind == WORKER_LOST:
            err = ErrorRecord(
                err.type,
                f"task {tid!r} quarantined: its worker died {tv.lost + 1} times; last: {err.message}",
                err.traceback,
                False,
                err.kind,
                err.extra,
                err.frame,
            )
            data["error"] = err.to_dict()
        self.emit(ev.TASK_FAILED, tid, attempt, data)
        self._after_failure(tid, err)

    def watch_nodes(self) -> None:
        """Between turns: adopt the live nodes of an executor that watches them, if they changed."""
        if self.epoch is not None and self.epoch() != self.seen_epoch:
            self.seen_epoch = self.epoch()
            self.sync_nodes()

    def sync_nodes(self) -> None:
        """After a lost worker, adopt the executor's live nodes (an executor that can tell,
        like Ray's): dead nodes leave the placement, joined ones become usable."""
        if self.refresh is None:
            return
        live = {n.name: n for n in self.refresh()}
        if not live:
            return
        s = self.state
        for name in [n for n in s.nodes if n not in live]:
            s.gone.add(name)  # its free capacity is kept: see RunLoop._choose
        for name, node in live.items():
            if name not in s.nodes:
                s.gone.discard(name)
                cap = node.capacity.as_dict()
                for r in s.running.values():
                    for where, need in [(g.node, g.need) for g in r.grants] or [(r.node, r.need)]:
                        if where == name:
                            for k, v in need.items():
                                cap[k] = cap.get(k, 0.0) - v
                s.free[name] = cap
        s.set_nodes([s.nodes.get(name, node) for name, node in live.items()])
        s.placement = {t: n for t, n in s.placement.items() if n in s.nodes}
        s.dirty = True

    def _grow_memory(self, tid: str, spec: TaskSpec) -> int | None:
        """Raise the memory of ``tid``'s next attempt (only memory: it is what ran out), or
        None when it cannot grow (no limit declared, or no node has more)."""
        s = self.state
        current = s.resources(tid, spec)
        if not current.memory:
            return None
        ceiling = max(int(n.capacity.memory) for n in s.nodes.values())
        if self.oom.cap is not None:
            ceiling = min(ceiling, self.oom.cap)
        grown = min(int(current.memory * self.oom.growth), ceiling)
        if grown <= current.memory:
            return None
        res = current.scaled_memory(grown / current.memory)
        s.grow(tid, Resources(res.cpu, grown, res.gpu, res.custom, res.gpu_memory))
        return grown

    def fail_now(self, tid: str, err: ErrorRecord) -> None:
        """Fail a task that could not even start (bad inputs)."""
        err = redact_record(err)
        self.emit(ev.TASK_FAILED, tid, 0, {"error": err.to_dict()})
        self._after_failure(tid, err)

    def _after_failure(self, tid: str, err: ErrorRecord) -> None:
        s = self.state
        s.failed = True
        if is_item(tid):
            parent = base_name(tid)
            if s.view.tasks[parent].state == st.EXPANDED:
                msg = f"item {tid} failed: {err.message}"
                self.emit(
                    ev.TASK_FAILED,
                    parent,
                    0,
                    {"error": ErrorRecord(err.type, msg, "", False, err.kind, frame=err.frame).to_dict()},
                )
                self.readiness.propagate_block(parent)
        else:
            self.readiness.propagate_block(tid)
        if s.wf.fail_fast:
            self.cancel(f"fail-fast: task {tid!r} failed")

    def _timer(self, tid: str, delay: float) -> None:
        s = self.state
        s.counter += 1
        heapq.heappush(s.timers, Timer(self.clock.monotonic() + delay, s.counter, tid))

    def fire_timers(self) -> None:
        """Queue again every retry whose delay has passed."""
        s = self.state
        timers = s.timers
        now = self.clock.monotonic()
        while timers and timers[0].at <= now:
            tid = heapq.heappop(timers).task_id
            tv = s.view.tasks[tid]
            if tv.state == st.RETRYING:
                self.emit(ev.TASK_QUEUED, tid)
                self.readiness.push(tid, first=(tv.error or {}).get("kind") == WORKER_LOST)

    def cancel(self, reason: str) -> None:
        """Stop everything: kill running attempts, cancel what has not run."""
        s = self.state
        if s.cancelling:
            return
        s.cancelling = True
        s.reason = reason
        for fut in [*s.running, *s.queued]:
            with contextlib.suppress(Exception):
                self.executor.kill(fut)
        s.expanding.clear()  # items not queued yet stay pending: a resume queues them
        tasks = s.view.tasks
        handlers = []
        # map items that were ever queued are ready, due for a retry, submitted or running; the
        # others never had an event and stay pending (a resume queues them): not scanning a
        # million-item view keeps a cancel within a turn
        items = [
            *(r.task_id for r in s.ready),
            *(t.task_id for t in s.timers),
            *(sub.call.task_id for sub in s.to_submit),
            *(r.task_id for r in s.running.values()),
            *(w.task_id for w in s.queued.values()),
        ]
        for tid in dict.fromkeys([*s.wf.tasks, *items]):
            tv = tasks.get(tid)
            if tv is None or tv.state in (st.PENDING, st.QUEUED, st.RETRYING):
                spec = s.specs.get(tid)
                if spec is not None and spec.trigger in HANDLER_TRIGGERS and s.failed:
                    handlers.append(tid)  # failure handlers still run after a fail-fast stop
                    continue
                self.emit(ev.TASK_CANCELLED, tid, tv.attempt if tv else 0, {"reason": reason})
        s.ready[:] = [r for r in s.ready if r.task_id in handlers]
        heapq.heapify(s.ready)
        s.timers.clear()
        s.to_submit.clear()
        for h in handlers:  # every upstream of a handler has now finished one way or another
            tv = tasks.get(h)
            if (tv is None or tv.state == st.PENDING) and h in s.waiting:
                if any(self._ended_badly(d) for d in s.specs[h].deps):
                    s.upstream_failed.add(h)
                s.waiting[h] = 1
                self.readiness.upstream_done(h)
        s.handlers_only = bool(handlers)

    def stuck(self) -> None:
        """Cancel ready tasks that no node can ever hold (capacity is checked before a run
        starts, so this guards against a bug) and fail the run."""
        s = self.state
        for r in s.ready:
            reason = f"task {r.task_id!r} does not fit any node"
            self.emit(ev.TASK_CANCELLED, r.task_id, 0, {"reason": reason})
        s.ready.clear()
        s.failed = True

    def _ended_badly(self, task: str) -> bool:
        tv = self.state.view.tasks.get(task)
        if tv is None:
            return False
        return tv.state == st.FAILED or (tv.state == st.SKIPPED and "failed" in (tv.skip_reason or ""))
