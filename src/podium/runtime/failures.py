"""Failures: what the loop does when an attempt fails, and how a run is stopped.

A mixin of ``RunLoop``. A failed attempt is retried (lost workers and out-of-memory first, as
free retries within caps; then the task's own retry policy with backoff), or fails for good:
then its dependents are skipped (failure handlers excepted) and, with fail-fast, the run is
cancelled. Cancelling kills running attempts and cancels what has not run.

Invariants: only memory grows after an out-of-memory, and never past the largest node or the
configured cap; a task that keeps killing its worker ends quarantined with a message naming it
and the signal; failure handlers still run after a fail-fast stop.
"""

from __future__ import annotations

import contextlib
import heapq
from typing import TYPE_CHECKING

from podium.errors import OOM, WORKER_LOST, ErrorRecord
from podium.model import events as ev
from podium.model import states as st
from podium.model.resources import Resources
from podium.model.task import TaskSpec
from podium.runtime.readiness import HANDLER_TRIGGERS
from podium.runtime.view import base_name, is_item

if TYPE_CHECKING:
    from podium.runtime.loop import RunLoop

    _Base = RunLoop
else:
    _Base = object

#: Lost workers retried without consuming the task's own retries, at most this many times.
LOST_WORKER_CAP = 3


class Failures(_Base):
    def _attempt_failed(self, tid: str, attempt: int, err: ErrorRecord, duration: float) -> None:
        if self.cancelling:
            self.emit(ev.TASK_CANCELLED, tid, attempt, {"error": err.to_dict(), "duration": duration})
            return
        spec = self.wf.tasks[base_name(tid)]
        tv = self.view.tasks[tid]
        data = {"error": err.to_dict(), "duration": round(duration, 6)}
        if err.kind == WORKER_LOST:
            self._sync_nodes()
        if err.kind == WORKER_LOST and tv.lost < LOST_WORKER_CAP:
            data["delay"] = 0.0
            data["free"] = WORKER_LOST
            self.emit(ev.TASK_RETRYING, tid, attempt, data)
            self._timer(tid, 0.0)
            return
        if err.kind == OOM and self.oom_growth > 1.0 and tv.ooms < self.oom_retries:
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
            )
            data["error"] = err.to_dict()
        self.emit(ev.TASK_FAILED, tid, attempt, data)
        self._after_failure(tid, err)

    def _sync_nodes(self) -> None:
        """After a lost worker, adopt the executor's live nodes (an executor that can tell,
        like Ray's): dead nodes leave the placement, joined ones become usable."""
        refresh = getattr(self.executor, "refresh", None)
        if refresh is None:
            return
        live = {n.name: n for n in refresh()}
        if not live:
            return
        for name in [n for n in self.nodes if n not in live]:
            del self.nodes[name]
            self.gone.add(name)  # its free capacity is kept: see RunLoop._choose
        for name, node in live.items():
            if name not in self.nodes:
                self.gone.discard(name)
                self.nodes[name] = node
                cap = node.capacity.as_dict()
                for _tid, _att, on, need, _t0 in self.running.values():
                    if on == name:
                        for k, v in need.items():
                            cap[k] = cap.get(k, 0.0) - v
                self.free[name] = cap
        self.node_names = [n.name for n in sorted(self.nodes.values(), key=lambda n: (-n.speed, n.name))]
        self.placement = {t: n for t, n in self.placement.items() if n in self.nodes}
        self.dirty = True

    def _grow_memory(self, tid: str, spec: TaskSpec) -> int | None:
        """Raise the memory of ``tid``'s next attempt (only memory: it is what ran out), or
        None when it cannot grow (no limit declared, or no node has more)."""
        current = self._resources(tid, spec)
        if not current.memory:
            return None
        ceiling = max(int(n.capacity.memory) for n in self.nodes.values())
        if self.oom_cap is not None:
            ceiling = min(ceiling, self.oom_cap)
        grown = min(int(current.memory * self.oom_growth), ceiling)
        if grown <= current.memory:
            return None
        res = current.scaled_memory(grown / current.memory)
        res = Resources(res.cpu, grown, res.gpu, res.custom)
        self.boost_res[tid] = res
        self.boost[tid] = res.as_dict()
        return grown

    def _fail_now(self, tid: str, err: ErrorRecord) -> None:
        """Fail a task that could not even start (bad inputs)."""
        self.emit(ev.TASK_FAILED, tid, 0, {"error": err.to_dict()})
        self._after_failure(tid, err)

    def _after_failure(self, tid: str, err: ErrorRecord) -> None:
        self.failed = True
        if is_item(tid):
            parent = base_name(tid)
            if self.view.tasks[parent].state == st.EXPANDED:
                msg = f"item {tid} failed: {err.message}"
                self.emit(
                    ev.TASK_FAILED,
                    parent,
                    0,
                    {"error": ErrorRecord(err.type, msg, "", False, err.kind).to_dict()},
                )
                self._propagate_block(parent)
        else:
            self._propagate_block(tid)
        if self.wf.fail_fast:
            self.cancel(f"fail-fast: task {tid!r} failed")

    def _timer(self, tid: str, delay: float) -> None:
        self.counter += 1
        heapq.heappush(self.timers, (self.clock.monotonic() + delay, self.counter, tid))

    def fire_timers(self) -> None:
        now = self.clock.monotonic()
        while self.timers and self.timers[0][0] <= now:
            _, _, tid = heapq.heappop(self.timers)
            if self.view.tasks[tid].state == st.RETRYING:
                self.emit(ev.TASK_QUEUED, tid)
                self._push(tid)

    def cancel(self, reason: str) -> None:
        """Stop everything: kill running attempts, cancel what has not run."""
        if self.cancelling:
            return
        self.cancelling = True
        self.reason = reason
        for fut in [*self.running, *self.queued]:
            with contextlib.suppress(Exception):
                self.executor.kill(fut)
        ids = list(dict.fromkeys([*self.wf.tasks, *self.view.tasks]))
        handlers = []
        for tid in ids:
            tv = self.view.tasks.get(tid)
            if tv is None or tv.state in (st.PENDING, st.QUEUED, st.RETRYING):
                spec = self.specs.get(tid)
                if spec is not None and spec.trigger in HANDLER_TRIGGERS and self.failed:
                    handlers.append(tid)  # failure handlers still run after a fail-fast stop
                    continue
                self.emit(ev.TASK_CANCELLED, tid, tv.attempt if tv else 0, {"reason": reason})
        self.ready = [item for item in self.ready if item[2] in handlers]
        self.timers.clear()
        self.to_submit.clear()
        for h in handlers:  # every upstream of a handler has now finished one way or another
            tv = self.view.tasks.get(h)
            if (tv is None or tv.state == st.PENDING) and h in self.waiting:
                if any(self._ended_badly(d) for d in self.specs[h].deps):
                    self.upstream_failed.add(h)
                self.waiting[h] = 1
                self._upstream_done(h)
        self.handlers_only = bool(handlers)

    def _ended_badly(self, task: str) -> bool:
        tv = self.view.tasks.get(task)
        if tv is None:
            return False
        return tv.state == st.FAILED or (tv.state == st.SKIPPED and "failed" in (tv.skip_reason or ""))
