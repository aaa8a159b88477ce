"""``RayExecutor``: runs task calls on a Ray cluster, each on the node its plan chose.

Constructing a ``RayExecutor`` imports ``ray`` (through ``base.ray_api``). Install with the
``ray`` extra.

- **Nodes.** Ray nodes become Podium nodes (``cluster``: name from the ``podium-node`` label,
  capacity from Ray's resources, prices and speed from an optional ``Cluster``). ``nodes()``
  and ``refresh()`` list the live ones; ``on_nodes_changed`` is called with the new list when
  the live set changes (a node died or joined).
- **Placement.** A call runs on the Ray node named ``call.node``. A call that needs no gpu runs
  on a *lane* of that node: a pooled ``PodiumWorker`` actor that runs its calls in order and
  takes them in batches (``lanes``; ``submit(call, follow=f)`` queues a call behind ``f``'s
  on its lane, and ``queue_limits(node)`` tells the engine how deep it may queue). A gpu call
  is a Ray task with the same hard affinity holding ``call.resources`` (cpu -> ``num_cpus``,
  gpu -> ``num_gpus``, memory, custom resources), so Ray assigns its devices. If that node is gone,
  a live node with the same name (a replacement) is used; if there is none, the call waits
  for any node that can hold it (``wait``: listed by ``waiting()``, at most
  ``pending_timeout`` seconds, then it fails as ``timeout``).
- **Code.** Only plain data travels: the call's task id, arguments, config and timeout, and a
  header with its spec and the registry snapshot (pickled once per spec; workers cache it). The
  worker resolves the function by name through a registry rebuilt from the snapshot, so user
  modules must be importable on the workers (same machine: they are; a real cluster: ship
  them with ``runtime_env={"working_dir": ..., "py_modules": [...]}``).
- **Data.** A worker returns ``(value, meta)`` (a lane returns a batch of them); the reply
  stays in Ray's object store. When a result is at least ``large_result`` bytes, the reply's
  ObjectRef is kept (up to ``hold_bytes`` in all,
  oldest dropped first) and a downstream call whose keyword argument *is* that value (the
  engine passes results by identity) receives it from the object store instead of from the
  driver. The engine still receives every value and commits it to Podium's store.
- **Futures.** ``submit`` returns a ``RayFuture``, an ``AttemptFuture`` (``podium.types``)
  whose ``podium_meta`` (``AttemptMeta``) says where and when the call really ran: ``node``
  and ``node_id`` of the Ray node, ``started`` (wall time on the worker), ``seconds``, ``pid``,
  ``size``. A call naming a node Ray never reported raises ``InvalidValueError``; a call after
  ``shutdown()`` raises ``ShutDownError``.
- **Failures.** The Future resolves to the value or raises ``TaskFailedError``: the task's
  own exception (``user``; ``MemoryError`` -> ``oom``); a dead node, crashed worker, lost object
  or unschedulable task -> ``worker_lost`` (retryable, so the engine retries it without using
  the task's retries); Ray's memory monitor -> ``oom``; past ``call.timeout`` -> ``timeout``;
  ``kill(future)`` -> ``cancelled``. A killed or timed-out call's actor is killed (``ray.kill``;
  the calls queued behind it on its lane fail as ``worker_lost``; a call not yet sent is just
  dropped; a Ray task gets ``ray.cancel(force=True)``); a new lane is made when next needed.
  Ray never retries or restarts on its own (``max_retries=0``, ``max_restarts=0``): every
  attempt is the engine's.
- **Threads.** Ray runs done-callbacks on its own thread; a result is handled there (one
  thread hand-off less per task), while anything that may block on Ray (``ray.kill``,
  ``ray.cancel``, creating an actor, ``ray.nodes()``, placement groups) and every Ray failure
  is handed to the executor's completer thread (``completer``).
- **Parts.** The executor owns the attempts' life cycle (launch, deliver, fail, finish, abort,
  timeouts) and composes the package's other parts: ``ActorLanes`` and ``NodeWait`` call back
  through the ``LaneHost`` and ``WaitHost`` Protocols it implements; ``Payloads`` builds what a
  call sends and holds large results; ``Completer`` runs what must not run in Ray's thread.

Invariants: every returned Future resolves exactly once; a killed or timed-out attempt's late
outcome is discarded; the driver never unpickles code sent by anyone but itself; one lock (the
executor's, shared with its parts) guards the attempts and the lanes; this package never imports
the store.
"""

from __future__ import annotations

