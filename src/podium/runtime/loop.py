"""The one loop that runs a workflow: fold, decide, persist, submit, react to completions.

A *turn* of the loop:
1. take every completion delivered so far and turn each into events (success, retry, failure,
   skips, newly ready tasks);
2. dispatch: pop ready tasks by priority (critical path by default) and start those whose
   resources fit a node's free capacity (looking past ones that do not fit: backfill);
3. persist: append every event produced since the last turn in ONE store transaction;
4. act: only then submit the started calls to the executor.

Turns are driven by completions, flat-combining style: a future's done-callback puts the
future in the inbox and, if no other thread is in a turn, runs the turn itself; a thread that
finds a turn in progress leaves its completion to that turn. Nothing polls futures, and no
completion waits for a hand-off to another thread (which costs tens of microseconds a task).
The calling thread starts the run, sleeps until it ends, and wakes only for retry timers,
cancel requests from other processes, and Ctrl-C.

The loop is one class in four modules: this one (state, dispatch, completions, turns, the
run), ``readiness`` (how a task becomes ready, skipped or expanded), ``failures`` (retries,
quarantine, cancellation) and ``lanes`` (tasks queued behind a running call on its worker, with
an executor that queues), joined as mixins.

Invariants: turns never overlap (one lock); an event is applied to the view when emitted and
committed before anything is acted on (a task's success is durable before its dependents
start); the running tasks' resources never exceed any node's capacity; a task whose result
was committed never runs again.
"""

from __future__ import annotations

import contextlib
import heapq
import os
import random
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import CancelledError, Future
from typing import Any

from podium.errors import (
    CANCELLED,
    Cancelled,
    ConflictError,
    ErrorRecord,
    StoreError,
    TaskFailedError,
)
from podium.model import events as ev
from podium.model import states as st
from podium.model.cluster import Node
from podium.model.events import Event, ResultRecord
from podium.model.resources import Resources
from podium.model.task import TaskCall, TaskSpec
from podium.model.workflow import Workflow
from podium.registry import REGISTRY, Registry
from podium.runtime import codec
from podium.runtime.failures import Failures
from podium.runtime.lanes import Lane, Lanes
from podium.runtime.planning import DRIFT, Placement, Replanner
from podium.runtime.readiness import Readiness
from podium.runtime.view import RunView, base_name
from podium.types import Clock, Executor, Store

Hook = Callable[[Sequence[Event], RunView], None]

#: How many ready tasks that do not fit are looked past to find one that does (backfill).
BACKFILL_SCAN = 32
#: Seconds between checks for a cancel request made from another process.
CANCEL_POLL = 0.5
#: Seconds between drift checks of running tasks when the run follows a plan.
DRIFT_POLL = 0.05
#: Store write retries before the loop stops (it never acts on an unpersisted state).
WRITE_RETRIES = (0.05, 0.2, 1.0)
_EPS = 1e-9
_STARTED, _SUCCEEDED = ev.TASK_STARTED, ev.TASK_SUCCEEDED
_FINISHED = "FINISHED"  # concurrent.futures' state of a future with a result or an exception


