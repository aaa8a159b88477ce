"""``RayExecutor``: runs task calls on a Ray cluster, each on the node its plan chose.

Constructing a ``RayExecutor`` imports ``ray`` (through ``base.ray_api``). Install with the
``ray`` extra.

- **Nodes.** Ray nodes become Podium nodes (``cluster``). ``nodes()`` and ``refresh()`` list
  the live ones, leaving out nodes whose raylet stopped answering (``health``: probed every
  ``probe_period`` seconds and after every lost worker, not waiting for Ray's health checks);
  ``on_nodes_changed`` hears of every change and ``nodes_epoch()`` counts them.
- **Placement.** A call runs on the Ray node named ``call.node``, with hard affinity: a call
  that needs no gpu on a *lane* there (``lanes``: a pooled actor running its calls in order, in
  batches; ``submit(call, follow=f)`` queues a call behind ``f``'s, ``queue_limits(node)`` says
  how deep), a gpu call as a Ray task holding ``call.resources`` (``member.run_placed``: its
  ``podium.context().gpus`` are the GPUs Ray assigned it), a gang-scheduled call (``workers``
  > 1) as one actor per worker in a placement group on its granted nodes (``gang``). If that node is gone or
  suspect, a live node with its name (a replacement) is used; else a call some live node could
  hold fails as ``worker_lost`` without running, so the engine places it again and accounts it
  where it runs; a call needing what only that node had waits for a node that can hold it
  (``wait``: listed by ``waiting()``, at most ``pending_timeout`` seconds, then ``timeout``).
- **Code and data.** Plain data travels (``payload``); large results stay in Ray's object store
  (put by their worker, read by the driver, passed to downstream calls by reference).
- **Futures** are ``RayFuture``s (``AttemptFuture``s) whose ``podium_meta`` says where and
  when the call ran (``node``, ``node_id``, ``started``, ``seconds``, ``pid``). An unknown node
  raises ``InvalidValueError``, a call after ``shutdown()`` ``ShutDownError``.
- **Failures.** The Future resolves to the value or raises ``TaskFailedError``: the task's own
  exception (``user``; ``MemoryError`` -> ``oom``); a dead or suspect node, crashed worker,
  lost object or unschedulable task -> ``worker_lost`` (retried by the engine without using the
  task's retries); Ray's memory monitor -> ``oom``; past ``call.timeout`` -> ``timeout``;
  ``kill(future)`` -> ``cancelled`` (its actor is killed, the calls queued behind it fail as
  ``worker_lost``; a Ray task gets ``ray.cancel(force=True)``). Ray never retries or restarts
  on its own (``max_retries=0``, ``max_restarts=0``): every attempt is the engine's.
- **Parts.** The executor owns the attempts' life cycle (launch, deliver, fail, finish, abort,
  timeouts) and composes the package's other parts through the Protocols it implements
  (``LaneHost``, ``WaitHost``, ``HealthHost``); ``Completer`` runs what must not run in Ray's
  callback thread.

Invariants: every returned Future resolves exactly once; a killed or timed-out attempt's late
outcome is discarded; the driver never unpickles code sent by anyone but itself; one lock (the
executor's, shared with its parts) guards the attempts and the lanes; this package never imports
the store.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, InvalidStateError
from typing import Any, cast

from podium.errors import (
    CANCELLED,
    TIMEOUT,
    WORKER_LOST,
    ErrorRecord,
    InvalidValueError,
    ShutDownError,
    TaskFailedError,
)
from podium.executors.deadlines import Deadlines
from podium.executors.failure import failure
from podium.executors.ray.base import Attempt, RayFuture, classify, never_ran, ray_api
from podium.executors.ray.cluster import NODE_LABEL, RayNode, ray_nodes, ray_options
from podium.executors.ray.completer import Completer
from podium.executors.ray.connect import LOCAL, connect
from podium.executors.ray.gang import RayGangs
from podium.executors.ray.health import PROBE_PERIOD, NodeHealth, raylets
from podium.executors.ray.lanes import BUDGET, ActorLanes
from podium.executors.ray.member import run_placed
from podium.executors.ray.payload import Payloads
from podium.executors.ray.wait import NodeWait
from podium.executors.ray.worker import Stored
from podium.model.cluster import Cluster, Node
from podium.model.resources import Resources
from podium.model.task import TaskCall
from podium.registry import REGISTRY, Registry
from podium.taskcontext import of_call
from podium.types import AttemptMeta

#: Ray runs each attempt once: every retry is the engine's.
_ONCE = {"max_retries": 0, "retry_exceptions": False}
#: Seconds a call whose node is gone waits for another node that can hold it.
PENDING_TIMEOUT = 300.0
#: Results at least this large (bytes) stay referenced in Ray's object store for downstream calls.
LARGE_RESULT = 100 * 1024
#: At most this many bytes of results are kept referenced (oldest dropped first).
HOLD_BYTES = 1 << 30


class RayExecutor:
    """Runs calls on the Ray nodes the engine chose (see the module docstring). ``launch``,
    ``arm``, ``deliver``, ``fail``, ``finish``, ``abort``, ``closed`` and ``node_lost`` are for
    its parts (``LaneHost``, ``WaitHost``, ``HealthHost``), not for the engine."""

    name = "ray"
    runs_gangs = True  # types.GangExecutor: RayGangs starts their workers

    def __init__(
        self,
        address: str | None = None,
        *,
        cluster: Cluster | None = None,
        registry: Registry = REGISTRY,
        init: Mapping[str, Any] | None = None,
        runtime_env: Mapping[str, Any] | None = None,
        pending_timeout: float = PENDING_TIMEOUT,
        large_result: int = LARGE_RESULT,
        hold_bytes: int = HOLD_BYTES,
        label: str = NODE_LABEL,
        on_nodes_changed: Callable[[Sequence[Node]], None] | None = None,
        budget: float = BUDGET,
        probe_period: float | None = PROBE_PERIOD,
    ) -> None:
        """Connect to Ray at ``address`` (``"host:port"``, ``"ray://..."``, ``"auto"``; ``None``: the
        Ray this process uses, else ``ray.init()``), or start a local one (``"local"``). ``init``
        adds ``ray.init`` arguments; ``probe_period`` paces ``health`` (None, or Ray Client: off)."""
        api = ray_api(local=address == LOCAL)
        self._ray = ray = api.ray
        self._owns = connect(ray, address, label, init, runtime_env)
        self._affinity = api.node_affinity
        self._remote = ray.remote(run_placed)
        self._cluster = cluster
        self._label = label
        self._on_change = on_nodes_changed
        self._lock = threading.RLock()
        self._attempts: dict[Future[Any], Attempt] = {}
        self._live: dict[str, RayNode] = {}
        self._live_ids: frozenset[str] = frozenset()
        self._epoch = 0  # changes whenever the live set does
        self._names: dict[str, str] = {}  # Ray node id -> Podium name (dead nodes too)
        self._fns: dict[tuple[Resources, str], Any] = {}
        self._timer: Deadlines[Attempt] | None = None
        self._closed = False
        self._completer = Completer()
        self._payloads = Payloads(registry, self._lock, large_result, hold_bytes)
        self._lanes = ActorLanes(self, api, self._lock, self._completer, self._payloads, budget)
        self._wait = NodeWait(self, api, self._lock, self._completer, pending_timeout)
        self._gangs = RayGangs(self, api, self._lock, self._completer, self._payloads)
        client = (address or os.environ.get("RAY_ADDRESS", "")).startswith("ray://")
        self._health = NodeHealth(self, self._lock, None if client else probe_period)
        self.refresh()
        self._health.start()

    # ------------------------------------------------------------------ nodes

    def refresh(self) -> list[Node]:
        """Re-read Ray's node table; return the live nodes but suspect ones (tell any change)."""
        raw = self._ray.nodes()
        with self._lock:
            self._health.set_raylets(raylets(raw))
            infos = ray_nodes(raw, self._cluster, self._label, self._health.suspects())
            live = {i.name: i for i in infos if i.alive}
            before = {n: i.node_id for n, i in self._live.items()}
            self._live = live
            self._live_ids = frozenset(i.node_id for i in live.values())
            changed = before != {n: i.node_id for n, i in live.items()}
            if changed:
                self._epoch += 1
            self._lanes.set_nodes({i.node_id: i.node.capacity.cpu for i in infos if i.alive})
            for i in infos:
                if i.alive or i.node_id not in self._names:
                    self._names[i.node_id] = i.name
            nodes = [live[n].node for n in sorted(live)]
        if self._on_change is not None and changed:
            self._on_change(nodes)
        return nodes

    def nodes_epoch(self) -> int:
        """A number that changes whenever the live nodes do (a node lost, suspect, back, joined)."""
        return self._epoch

    def nodes(self) -> Sequence[Node]:
        return self.refresh()

    def node_id(self, name: str) -> str:
        """The Ray node id of the live Podium node ``name`` (``KeyError`` if none is live)."""
        return self._live[name].node_id

    def node_name(self, node_id: str) -> str:
        """The Podium name of a Ray node id (the id itself if never seen)."""
        return self._names.get(node_id, node_id)

    # ------------------------------------------------------------------ Executor protocol

    def submit(self, call: TaskCall, follow: Future[Any] | None = None) -> Future[Any]:
        """Run ``call``; with ``follow``, after that Future's call, on the same worker (see
        ``lanes``)."""
        if self._closed:
            raise ShutDownError(f"executor {self.name!r} is shut down")
        if call.spec.workers > 1 and call.grants:
            return self._gangs.submit(call)
        target = self._live.get(call.node)
        if target is None:
            self.refresh()
            target = self._live.get(call.node)
            if target is None and call.node not in self._names.values():
                known = ", ".join(sorted(self._live))
                msg = f"task {call.task_id!r}: unknown node {call.node!r} (nodes: {known})"
                raise InvalidValueError(msg)
        fut = RayFuture()
        fut.set_running_or_notify_cancel()
        att = Attempt(call, fut)
        with self._lock:
            self._attempts[fut] = att
        if target is None:
            self._relocate(att)
        elif follow is not None:
            self._lanes.follow(att, follow, target.node_id)
        else:
            self.launch(att, target.node_id)
        return fut

    def kill(self, future: Future[Any]) -> None:
        """Cancel the attempt (``ray.cancel(force=True)``); its Future fails as ``cancelled``."""
        att = self._attempts.get(future)
        if att is None and self._gangs.owns(future):
            self._gangs.kill(future)
        elif att is not None:
            self.abort(att, CANCELLED, f"task {att.call.task_id!r} was cancelled", retryable=False)

    def shutdown(self, wait: bool = True) -> None:
        """Cancel every running attempt, forget held results and, if this executor started or
        connected Ray, disconnect (a local Ray it started stops)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            attempts = list(self._attempts.values())
            self._payloads.clear()
        idle = self._lanes.take_idle()
        for att in attempts:
            msg = f"task {att.call.task_id!r} was cancelled: the executor shut down"
            self.abort(att, CANCELLED, msg, retryable=False)
        for lane in idle:
            self._lanes.kill(lane)
        self._gangs.stop_all()
        if self._timer is not None:
            self._timer.stop()
        self._health.stop()
        self._completer.stop()
        if self._owns:
            self._ray.shutdown()

    def queue_limits(self, node: str) -> tuple[int, float]:
        """For Podium node ``node``: how many calls may wait behind a running call on a lane,
        and the round trip of a call beyond its run time (seconds); (0, 0) until measured."""
        info = self._live.get(node)
        return self._lanes.limits(info.node_id if info is not None else None)

    def lane_stats(self) -> dict[str, int]:
        """Calls and batches sent to lanes, calls queued behind another on its lane, lanes made."""
        return self._lanes.stats()

    def waiting(self) -> dict[str, str]:
        """Task instances waiting for a node that can hold them, with the reason."""
        return self._wait.waiting()

    def held(self) -> int:
        """How many results are held in Ray's object store for downstream calls."""
        return len(self._payloads)

    @property
    def closed(self) -> bool:
        """Whether ``shutdown`` was called."""
        return self._closed

    def launch(self, att: Attempt, node_id: str | None, strategy: Any = None) -> None:
        """Run ``att``: on a lane of ``node_id`` if it needs no gpu, else (or with a Ray
        scheduling ``strategy``) as a Ray task holding its resources; if ``node_id`` is no
        longer live, see ``_relocate``."""
        call = att.call
        if strategy is None and node_id:
            if node_id not in self._live_ids:
                self._relocate(att)
                return
            att.node_id = node_id
        if strategy is None and node_id and not call.resources.gpu:
            self._lanes.assign(att, node_id)
            return
        if self._completer.in_callback():  # submitting a Ray task may block: not in Ray's own thread
            self._completer.defer(self.launch, att, node_id, strategy)
            return
        refs: list[Any] = []
        blob = self._payloads.build(att, refs, {})
        opts = ray_options(call.resources)
        if strategy is None:  # the same options for every call of these resources on this node
            key = (call.resources, node_id or "")
            fn = self._fns.get(key)
            if fn is None:
                strategy = self._affinity(node_id, soft=False)
                fn = self._fns[key] = self._remote.options(**opts, scheduling_strategy=strategy, **_ONCE)
        else:
            fn = self._remote.options(**opts, scheduling_strategy=strategy, **_ONCE)
        with self._lock:
            if att.stopped:  # killed or timed out before it launched
                return
            att.ref = ref = fn.remote(of_call(call), blob, *refs)
        if call.timeout is not None:
            self.arm(att, time.monotonic())
        ref.future().add_done_callback(lambda rf: self._on_done(att, rf))

    def _on_done(self, att: Attempt, rf: Future[Any]) -> None:
        """Done-callback of an attempt's Ray future (usually in Ray's thread): a result is
        delivered here, a Ray failure (which needs blocking Ray calls) in the completer thread."""
        exc = rf.exception()
        if exc is not None:
            self._completer.defer(self.fail, att, exc)
            return
        value, meta = rf.result()
        self._completer.as_callback(self.deliver, att, value, meta, -1)

    def fail(self, att: Attempt, exc: BaseException, refresh: bool = True) -> bool:
        """Fail the attempt with what Ray raised (completer thread); if it never ran (its node
        had died), relocate it. A lost worker probes its node and drops the held results it
        used; with ``refresh``, the node table is re-read; returns whether it was."""
        call = att.call
        if never_ran(exc) and not att.rerouted and not att.stopped:
            att.rerouted, att.ref = True, None
            if refresh:
                with contextlib.suppress(Exception):
                    self.refresh()
            self._relocate(att)
            return refresh
        err = classify(exc, call.task_id, call.node)
        lost = err.kind == WORKER_LOST and not att.stopped
        if lost:
            self._payloads.forget(att.held)
            if att.node_id is not None:  # before the engine hears of it: its retry avoids a dead node
                self._health.check(att.node_id)
            if refresh:
                with contextlib.suppress(Exception):
                    self.refresh()
        self.finish(att, error=TaskFailedError(err))
        return lost and refresh

    def deliver(self, att: Attempt, value: Any, meta: dict[str, Any], pos: int) -> None:
        """A worker's ``(value, meta)`` for the attempt (``pos``: its place in a lane's reply);
        a ``Stored`` value is read in the completer thread (``Payloads.read`` may block)."""
        if type(value) is Stored and self._completer.in_callback():
            self._completer.defer(self.deliver, att, value, meta, pos)
            return
        att.lane = None
        meta["node"] = self._names.get(meta.get("node_id", ""), meta.get("node_id", ""))
        att.future.podium_meta = cast(AttemptMeta, meta)  # the worker's keys are AttemptMeta's
        if "error" in meta:
            self.finish(att, error=TaskFailedError(ErrorRecord.from_dict(meta["error"])))
            return
        try:
            value, ref, pos = self._payloads.read(value, att.ref, pos)
        except Exception as exc:  # its object was lost with the worker that put it
            self.fail(att, exc)
            return
        if meta.get("size", 0) >= self._payloads.large and ref is not None:
            self._payloads.hold(value, ref, int(meta["size"]), pos)
        self.finish(att, value=value)

    def finish(self, att: Attempt, value: Any = None, error: BaseException | None = None) -> None:
        """Resolve the attempt's Future (a late outcome of a stopped attempt is dropped)."""
        with self._lock:
            self._attempts.pop(att.future, None)
            pg, att.pg = att.pg, None
        if pg is not None:
            self._wait.remove_pg(pg)
        try:
            if error is not None:
                att.future.set_exception(error)
            else:
                att.future.set_result(value)
        except InvalidStateError:  # killed or timed out meanwhile: the late outcome is dropped
            pass

    def abort(self, att: Attempt, kind: str, message: str, retryable: bool) -> None:
        """Fail the attempt's Future now, then force-cancel its Ray task and placement."""
        typ = "Cancelled" if kind == CANCELLED else "TimeoutError"
        err = failure(kind, typ, message, retryable=retryable)
        with self._lock:
            if att.stopped:
                return
            att.stopped = True
            self._attempts.pop(att.future, None)
            ref, pg, lane = att.ref, att.pg, att.lane
            att.pg = att.lane = None
            if lane is not None and att in lane.queue:  # not sent yet: just drop it
                lane.queue.remove(att)
                lane = None
                ref = None
        try:
            att.future.set_exception(err)
        except InvalidStateError:
            return
        if lane is not None:  # an actor call cannot be force-cancelled: kill its actor
            self._lanes.drop(lane)
        elif ref is not None:
            self._completer.best_effort(self._ray.cancel, ref, force=True)
        if pg is not None:
            self._wait.remove_pg(pg)

    def _relocate(self, att: Attempt) -> None:
        """``att``'s node is gone or suspect: fail it unrun as a lost worker if a live node could
        hold it (the engine places it again), else wait for a node that can (``wait``)."""
        call = att.call
        with self._lock:
            fits = any(call.resources.fits_in(i.node.capacity) for i in self._live.values())
        if not fits:
            self._wait.start(att)
            return
        att.node_id = None
        msg = f"task {call.task_id!r} was not started: node {call.node!r} is gone or not answering"
        self.finish(att, error=failure(WORKER_LOST, "NodeLost", msg))

    def node_lost(self, node_id: str, reason: str) -> None:
        """Node ``node_id`` stopped answering: fail what was sent there as lost workers."""
        self._completer.defer(self._lose_node, node_id, reason)

    def _lose_node(self, node_id: str, reason: str) -> None:
        with self._lock:
            atts = [a for a in self._attempts.values() if a.node_id == node_id and not a.stopped]
        lost = f"lost node {self.node_name(node_id)!r}: it stopped answering ({reason})"
        self._gangs.node_lost(node_id, lost)
        for lane in {a.lane for a in atts if a.lane is not None}:
            self._lanes.lost(lane, failure(WORKER_LOST, "NodeLost", f"a worker {lost}"))
        for att in [a for a in atts if a.lane is None and a.ref is not None]:  # Ray tasks: stop them
            self._completer.best_effort(self._ray.cancel, att.ref, force=True)
            self.finish(att, error=failure(WORKER_LOST, "NodeLost", f"task {att.call.task_id!r} {lost}"))

    # ------------------------------------------------------------------ timeouts

    def arm(self, att: Attempt, start: float) -> None:
        """Schedule the attempt's timeout from ``start`` (``time.monotonic()``)."""
        att.armed = True
        timeout = att.call.timeout
        if timeout is not None and not att.future.done():
            self._timeouts().schedule(start + timeout, att)

    def _timeouts(self) -> Deadlines[Attempt]:
        with self._lock:
            if self._timer is None:
                self._timer = Deadlines("podium-ray-timeouts", self._expire, lambda a: a.future.done())
            return self._timer

    def _expire(self, att: Attempt) -> None:
        if not att.future.done():
            call = att.call
            msg = f"task {call.task_id!r} timed out after {call.timeout:g}s (its Ray task was cancelled)"
            self.abort(att, TIMEOUT, msg, retryable=True)
