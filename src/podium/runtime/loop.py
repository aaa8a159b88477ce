"""The one loop that runs a workflow: fold, decide, persist, submit, react to completions.

A *turn* of the loop:
1. take every completion delivered so far and turn each into events (success, retry, failure,
   skips, newly ready tasks);
2. dispatch: pop ready tasks by priority (critical path by default) and start those whose
   resources fit a node's free capacity (looking past ones that do not fit: backfill);
3. persist: append every event produced since the last turn in ONE store transaction;
4. act: only then submit the started calls to the executor.

Turns are driven by completions (flat combining): a done-callback queues its future and runs
the turn unless another thread is in one; nothing polls. The calling thread waits on the clock
for timers, cancels, drift, service checks and Ctrl-C. State: one ``RunState``; collaborators
get it and ``emit``: ``Readiness``, ``Failures``, ``Lanes``, ``PlanFollower``, ``Services``,
``Grants`` (GPUs, gangs). Executor capabilities are checked once, at start.

Invariants: turns never overlap (one lock); an event is applied to the view when emitted and
committed before anything is acted on (a task's success is durable before its dependents
start); the running tasks' resources never exceed any node's capacity; a task whose result
was committed never runs again.
"""

from __future__ import annotations

import contextlib
import heapq
import random
import threading
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import CancelledError, Future
from typing import Any

from podium.errors import CANCELLED, Cancelled, ErrorRecord, StoreError, TaskFailedError
from podium.model import events as ev
from podium.model import states as st
from podium.model.resources import EPS, fits
from podium.model.task import TaskCall
from podium.registry import REGISTRY, Registry
from podium.runtime import codec
from podium.runtime.failures import Failures, OomPolicy
from podium.runtime.grants import Grants, Held
from podium.runtime.lanes import Lanes, room
from podium.runtime.lineage import committed
from podium.runtime.owner import owner_id
from podium.runtime.planning import Placement, PlanFollower, Replanner
from podium.runtime.readiness import EXPAND_CHUNK, Readiness
from podium.runtime.recorder import Hook, Recorder
from podium.runtime.services import services_for
from podium.runtime.state import Lane, Running, RunState, Submission, Waiting
from podium.runtime.view import base_name
from podium.types import AttemptFuture, Clock, Executor, QueueingExecutor, Store, meta_of, outcome_of

#: How many ready tasks that do not fit are looked past to find one that does (backfill).
BACKFILL_SCAN = 32
#: Seconds between checks for a cancel request made from another process.
CANCEL_POLL = 0.5
#: Seconds between drift checks of running tasks when the run follows a plan.
DRIFT_POLL = 0.05
_STARTED, _SUCCEEDED = ev.TASK_STARTED, ev.TASK_SUCCEEDED
_new = tuple.__new__  # builds a NamedTuple record without its Python-level __new__
_INF = float("inf")