class RunLoop(Readiness, Failures, Lanes):
    """Runs one run of one workflow to an end (succeeded, failed or cancelled)."""

    def __init__(
        self,
        *,
        run_id: str,
        workflow: Workflow,
        params: Mapping[str, Any],
        view: RunView,
        store: Store,
        executor: Executor,
        nodes: Sequence[Node],
        priority: Mapping[str, float],
        placement: Mapping[str, str] | None = None,
        values: dict[str, Any] | None = None,
        clock: Clock,
        rng: random.Random,
        hooks: Sequence[Hook] = (),
        replanner: Replanner | None = None,
        registry: Registry = REGISTRY,
        oom_growth: float = 2.0,
        oom_retries: int = 3,
        oom_cap: int | None = None,
        estimates: dict[str, float] | None = None,
    ) -> None:
        self.run_id = run_id
        self.replanner = replanner
        self.registry = registry
        self.oom_growth, self.oom_retries, self.oom_cap = oom_growth, oom_retries, oom_cap
        self.gone: set[str] = set()  # nodes lost during the run (see _choose)
        self.boost: dict[str, dict[str, float]] = {}  # task id -> grown need (after an OOM)
        self.boost_res: dict[str, Resources] = {}
        self.cache_keys: dict[str, str] = {}
        self.upstream_failed: set[str] = set()  # handler tasks with at least one failed upstream
        self.handlers_only = False  # after a fail-fast stop: only failure handlers may start
        self.origin = clock.monotonic()  # 0 on the plan's clock
        self.wf = workflow
        self.params = dict(params)
        self.view = view
        self.store = store
        self.executor = executor
        self.nodes = {n.name: n for n in nodes}
        self.node_names = [n.name for n in sorted(nodes, key=lambda n: (-n.speed, n.name))]
        self.free: dict[str, dict[str, float]] = {n.name: n.capacity.as_dict() for n in nodes}
        self.priority = priority
        self.placement = dict(placement or {})
        self.values: dict[str, Any] = values if values is not None else {}
        self.clock = clock
        self.rng = rng
        self.hooks = list(hooks)
        self.down: dict[str, list[str]] = workflow.graph.down
        self.specs: dict[str, TaskSpec] = dict(workflow.tasks)
        # one need dict per distinct resource vector (never mutated): events share them
        shared: dict[Resources, dict[str, float]] = {}
        self.need: dict[str, dict[str, float]] = {}
        for n, t in workflow.tasks.items():
            need = shared.get(t.resources)
            if need is None:
                need = shared[t.resources] = t.resources.as_dict()
            self.need[n] = need
        self.waiting: dict[str, int] = {}
        # tasks that are queued as soon as their upstreams are done: nothing to resolve or judge
        self.plain = frozenset(
            n
            for n, t in workflow.tasks.items()
            if not t.args
            and not t.config
            and t.when is None
            and t.map_over is None
            and t.trigger != "one_failed"
        )
        self.items_left: dict[str, int] = {}
        self.prepared: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
        self.ready: list[tuple[float, int, str, str]] = []
        cpus = [n.get("cpu", 0.0) for n in self.need.values()]
        self.min_cpu = min(cpus) if cpus else 0.0
        self.counter = 0
        self.timers: list[tuple[float, int, str]] = []
        self.running: dict[Future[Any], tuple[str, int, str, dict[str, float], float]] = {}
        self.inbox: deque[Future[Any]] = deque()
        self.turn_lock = threading.Lock()
        self.ended = threading.Event()
        self.fatal: BaseException | None = None
        self.buf: list[Event] = []
        self._buf_append = self.buf.append
        self._apply = view.apply
        self._now = clock.time
        self.buf_results: list[ResultRecord] = []
        # (call, its resource need, its lane, None to start it now or the expected seconds of
        # a call that waits in the lane)
        self.to_submit: list[tuple[TaskCall, dict[str, float], Lane | None, float | None]] = []
        self._started_data: dict[tuple[str, int], dict[str, Any]] = {}
        self._monotonic = clock.monotonic
        self.dirty = True
        self.cancelling = False
        self.failed = False
        self.last_poll = 0.0
        self.reason = ""
        self.plan_summary: dict[str, Any] | None = None
        self._init_lanes(estimates)

    # -- events -----------------------------------------------------------------------------
    def emit(self, typ: str, task_id: str | None = None, attempt: int = 0, data: dict | None = None) -> None:
        # tuple.__new__ builds the same Event as Event(...) without the NamedTuple's Python __new__
        e = _new(Event, (self.view.last_seq + 1, typ, task_id, attempt, self._now(), data or _NO_DATA))
        self._apply(e)
        self._buf_append(e)

    def flush(self) -> None:
        """Commit buffered events and results in one transaction, retrying transient failures."""
        if not self.buf:
            return
        events, results = self.buf, self.buf_results
        try:
            self.store.append(self.run_id, events, results)
        except ConflictError:
            raise
        except StoreError:
            self._append_retrying(events, results)
        self.buf, self.buf_results = [], []
        self._buf_append = self.buf.append
        if self.hooks:
            for h in self.hooks:
                h(events, self.view)

    def _append_retrying(self, events: list[Event], results: list[ResultRecord]) -> None:
        """The append failed transiently: retry it a few times, then give up (re-raise)."""
        for i, pause in enumerate(WRITE_RETRIES):
            time.sleep(pause * (1 + i * 0.1))
            try:
                self.store.append(self.run_id, events, results)
                return
            except ConflictError:
                raise
            except StoreError:
                if i == len(WRITE_RETRIES) - 1:
                    raise

    # -- dispatch ---------------------------------------------------------------------------
    def dispatch(self) -> None:
        if not self.dirty or (self.cancelling and not self.handlers_only):
            return
        self.dirty = False
        ready, free, view_tasks, needs, specs = self.ready, self.free, self.view.tasks, self.need, self.specs
        prepared, submit, run_id, choose = self.prepared, self.to_submit.append, self.run_id, self._choose
        boost, boost_res, emit, started_data = self.boost, self.boost_res, self.emit, self._start_data
        pop, placement, node_names = heapq.heappop, self.placement, self.node_names
        # every task needs cpu: once no node has the least any task asks for, stop looking
        floor = self.min_cpu - _EPS if self.min_cpu > 0.0 else None
        caps = list(free.values())
        deferred = []
        lanes = self.queue_limits is not None
        rooms, limits = self._lane_rooms() if lanes else (0, {})
        while ready:
            if floor is not None and rooms <= 0:
                for cap in caps:
                    if cap.get("cpu", 0.0) >= floor:
                        break
                else:
                    break
            item = pop(ready)
            tid = item[2]
            name = item[3]
            need = boost.get(tid) or needs[name] if boost else needs[name]
            if placement:
                node = choose(name if tid == name else "", need)  # map items go wherever they fit
            else:  # no plan: the fastest node it fits (``_choose`` inlined)
                node = None
                for n in node_names:
                    cap = free[n]
                    for k, v in need.items():
                        if cap.get(k, 0.0) + _EPS < v:
                            break
                    else:
                        node = n
                        break
            attempt = view_tasks[tid].attempt + 1
            lane: Lane | None = None
            est: float | None = None  # None: it starts now; else it waits in ``lane``
            if node is None:
                if rooms > 0:  # every node is full: wait behind a running call in a lane
                    est = self.expected(name)
                    lane = None if est is None else self._lane_for(name, need, limits)
                if lane is None:
                    deferred.append(item)
                    if len(deferred) >= BACKFILL_SCAN or (rooms <= 0 and self._exhausted()):
                        break
                    continue
                rooms -= 1
                self._join_lane(lane, est)  # type: ignore[arg-type]
                node = lane.node
            else:
                cap = free[node]
                for k, v in need.items():
                    cap[k] -= v
                emit(_STARTED, tid, attempt, started_data(node, need))
                if lanes:
                    lane = self._open_lane(node, need, name)
                    rooms += self._room(lane, limits)
            kwargs, config = prepared[tid]
            spec = specs[name]
            res = boost_res.get(tid, spec.resources) if boost_res else spec.resources
            call = _new(TaskCall, (run_id, tid, attempt, spec, kwargs, config, res, node, spec.timeout))
            submit((call, need, lane, est))
        for item in deferred:
            heapq.heappush(ready, item)

    def _start_data(self, node: str, need: dict[str, float]) -> dict[str, Any]:
        """The data of a ``TaskStarted`` on ``node`` holding ``need``: one shared dict per
        (node, need), since event data is never mutated."""
        data = self._started_data.get((node, id(need)))
        if data is None or data["res"] is not need:
            data = self._started_data[(node, id(need))] = {"node": node, "res": need}
        return data

    def _exhausted(self) -> bool:
        """True when no node has the cpu that the smallest cpu-needing task asks for and every
        task needs cpu: then nothing further down the ready queue can fit either."""
        if self.min_cpu <= 0.0:
            return False
        floor = self.min_cpu - _EPS
        return all(cap.get("cpu", 0.0) < floor for cap in self.free.values())

    def _resources(self, tid: str, spec: TaskSpec) -> Resources:
        return self.boost_res.get(tid, spec.resources) if self.boost_res else spec.resources

    def _choose(self, name: str, need: dict[str, float]) -> str | None:
        """The planned node, when there is one: the task waits for it (a re-plan moves it if its
        node stays busy for longer than planned). Otherwise the fastest node it fits."""
        planned = self.placement.get(name)
        if planned is not None:
            cap = self.free.get(planned)
            if cap is not None:
                return planned if _fits(cap, need) else None
        for node in self.node_names:
            if _fits(self.free[node], need):
                return node
        if self.gone:
            # No live node can ever hold it (a resource only a lost node had): send it to that
            # node anyway; the executor waits there, with a visible reason, for a replacement.
            for n in self.nodes.values():
                if _fits(n.capacity.as_dict(), need):
                    return None
            for gone in sorted(self.gone):
                cap = self.free.get(gone)
                if cap is not None and _fits(cap, need):
                    return gone
        return None

    def submit(self) -> None:
        calls, self.to_submit = self.to_submit, []
        put, monotonic, running, execute = self.deliver, self._monotonic, self.running, self.executor.submit
        for call, need, lane, est in calls:
            try:
                fut = execute(call) if est is None else execute(call, follow=lane.tail)  # type: ignore[union-attr,call-arg]
            except Exception as e:  # the executor refused the call: the attempt failed
                fut = Future()
                fut.set_exception(TaskFailedError(ErrorRecord.from_exception(e)))
            if est is None:
                running[fut] = (call.task_id, call.attempt, call.node, need, monotonic())
                if lane is not None:
                    lane.tail = fut
                    self.lane_of[fut] = lane
            else:
                self._submitted_waiting(lane, fut, (call.task_id, call.attempt, need, est))  # type: ignore[arg-type]
            fut.add_done_callback(put)

    # -- completions ------------------------------------------------------------------------
    def complete(self, fut: Future[Any]) -> None:
        entry = self.running.pop(fut, None)
        if entry is None:
            if fut in self.queued:
                self._queued_done(fut)
            return
        lane = self.lane_of.pop(fut, None) if self.lane_of else None
        if lane is None:
            self._outcome(fut, entry, True)
        elif self._lane_continues(fut, lane):
            self._outcome(fut, entry, False)
            if self._lane_continues(fut, lane):  # (its outcome may have cancelled the run)
                self._advance(lane)
            else:
                self._close_lane(lane)
        else:
            self.open_lanes.discard(lane)
            self._outcome(fut, entry, True)

    def _outcome(
        self, fut: Future[Any], entry: tuple[str, int, str, dict[str, float], float], release: bool
    ) -> None:
        """Record how the attempt ended (``release``: give its resources back to its node)."""
        tid, attempt, node, need, t0 = entry
        if release:
            cap = self.free.get(node)
            if cap is not None:  # None: the node is gone
                for k, v in need.items():
                    cap[k] += v
        self.dirty = True
        duration = self._monotonic() - t0
        try:
            # a done-callback runs once the future is final: read it without taking its lock
            if isinstance(fut, Future) and fut._state == _FINISHED and fut._exception is None:
                value = fut._result
            else:
                value = fut.result()
        except TaskFailedError as e:
            self._attempt_failed(tid, attempt, e.record, duration)
            return
        except CancelledError:
            self._attempt_failed(
                tid, attempt, ErrorRecord("Cancelled", "cancelled", kind=CANCELLED), duration
            )
            return
        except BaseException as e:  # an executor that raised something else: keep it as a record
            self._attempt_failed(tid, attempt, ErrorRecord.from_exception(e), duration)
            return
        try:
            rec = codec.encode(tid, attempt, value)
        except Exception as e:  # unpicklable or unstorable result
            msg = f"result of task {tid!r} cannot be stored: {e}"
            self._attempt_failed(tid, attempt, ErrorRecord(type(e).__name__, msg, retryable=False), duration)
            return
        meta = getattr(fut, "podium_meta", None)
        ran_on = meta.get("node") if meta else None
        if self.queue_limits is not None and meta and "seconds" in meta:
            self._ran_for(base_name(tid), meta["seconds"])
        data = {"duration": round(duration, 6)}
        if ran_on is not None and ran_on != node:  # the executor had to move it (a lost node)
            data["node"] = ran_on
        self.emit(_SUCCEEDED, tid, attempt, data)
        if self.replanner is not None and self.replanner.finished_late(tid, duration):
            self._replan(f"drift: task {tid!r} took {duration:.3g}s, over {DRIFT:g}x its estimate")
        self.buf_results.append(rec)
        self.values[tid] = value
        if self.cache_keys:
            key = self.cache_keys.get(tid)
            if key is not None:
                with contextlib.suppress(StoreError):
                    self.store.cache_put(key, rec)
        self._finished(tid)

    def _poll_cancel(self) -> None:
        now = self.clock.monotonic()
        if now - self.last_poll < CANCEL_POLL:
            return
        self.last_poll = now
        try:
            if self.store.cancel_requested(self.run_id):
                self.cancel("cancel requested")
        except StoreError:
            pass

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
                ended.set()
            finally:
                lock.release()
            if not self.inbox or ended.is_set():
                return

    def turn(self) -> None:
        inbox = self.inbox
        if self.replanner is not None and self.replanner.pending is not None:
            self._apply_plan()
        complete, take = self.complete, inbox.popleft
        while True:
            while inbox:
                complete(take())
            if self.timers:
                self.fire_timers()
            if self.dirty:
                self.dispatch()
            if self.buf:
                self.flush()
            if self.to_submit:
                self.submit()
            if not inbox:
                break
        if not self.running and not self.queued:
            if self.ready and not self.timers and not self.cancelling:
                self._stuck()
                self.flush()
            if (self.cancelling and not self.ready) or not (self.ready or self.timers):
                self.ended.set()

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
        try:
            with self.turn_lock:
                prices = {n.name: dict(n.prices) for n in self.nodes.values()}
                self.emit(ev.RUN_STARTED, None, 0, {"owner": owner_id(), "prices": prices})
                if self.plan_summary is not None:
                    self.emit(ev.PLAN_MADE, None, 0, self.plan_summary)
                self.start()
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
            for fut in [*self.running, *self.queued]:
                with contextlib.suppress(Exception):
                    self.executor.kill(fut)
            raise
        with self.turn_lock:
            return self._finish()

    def _wait(self) -> None:
        while not self.ended.is_set():
            timeout = CANCEL_POLL if self.replanner is None else DRIFT_POLL
            if self.timers:
                timeout = max(0.0, min(timeout, self.timers[0][0] - self.clock.monotonic()))
            if self.ended.wait(timeout):
                break
            self._locked_turn(self._poll)
        if self.fatal is not None:
            raise self.fatal

    def _poll(self) -> None:
        self._poll_cancel()
        if self.replanner is not None and self.running:
            now = self.clock.monotonic() - self.origin
            tid = self.replanner.drifting(self._running_on_plan_clock(), now)
            if tid is not None:
                est = self.replanner.estimates.get(base_name(tid), 0.0)
                self._replan(
                    f"drift: task {tid!r} still running after {now - self._started(tid):.3g}s, "
                    f"over {DRIFT:g}x its estimate {est:.3g}s",
                    drifted=tid,
                )

    # -- plans ------------------------------------------------------------------------------
    def use_plan(self, placement: Placement) -> None:
        """Follow ``placement`` (called before the run starts, and for each re-plan)."""
        self.placement = dict(placement.node)
        prio = dict(self.priority)
        prio.update(placement.priority)
        self.priority = prio
        self.plan_summary = placement.summary

    def _running_on_plan_clock(self) -> dict[str, tuple[str, float]]:
        return {tid: (node, t0 - self.origin) for tid, _a, node, _n, t0 in self.running.values()}

    def _started(self, tid: str) -> float:
        for t, _a, _node, _n, t0 in self.running.values():
            if t == tid:
                return t0 - self.origin
        return 0.0

    def _replan(self, reason: str, drifted: str | None = None) -> None:
        """Start a re-plan of the remaining work in the background (caller holds the lock)."""
        rp = self.replanner
        if rp is None or self.cancelling:
            return
        now = self.clock.monotonic() - self.origin
        rp.replan(rp.snapshot(self.view, self._running_on_plan_clock(), now, drifted), reason)

    def _apply_plan(self) -> None:
        placement = self.replanner.take() if self.replanner is not None else None
        if placement is None or not placement.node:
            return
        self.use_plan(placement)
        self.emit(ev.PLAN_MADE, None, 0, placement.summary)
        ready = self.ready
        prio = self.priority
        self.ready = [(-prio.get(name, 0.0), c, tid, name) for _p, c, tid, name in ready]
        heapq.heapify(self.ready)
        self.dirty = True

    def _locked_cancel(self, reason: str) -> None:
        with self.turn_lock:
            self.ended.clear()
            self.fatal = None
            self.cancel(reason)
            self.flush()

    def _stuck(self) -> None:
        """Ready tasks that no node can ever hold (capacity checked up front, so a bug guard)."""
        for _, _, tid, _ in self.ready:
            self.emit(ev.TASK_CANCELLED, tid, 0, {"reason": f"task {tid!r} does not fit any node"})
        self.ready.clear()
        self.failed = True

    def _drain_running(self, timeout: float = 10.0) -> None:
        """After a cancel: let killed attempts report (their callbacks run turns), then give
        up on any that do not within ``timeout``."""
        deadline = time.monotonic() + timeout
        while (self.running or self.queued) and time.monotonic() < deadline:
            self.drive()
            time.sleep(0.01)
        with self.turn_lock:
            while self.inbox:
                self.complete(self.inbox.popleft())
            self.queued.clear()  # waiting calls never started: cancel() has cancelled their tasks
            for fut, (tid, attempt, *_rest) in list(self.running.items()):
                self.emit(ev.TASK_CANCELLED, tid, attempt, {"reason": "abandoned at shutdown"})
                self.running.pop(fut)
            self.flush()

    def _finish(self) -> str:
        counts = self.view.counts()
        for name in self.wf.tasks:  # tasks that never had an event are pending too
            if name not in self.view.tasks:
                counts[st.PENDING] += 1
        unfinished = any(counts[s] for s in _UNFINISHED)
        if not unfinished and not self.failed:
            typ = ev.RUN_SUCCEEDED
        elif self.cancelling and not self.failed:
            typ = ev.RUN_CANCELLED
        else:
            typ = ev.RUN_FAILED
        self.emit(typ, None, 0, {"counts": {k: v for k, v in counts.items() if v}})
        self.flush()
        return self.view.state or st.RUN_FAILED


_NO_DATA: dict[str, Any] = {}  # shared by events without data; never mutated
_new = tuple.__new__
_UNFINISHED = (st.FAILED, st.CANCELLED, st.PENDING, st.QUEUED, st.RUNNING, st.RETRYING, st.EXPANDED)


def _fits(cap: dict[str, float], need: dict[str, float]) -> bool:
    # an explicit loop: measurably cheaper than all(<genexpr>) on this hot path
    for k, v in need.items():  # noqa: SIM110
        if cap.get(k, 0.0) + _EPS < v:
            return False
    return True


def _ref(task: str, path: tuple) -> Any:
    from podium.model.task import Ref

    return Ref(task, path)


def owner_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


__all__ = ["RunLoop", "owner_id"]