import contextlib
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
    UsageError,
)
from podium.executors.deadlines import Deadlines
from podium.executors.failure import failure
from podium.executors.ray.base import Attempt, RayFuture, classify, never_ran, ray_api
from podium.executors.ray.cluster import NODE_LABEL, RayNode, ray_nodes, ray_options
from podium.executors.ray.completer import Completer
from podium.executors.ray.lanes import BUDGET, ActorLanes
from podium.executors.ray.payload import Payloads
from podium.executors.ray.wait import NodeWait
from podium.executors.ray.worker import run_on_worker
from podium.model.cluster import Cluster, Node
from podium.model.resources import Resources
from podium.model.task import TaskCall
from podium.registry import REGISTRY, Registry
from podium.types import AttemptMeta

#: ``RayExecutor("local")`` starts a Ray instance on this machine (loopback only).
LOCAL = "local"
#: Seconds a call whose node is gone waits for another node that can hold it.
PENDING_TIMEOUT = 300.0
#: Results at least this large (bytes) stay referenced in Ray's object store for downstream calls.
LARGE_RESULT = 100 * 1024
#: At most this many bytes of results are kept referenced (oldest dropped first).
HOLD_BYTES = 1 << 30


class RayExecutor:
    """Runs calls as Ray tasks on the nodes the engine chose (see the module docstring).

    ``launch``, ``arm``, ``deliver``, ``fail``, ``finish``, ``abort`` and ``closed`` are the
    attempts' life cycle its lanes and node waits call back (``LaneHost``, ``WaitHost``); they
    are not for the engine."""

    name = "ray"

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
    ) -> None:
        """Connect to Ray at ``address`` (``"host:port"``, ``"ray://..."``, ``"auto"``), or start a
        local Ray with ``"local"``; ``None`` reuses the Ray this process is already connected to
        (else behaves like ``ray.init()``). ``init`` adds keyword arguments to ``ray.init``."""
        api = ray_api(local=address == LOCAL)
        self._ray = ray = api.ray
        self._owns = False
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"log_to_driver": False, **dict(init or {})}
            if runtime_env:
                kwargs["runtime_env"] = dict(runtime_env)
            if address == LOCAL:  # this process's own Ray, one node named "local"
                kwargs.setdefault("include_dashboard", False)
                kwargs.setdefault("labels", {label: "local"})
            try:
                ray.init(address=address, **kwargs)
            except (ConnectionError, ValueError, RuntimeError, TimeoutError) as e:
                first = (str(e).strip().splitlines() or [""])[0]
                raise UsageError(f"cannot connect to Ray at {address or 'auto'!r}: {first}") from None
            self._owns = True
        self._affinity = api.node_affinity
        self._remote = ray.remote(run_on_worker)
        self._cluster = cluster
        self._label = label
        self._on_change = on_nodes_changed
        self._lock = threading.RLock()
        self._attempts: dict[Future[Any], Attempt] = {}
        self._live: dict[str, RayNode] = {}
        self._names: dict[str, str] = {}  # Ray node id -> Podium name (dead nodes too)
        self._dead: set[str] = set()
        self._fns: dict[tuple[Resources, str], Any] = {}
        self._timer: Deadlines[Attempt] | None = None
        self._closed = False
        self._completer = Completer()
        self._payloads = Payloads(registry, self._lock, large_result, hold_bytes)
        self._lanes = ActorLanes(self, api, self._lock, self._completer, self._payloads, budget)
        self._wait = NodeWait(self, api, self._lock, self._completer, pending_timeout)
        self.refresh()

    # ------------------------------------------------------------------ nodes

    def refresh(self) -> list[Node]:
        """Re-read Ray's node table; return the live nodes (and tell ``on_nodes_changed``)."""
        infos = ray_nodes(self._ray.nodes(), self._cluster, self._label)
        with self._lock:
            live = {i.name: i for i in infos if i.alive}
            before = {n: i.node_id for n, i in self._live.items()}
            self._live = live
            self._dead = {i.node_id for i in infos if not i.alive}
            self._lanes.set_nodes({i.node_id: i.node.capacity.cpu for i in infos if i.alive})
            for i in infos:
                if i.alive or i.node_id not in self._names:
                    self._names[i.node_id] = i.name
            nodes = [live[n].node for n in sorted(live)]
        if self._on_change is not None and before != {n: i.node_id for n, i in live.items()}:
            self._on_change(nodes)
        return nodes

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
        target = self._live.get(call.node)
        if target is None or target.node_id in self._dead:
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
            self._wait.start(att)
        elif follow is not None:
            self._lanes.follow(att, follow, target.node_id)
        else:
            self.launch(att, target.node_id)
        return fut

    def kill(self, future: Future[Any]) -> None:
        """Cancel the attempt (``ray.cancel(force=True)``); its Future fails as ``cancelled``."""
        att = self._attempts.get(future)
        if att is not None:
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
        if self._timer is not None:
            self._timer.stop()
        self._completer.stop()
        if self._owns:
            self._ray.shutdown()

    # ------------------------------------------------------------------ queueing and state

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

    # ------------------------------------------------------------------ running

    def launch(self, att: Attempt, node_id: str | None, strategy: Any = None) -> None:
        """Run ``att``: on a lane of ``node_id`` if it needs no gpu, else (or with a Ray
        scheduling ``strategy``) as a Ray task holding its resources."""
        call = att.call
        if strategy is None and node_id and not call.resources.gpu:
            self._lanes.assign(att, node_id)
            return
        if self._completer.in_callback():  # submitting a Ray task may block: not in Ray's own thread
            self._completer.defer(self.launch, att, node_id, strategy)
            return
        refs: list[Any] = []
        blob = self._payloads.build(att, refs, {})
        if strategy is None:
            key = (call.resources, node_id or "")
            fn = self._fns.get(key)
            if fn is None:
                fn = self._remote.options(
                    **ray_options(call.resources),
                    scheduling_strategy=self._affinity(node_id, soft=False),
                    max_retries=0,
                    retry_exceptions=False,
                )
                self._fns[key] = fn
        else:
            fn = self._remote.options(
                **ray_options(call.resources),
                scheduling_strategy=strategy,
                max_retries=0,
                retry_exceptions=False,
            )
        with self._lock:
            if att.stopped:  # killed or timed out before it launched
                return
            att.ref = ref = fn.remote(blob, *refs)
        if call.timeout is not None:
            self.arm(att, time.monotonic())
        ref.future().add_done_callback(lambda rf: self._on_done(att, rf))

    def _on_done(self, att: Attempt, rf: Future[Any]) -> None:
        """Done-callback of an attempt's Ray future (usually in Ray's thread): a result is
        handled here, a Ray failure (which needs blocking Ray calls) in the completer thread."""
        if rf.exception() is not None:
            self._completer.defer(self._completed, att, rf)
            return
        self._completer.as_callback(self._completed, att, rf)

    def _completed(self, att: Attempt, rf: Future[Any]) -> None:
        """Turn the outcome of a Ray task's future into the attempt's result or error."""
        try:
            value, meta = rf.result()
        except BaseException as exc:
            self.fail(att, exc)
            return
        self.deliver(att, value, meta, -1)

    def fail(self, att: Attempt, exc: BaseException, refresh: bool = True) -> bool:
        """Fail the attempt with what Ray raised (completer thread). If its node died before it
        started (Ray's node table lagged), nothing ran: it is placed on a node that can hold it
        instead. A lost worker drops the held results it used. With ``refresh``, the node table
        is re-read when a node may have gone; returns whether it was."""
        call = att.call
        if never_ran(exc) and not att.rerouted and not att.stopped:
            att.rerouted, att.ref = True, None
            if refresh:
                with contextlib.suppress(Exception):
                    self.refresh()
            self._wait.start(att)
            return refresh
        err = classify(exc, call.task_id, call.node)
        lost = err.kind == WORKER_LOST and not att.stopped
        if lost:
            self._payloads.forget(att.held)
            if refresh:
                with contextlib.suppress(Exception):
                    self.refresh()
        self.finish(att, error=TaskFailedError(err))
        return lost and refresh

    def deliver(self, att: Attempt, value: Any, meta: dict[str, Any], pos: int) -> None:
        """A worker's ``(value, meta)`` for the attempt (``pos``: its place in a lane's reply)."""
        att.lane = None
        meta["node"] = self._names.get(meta.get("node_id", ""), meta.get("node_id", ""))
        att.future.podium_meta = cast(AttemptMeta, meta)  # the worker's keys are AttemptMeta's
        if "error" in meta:
            self.finish(att, error=TaskFailedError(ErrorRecord.from_dict(meta["error"])))
            return
        if meta.get("size", 0) >= self._payloads.large and att.ref is not None:
            self._payloads.hold(value, att.ref, int(meta["size"]), pos)
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