class RunLoop:
    """Runs one run of one workflow to an end (succeeded, failed or cancelled)."""

    def __init__(
        self,
        state: RunState,
        *,
        store: Store,
        executor: Executor,
        clock: Clock,
        rng: random.Random,
        hooks: Sequence[Hook] = (),
        placement: Placement | None = None,
        replanner: Replanner | None = None,
        registry: Registry = REGISTRY,
        oom: OomPolicy = OomPolicy(),
    ) -> None:
        self.state = s = state
        self.store = store
        self.executor = executor
        self.clock = clock
        self.recorder = Recorder(s, store, clock, hooks, executor)
        self.emit, self.flush = self.recorder.emit, self.recorder.flush
        self.inbox: deque[Future[Any]] = deque()
        self.turn_lock = threading.Lock()
        self.ended = threading.Event()
        # what the run's thread waits on: the end, or a retry due before it would wake anyway
        self.wake = threading.Event()
        self._until = -_INF  # when the run's thread wakes anyway (-inf: it is not sleeping)
        self.fatal: BaseException | None = None
        self.last_poll = 0.0
        self._monotonic = clock.monotonic
        # optional executor capabilities: checked once, here
        self.readiness = Readiness(s, self.emit, store, registry, lambda t, e: self.failures.fail_now(t, e))
        self.failures = Failures(s, self.emit, self.readiness, executor, clock, rng, oom)
        self.lanes = (
            Lanes(s, self.emit, self.readiness, clock.monotonic, executor.queue_limits)
            if isinstance(executor, QueueingExecutor)
            else None
        )
        self.plans = PlanFollower(s, self.emit, replanner, clock.monotonic)
        self.grants = Grants(s)
        if placement is not None:
            self.plans.use(placement)
        self._finished, self._attempt_failed = self.readiness.finished, self.failures.attempt_failed
        self.services = services_for(s, executor)

    # -- dispatch ---------------------------------------------------------------------------
    def dispatch(self) -> None:
        s = self.state
        if not s.dirty or (s.cancelling and not s.handlers_only):
            return
        s.dirty = False
        ready, free, view_tasks, needs, specs = s.ready, s.free, s.view.tasks, s.need, s.specs
        prepared, submit, run_id, choose = s.prepared, s.to_submit.append, s.run_id, s.node_for
        boost, boost_res, emit, start_data = s.boost, s.boost_res, self.emit, s.start_data
        pop, placement, node_names, granted = heapq.heappop, s.placement, s.node_names, s.granted
        # every task needs cpu: once no node has the least any task asks for, stop looking
        floor = s.min_cpu - EPS if s.min_cpu > 0.0 else None
        caps = list(free.values())
        deferred = []
        lanes = self.lanes
        rooms, limits = lanes.rooms() if lanes is not None else (0, {})
        while ready:
            if floor is not None and rooms <= 0:
                for cap in caps:
                    if cap.get("cpu", 0.0) >= floor:
                        break
                else:
                    break
            item = pop(ready)
            tid, name = item.task_id, item.name
            need = boost.get(tid) or needs[name] if boost else needs[name]
            held: Held | None = ()  # None: granted (GPUs, several workers), but not placed now
            if granted is not None and name in granted:
                node, held = self.grants.take(tid, name, need) or (None, None)
            elif placement:
                node = choose(name if tid == name else "", need)  # map items go wherever they fit
            else:  # no plan: the fastest node it fits
                node = None
                for n in node_names:
                    if fits(need, free[n]):
                        node = n
                        break
            attempt = view_tasks[tid].attempt + 1
            kwargs, config = prepared[tid]
            lane: Lane | None = None
            est: float | None = None  # None: it starts now; else it waits in ``lane``
            if node is None:
                if rooms > 0 and held is not None:  # all full: wait behind a running call in a lane
                    est = lanes.expected(name)  # type: ignore[union-attr]
                    lane = None if est is None else lanes.lane_for(name, need, limits)  # type: ignore[union-attr]
                if lane is None:
                    deferred.append(item)
                    if len(deferred) >= BACKFILL_SCAN or (rooms <= 0 and s.exhausted()):
                        break
                    continue
                rooms -= 1
                lanes.join(lane, est)  # type: ignore[union-attr,arg-type]
                node = lane.node
            elif held:  # granted (GPUs, workers): it holds them outside any lane
                emit(_STARTED, tid, attempt, self.grants.started(node, need, held))
            else:
                cap = free[node]
                for k, v in need.items():
                    cap[k] -= v
                emit(_STARTED, tid, attempt, start_data(node, need, name, kwargs))
                if lanes is not None:
                    lane = lanes.open(node, need, name)
                    rooms += room(lane, limits)
            spec = specs[name]
            res = boost_res.get(tid, spec.resources) if boost_res else spec.resources
            call = _new(TaskCall, (run_id, tid, attempt, spec, kwargs, config, res, node, spec.timeout, held))
            submit(_new(Submission, (call, need, lane, est)))
        for item in deferred:
            heapq.heappush(ready, item)

    def submit(self) -> None:
        s = self.state
        calls, s.to_submit = s.to_submit, []
        put, now, runs, execute = self.deliver, self._monotonic, s.running, self.executor.submit
        for call, need, lane, est in calls:
            try:
                fut = execute(call) if est is None else execute(call, follow=lane.tail)  # type: ignore[union-attr,call-arg]
            except Exception as e:  # the executor refused the call: the attempt failed
                fut = Future()
                fut.set_exception(TaskFailedError(ErrorRecord.from_exception(e)))
            if est is None:
                runs[fut] = _new(Running, (call.task_id, call.attempt, call.node, need, now(), call.grants))
                if lane is not None:
                    lane.tail = fut
                    s.lane_of[fut] = lane
            else:
                self.lanes.submitted(lane, fut, Waiting(call.task_id, call.attempt, need, est))  # type: ignore[union-attr,arg-type]
            fut.add_done_callback(put)

    # -- completions ------------------------------------------------------------------------
    def complete(self, fut: Future[Any]) -> None:
        s = self.state
        entry = s.running.pop(fut, None)
        if entry is None:
            if fut in s.queued and self.lanes.queued_done(fut):  # type: ignore[union-attr]
                self.complete(fut)  # it ran although it waited: an attempt like any other
            return
        lane = s.lane_of.pop(fut, None) if s.lane_of else None
        if lane is None:
            self._outcome(fut, entry, True)
            return
        lanes: Lanes = self.lanes  # type: ignore[assignment]
        if lanes.continues(fut, lane):
            self._outcome(fut, entry, False)
            if lanes.continues(fut, lane):  # (its outcome may have cancelled the run)
                lanes.advance(lane)
            else:
                lanes.close(lane)
        else:
            s.open_lanes.discard(lane)
            self._outcome(fut, entry, True)

    def _outcome(self, fut: Future[Any], entry: Running, release: bool) -> None:
        """Record how the attempt ended (``release``: give its resources back to its node)."""
        s = self.state
        tid, attempt, node, need, t0, held = entry
        if held or release:  # a granted attempt never waits in a lane: it always gives back
            self.grants.release(node, need, held)
        s.dirty = True
        duration = self._monotonic() - t0
        # an AttemptFuture's public fields read in place: about 1,500 instructions a task less
        # than through outcome_of/meta_of (counted with valgrind); any other future through them
        attempt_future = type(fut) is AttemptFuture
        outcome = fut.outcome if attempt_future else None  # type: ignore[attr-defined]
        value, exc = outcome if outcome is not None else outcome_of(fut)
        meta = fut.podium_meta if attempt_future else meta_of(fut)  # type: ignore[attr-defined]
        # what the executor measured (only a measured attempt's event carries ``usage``); its log
        usage = self.recorder.ended(meta, tid, attempt) if meta else None
        if exc is not None:
            if isinstance(exc, TaskFailedError):
                err = exc.record
            elif isinstance(exc, CancelledError):
                err = ErrorRecord("Cancelled", "cancelled", kind=CANCELLED)
            else:  # an executor that raised something else: keep it as a record
                err = ErrorRecord.from_exception(exc)
            self._attempt_failed(tid, attempt, err, duration, usage)
            return
        try:
            rec = codec.encode(tid, attempt, value, s.artifacts, s.lineage)
            if rec.encoding == codec.ARTIFACT:  # kept outside the store: note it (a folder: its path)
                value = committed(s, rec, value)
        except Exception as e:  # unpicklable or unstorable result
            msg = f"result of task {tid!r} cannot be stored: {e}"
            err = ErrorRecord(type(e).__name__, msg, retryable=False)
            self._attempt_failed(tid, attempt, err, duration, usage)
            return
        data: dict[str, Any] = {"duration": round(duration, 6)}
        if meta:
            if usage is not None:
                data["usage"] = usage
            ran_on = meta.get("node")
            if ran_on is not None and ran_on != node:  # the executor had to move it (a lost node)
                data["node"] = ran_on
            if "started" in meta:  # when its worker started it (a lane's call may start early)
                data["started"] = meta["started"]
            if self.lanes is not None and "seconds" in meta:
                self.lanes.ran_for(base_name(tid), meta["seconds"])
        self.emit(_SUCCEEDED, tid, attempt, data)
        if self.plans.replanner is not None:
            self.plans.finished(tid, duration)
        s.buf_results.append(rec)
        s.values[tid] = value
        if self.services.names:
            self.services.started(tid, value, node, need)
        if s.cache_keys:
            key = s.cache_keys.get(tid)
            if key is not None:
                with contextlib.suppress(StoreError):
                    self.store.cache_put(key, rec)
        self._finished(tid)

    # -- driving turns ----------------------------------------------------------------------
    def deliver(self, fut: Future[Any]) -> None:
        """Done-callback of every submitted future (runs in whatever thread completed it)."""
        self.inbox.append(fut)
        self.drive()

    def drive(self) -> None:
        """Run turns until the inbox is empty, unless another thread is already in one: that
        thread re-checks the inbox after releasing the lock, so no completion is left behind."""
        lock, ended = self.turn_lock, self.ended
        while True:
            if not lock.acquire(blocking=False):
                return
            try:
                if self.fatal is None and not ended.is_set():
                    self.turn()
            except BaseException as e:  # a store that stays down, or a bug: the caller re-raises
                self.fatal = e
                self._end()
            finally:
                lock.release()
            if not self.inbox or ended.is_set():
                return

    def turn(self) -> None:
        s = self.state
        inbox = self.inbox
        if self.plans.replanner is not None and self.plans.replanner.pending is not None:
            self.plans.apply_pending()
        complete, take = self.complete, inbox.popleft
        while True:
            while inbox:
                complete(take())
            if s.timers:
                self.failures.fire_timers()
            if s.expanding and len(s.ready) < EXPAND_CHUNK and not s.cancelling:
                self.readiness.expand_more()  # a chunk per pass: a huge map never holds the loop long
            if s.dirty:
                self.dispatch()
            if s.buf:
                self.flush()
            if s.to_submit:
                self.submit()
            if not inbox:
                break
        if s.timers and s.timers[0].at < self._until:
            self.wake.set()  # a retry is due before the run's thread would wake: wake it
        if s.expanding and len(s.ready) < EXPAND_CHUNK and not s.cancelling:
            self.wake.set()  # more items to queue: in the next turn, after a cancel could get in
            return
        if not s.running and not s.queued:
            if s.ready and not s.timers and not s.cancelling:
                self.failures.stuck()
                self.flush()
            if (s.cancelling and not s.ready) or not (s.ready or s.timers):
                self._end()

    def _end(self) -> None:
        self.ended.set()
        self.wake.set()

    def _locked_turn(self, before: Callable[[], None] | None = None) -> None:
        with self.turn_lock:
            if self.fatal is None and not self.ended.is_set():
                if before is not None:
                    before()
                self.turn()
        self.drive()

    # -- the run ----------------------------------------------------------------------------
    def run(self) -> str:
        """Run to the end; return the final run state. Ctrl-C cancels cleanly."""
        s = self.state
        try:
            with self.turn_lock:
                self.emit(ev.RUN_STARTED, None, 0, s.started(owner_id()))
                if self.plans.summary is not None:
                    self.emit(ev.PLAN_MADE, None, 0, self.plans.summary)
                self.readiness.start()
                self.turn()
            self.drive()
            self._wait()
        except (KeyboardInterrupt, Cancelled):
            self._locked_cancel("interrupted")
            self._drain_running()
            with self.turn_lock:
                self._finish()
            raise
        except BaseException:
            for fut in [*s.running, *s.queued]:
                with contextlib.suppress(Exception):
                    self.executor.kill(fut)
            self.services.stop_all()
            raise
        with self.turn_lock:
            return self._finish()

    def _wait(self) -> None:
        """Sleep on the clock until the run ends; wake for due retries and polls."""
        timers = self.state.timers
        while not self.ended.is_set():
            with self.turn_lock:  # a turn adding a timer sees ``_until`` set or is seen here
                timeout = CANCEL_POLL if self.plans.replanner is None else DRIFT_POLL
                if timers:
                    timeout = max(0.0, min(timeout, timers[0].at - self._monotonic()))
                self._until = self._monotonic() + timeout
            self.clock.wait(self.wake, timeout)
            self._until = -_INF
            self.wake.clear()  # the turn below and the next timeout see whatever set it
            if self.ended.is_set():
                break
            self._locked_turn(self._poll)
        if self.fatal is not None:
            raise self.fatal

    def _poll(self) -> None:
        """Between turns: a cancel request, drift of running tasks, changed live nodes."""
        self.failures.watch_nodes()
        now = self._monotonic()
        if now - self.last_poll >= CANCEL_POLL:
            self.last_poll = now
            try:
                if self.store.cancel_requested(self.state.run_id):
                    self.failures.cancel("cancel requested")
            except StoreError:
                pass
            self.services.poll()
            self.recorder.write_live_logs()
        self.plans.poll()

    def _locked_cancel(self, reason: str) -> None:
        with self.turn_lock:
            self.ended.clear()
            self.fatal = None
            self.failures.cancel(reason)
            self.flush()

    def _drain_running(self, timeout: float = 10.0) -> None:
        """After a cancel: let killed attempts report, then give up on any that do not in time."""
        s = self.state
        deadline = self._monotonic() + timeout
        while (s.running or s.queued) and self._monotonic() < deadline:
            self.drive()
            self.clock.sleep(0.01)
        with self.turn_lock:
            while self.inbox:
                self.complete(self.inbox.popleft())
            s.queued.clear()  # waiting calls never started: cancel() has cancelled their tasks
            for fut, r in list(s.running.items()):
                self.emit(ev.TASK_CANCELLED, r.task_id, r.attempt, {"reason": "abandoned at shutdown"})
                s.running.pop(fut)
            self.flush()

    def _finish(self) -> str:
        self.services.stop_all()  # every ending stops the run's services
        typ, data = self.state.final_event()
        self.emit(typ, None, 0, data)
        self.flush()
        return self.state.view.state or st.RUN_FAILED


__all__ = ["Hook", "RunLoop", "owner_id"]
