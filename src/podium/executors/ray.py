"""``RayExecutor``: runs task calls on a Ray cluster, each on the node its plan chose.

The only module that imports ``ray`` (lazily: constructing a ``RayExecutor`` imports it, and a
worker imports it to run a call). Install with the ``ray`` extra.

- **Nodes.** Ray nodes become Podium nodes (``raycluster``: name from the ``podium-node`` label,
  capacity from Ray's resources, prices and speed from an optional ``Cluster``). ``nodes()``
  and ``refresh()`` list the live ones; ``on_nodes_changed`` is called with the new list when
  the live set changes (a node died or joined).
- **Placement.** A call runs on the Ray node named ``call.node``. A call that needs no gpu runs
  on a *lane* of that node: a pooled ``PodiumWorker`` actor that runs its calls in order and
  takes them in batches (``raylanes``; ``submit(call, follow=f)`` queues a call behind ``f``'s
  on its lane, and ``queue_limits(node)`` tells the engine how deep it may queue). A gpu call
  is a Ray task with the same hard affinity holding ``call.resources`` (cpu -> ``num_cpus``,
  gpu -> ``num_gpus``, memory, custom resources), so Ray assigns its devices. If that node is gone,
  a live node with the same name (a replacement) is used; if there is none, the call waits
  for any node that can hold it (``raywait``: listed by ``waiting()``, at most
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
  is handed to the executor's completer thread.

Invariants: every returned Future resolves exactly once; a killed or timed-out attempt's late
outcome is discarded; the driver never unpickles code sent by anyone but itself; this module
never imports the store.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import secrets
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass
from typing import Any

from podium.errors import (
    CANCELLED,
    OOM,
    TIMEOUT,
    USER_ERROR,
    WORKER_LOST,
    ErrorRecord,
    TaskFailedError,
    UsageError,
)
from podium.executors.deadlines import Deadlines
from podium.executors.raycluster import NODE_LABEL, RayNode, ray_nodes, ray_options
from podium.executors.raylanes import BUDGET, ActorLanes, Lane
from podium.executors.raywait import NodeWait
from podium.executors.rayworker import PodiumWorker, Slot, run_on_worker
from podium.executors.worker import dumps
from podium.model.cluster import Cluster, Node
from podium.model.resources import Resources
from podium.model.task import TaskCall
from podium.registry import REGISTRY, Registry

#: ``RayExecutor("local")`` starts a Ray instance on this machine (loopback only).
LOCAL = "local"
#: Seconds a call whose node is gone waits for another node that can hold it.
PENDING_TIMEOUT = 300.0
#: Results at least this large (bytes) stay referenced in Ray's object store for downstream calls.
LARGE_RESULT = 100 * 1024
#: At most this many bytes of results are kept referenced (oldest dropped first).
HOLD_BYTES = 1 << 30

log = logging.getLogger("podium.ray")


def import_ray(local: bool = False) -> Any:
    """Import ``ray``; before the first import, turn off usage stats and, for a local Ray, make
    it listen on loopback only (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``) and use token auth with
    a fresh random token unless one is set (nothing is written to ``~/.ray``)."""
    if "ray" not in sys.modules:
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        if local:
            os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
            os.environ.setdefault("RAY_AUTH_MODE", "token")
            if os.environ["RAY_AUTH_MODE"] == "token":
                os.environ.setdefault("RAY_AUTH_TOKEN", secrets.token_hex(32))
    try:
        import ray
    except ImportError:
        raise UsageError("Ray is not installed: pip install 'podium[ray]'") from None
    return ray


def classify(exc: BaseException, task_id: str, where: str = "") -> ErrorRecord:
    """The ``ErrorRecord`` of an exception Ray raised for an attempt (see the module docstring)."""
    import ray.exceptions as rex

    if isinstance(exc, TaskFailedError):
        return exc.record
    cause = getattr(exc, "cause", None) if isinstance(exc, rex.RayTaskError) else None
    lost = (
        rex.NodeDiedError,
        rex.WorkerCrashedError,
        rex.ActorDiedError,
        rex.ObjectLostError,
        rex.TaskUnschedulableError,
        rex.LocalRayletDiedError,
        rex.TaskPlacementGroupRemoved,
        rex.ActorUnschedulableError,
        rex.ActorUnavailableError,
    )
    first = (str(exc).strip().splitlines() or [""])[0]
    on = f" on node {where!r}" if where else ""
    if isinstance(exc, lost) or isinstance(cause, lost):
        msg = f"task {task_id!r} lost its Ray worker{on}: {type(cause or exc).__name__}: {first}"
        return ErrorRecord(type(cause or exc).__name__, msg, str(exc), True, WORKER_LOST)
    if isinstance(exc, rex.OutOfMemoryError) or isinstance(cause, rex.OutOfMemoryError):
        msg = f"task {task_id!r} was killed by Ray's memory monitor{on}: {first}"
        return ErrorRecord("OutOfMemoryError", msg, str(exc), True, OOM)
    if isinstance(exc, rex.TaskCancelledError):
        return ErrorRecord("Cancelled", f"task {task_id!r} was cancelled", str(exc), False, CANCELLED)
    retryable = not isinstance(exc, rex.RuntimeEnvSetupError)
    return ErrorRecord(type(exc).__name__, f"task {task_id!r}: {first}", str(exc), retryable, USER_ERROR)


def _never_ran(exc: BaseException) -> bool:
    """True if Ray could not even place the attempt (its node was already gone): nothing ran."""
    import ray.exceptions as rex

    if isinstance(exc, rex.TaskUnschedulableError | rex.ActorUnschedulableError):
        return True
    return isinstance(exc, rex.ActorDiedError) and "never ran" in str(exc)


#: Work for the completer thread: a function and its arguments.
_Job = tuple[Callable[..., None], tuple[Any, ...]]


@dataclass(eq=False)
class _Attempt:
    call: TaskCall
    future: Future[Any]
    ref: Any = None  # ObjectRef of its reply (a Ray task's (value, meta), or a lane's batch)
    pg: Any = None  # placement group while waiting for a node
    held: tuple[int, ...] = ()  # ids of held values passed by reference
    stopped: bool = False  # killed or timed out: never launch, drop any late outcome
    rerouted: bool = False  # its node vanished before it started: it went to ``_place``
    lane: Lane | None = None  # the lane running it (None: it runs as a Ray task)
    armed: bool = False  # its deadline is scheduled


class RayExecutor(ActorLanes, NodeWait):
    """Runs calls as Ray tasks on the nodes the engine chose (see the module docstring)."""

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
        self._ray = ray = import_ray(local=address == LOCAL)
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
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        self._affinity = NodeAffinitySchedulingStrategy
        self._remote = ray.remote(run_on_worker)
        # the lanes' actors hold no Ray resources (the engine accounts for the node's
        # capacity); they only pin a warm worker process to a node
        self._worker_cls = ray.remote(num_cpus=0, max_concurrency=1, max_restarts=0, max_task_retries=0)(
            PodiumWorker
        )
        self._init_lanes(budget)
        self._cpus: dict[str, float] = {}  # Ray node id -> its cpus (caps its idle lanes)
        self._tls = threading.local()  # .ray_cb: this thread is running a Ray done-callback
        self._cluster = cluster
        self._registry = registry
        self._pending_timeout = pending_timeout
        self._large = large_result
        self._hold_limit = hold_bytes
        self._label = label
        self._on_change = on_nodes_changed
        self._lock = threading.RLock()
        self._attempts: dict[Future[Any], _Attempt] = {}
        self._live: dict[str, RayNode] = {}
        self._names: dict[str, str] = {}  # Ray node id -> Podium name (dead nodes too)
        self._dead: set[str] = set()
        self._fns: dict[tuple[Resources, str], Any] = {}
        self._headers: dict[int, tuple[Any, dict[str, str | None], bytes]] = {}
        self._held: OrderedDict[int, tuple[Any, Any, int, int]] = OrderedDict()
        self._held_bytes = 0
        self._waiting: dict[str, str] = {}
        self._timer: Deadlines[_Attempt] | None = None
        self._closed = False
        # Ray runs done-callbacks on its own io thread, where blocking Ray calls (cancel, nodes,
        # placement groups) deadlock; completions are handed to this thread instead.
        # A success is handled in Ray's thread (one hand-off less per task); anything that
        # may block on Ray is deferred to this thread (``_defer``).
        self._done: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._completer = threading.Thread(target=self._complete_loop, name="podium-ray-done", daemon=True)
        self._completer.start()
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
            self._cpus = {i.node_id: i.node.capacity.cpu for i in infos if i.alive}
            for gone in [n for n in self._idle if n not in self._cpus]:
                del self._idle[gone]  # their actors died with their node
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
        ``raylanes``)."""
        if self._closed:
            raise RuntimeError(f"executor {self.name!r} is shut down")
        target = self._live.get(call.node)
        if target is None or target.node_id in self._dead:
            self.refresh()
            target = self._live.get(call.node)
            if target is None and call.node not in self._names.values():
                known = ", ".join(sorted(self._live))
                raise ValueError(f"task {call.task_id!r}: unknown node {call.node!r} (nodes: {known})")
        fut: Future[Any] = Future()
        fut.set_running_or_notify_cancel()
        fut.podium_task_id = call.task_id  # type: ignore[attr-defined]
        att = _Attempt(call, fut)
        with self._lock:
            self._attempts[fut] = att
        if target is None:
            self._start_placing(att)
        elif follow is not None:
            self._follow(att, follow, target.node_id)
        else:
            self._launch(att, target.node_id)
        return fut

    def kill(self, future: Future[Any]) -> None:
        """Cancel the attempt (``ray.cancel(force=True)``); its Future fails as ``cancelled``."""
        att = self._attempts.get(future)
        if att is not None:
            self._stop(att, CANCELLED, f"task {att.call.task_id!r} was cancelled", retryable=False)

    def shutdown(self, wait: bool = True) -> None:
        """Cancel every running attempt, forget held results and, if this executor started or
        connected Ray, disconnect (a local Ray it started stops)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            attempts = list(self._attempts.values())
            self._held.clear()
            self._held_bytes = 0
        idle = self._idle_lanes()
        for att in attempts:
            msg = f"task {att.call.task_id!r} was cancelled: the executor shut down"
            self._stop(att, CANCELLED, msg, retryable=False)
        for lane in idle:
            self._kill_actor(lane.actor)
        if self._timer is not None:
            self._timer.stop()
        self._done.put(None)
        if self._owns:
            self._ray.shutdown()

    # ------------------------------------------------------------------ running

    def _launch(self, att: _Attempt, node_id: str | None, strategy: Any = None) -> None:
        call = att.call
        if strategy is None and node_id and not call.resources.gpu:
            self._on_new_lane(att, node_id)
            return
        if self._in_callback():  # submitting a Ray task may block: not in Ray's own thread
            self._defer(self._launch, att, node_id, strategy)
            return
        refs: list[Any] = []
        blob = self._payload(att, refs, {})
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
            self._arm(att, time.monotonic())
        ref.future().add_done_callback(lambda rf: self._on_done(att, rf))

    def _best_effort(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Call ``fn``, a Ray call that may block, ignoring its failure; from Ray's own
        callback thread (where blocking Ray calls deadlock) it runs in the completer thread."""
        if self._in_callback():
            self._defer(lambda: self._best_effort(fn, *args, **kwargs))
            return
        with contextlib.suppress(Exception):
            fn(*args, **kwargs)

    def _kill_actor(self, actor: Any) -> None:
        self._best_effort(self._ray.kill, actor, no_restart=True)

    def _in_callback(self) -> bool:
        return getattr(self._tls, "ray_cb", False)

    def _defer(self, fn: Callable[..., None], *args: Any) -> None:
        self._done.put((fn, args))

    def _on_done(self, att: _Attempt, rf: Future[Any]) -> None:
        """Done-callback of an attempt's Ray future (usually in Ray's thread): a result is
        handled here, a Ray failure (which needs blocking Ray calls) in the completer thread."""
        if rf.exception() is not None:
            self._defer(self._completed, att, rf)
            return
        self._as_callback(self._completed, att, rf)

    def _as_callback(self, fn: Callable[..., None], *args: Any) -> None:
        """Run ``fn`` marked as Ray's callback thread: whatever may block on Ray is deferred."""
        tls = self._tls
        outer = getattr(tls, "ray_cb", False)
        tls.ray_cb = True
        try:
            fn(*args)
        finally:
            tls.ray_cb = outer

    def _payload(self, att: _Attempt, refs: list[Any], index: dict[int, int]) -> bytes:
        """The pickled ``(header, task_id, kwargs, config, timeout)`` of the attempt's call;
        kwargs that are held results become ``Slot``s into ``refs`` (extended here; ``index``
        maps a ref's id to its place, so a batch passes each ref once)."""
        call = att.call
        kwargs = call.kwargs
        if self._held and kwargs:
            swapped: dict[str, Any] | None = None
            ids = []
            with self._lock:
                for k, v in kwargs.items():
                    h = self._held.get(id(v))
                    if h is not None and h[0] is v:
                        swapped = dict(kwargs) if swapped is None else swapped
                        i = index.get(id(h[1]))
                        if i is None:
                            i = index[id(h[1])] = len(refs)
                            refs.append(h[1])
                        swapped[k] = Slot(i, h[3])
                        ids.append(id(v))
            if swapped is not None:
                kwargs = swapped
                att.held = tuple(ids)
        return dumps((self._header(call), call.task_id, kwargs, call.config, call.timeout))

    def _header(self, call: TaskCall) -> bytes:
        """Pickled ``(spec, registry snapshot)``, cached per spec (the same for all its calls)."""
        snapshot = self._registry.snapshot()
        got = self._headers.get(id(call.spec))
        if got is None or got[0] is not call.spec or got[1] != snapshot:
            if len(self._headers) >= 4096:
                self._headers.clear()
            got = self._headers[id(call.spec)] = (call.spec, snapshot, dumps((call.spec, snapshot)))
        return got[2]

    def _complete_loop(self) -> None:
        get = self._done.get
        while True:
            item = get()
            if item is None:
                return
            fn, args = item
            try:
                fn(*args)
            except Exception:  # never lose the completer thread
                log.exception("podium-ray: deferred %s failed", getattr(fn, "__name__", fn))
            del item, fn, args

    def _completed(self, att: _Attempt, rf: Future[Any]) -> None:
        """Turn the outcome of a Ray task's future into the attempt's result or error."""
        try:
            value, meta = rf.result()
        except BaseException as exc:
            self._ray_failed(att, exc)
            return
        self._delivered(att, value, meta, -1)

    def _ray_failed(self, att: _Attempt, exc: BaseException, refresh: bool = True) -> bool:
        """Fail the attempt with what Ray raised (completer thread). If its node died before it
        started (Ray's node table lagged), nothing ran: it is placed on a node that can hold it
        instead. A lost worker drops the held results it used. With ``refresh``, the node table
        is re-read when a node may have gone; returns whether it was."""
        call = att.call
        if _never_ran(exc) and not att.rerouted and not att.stopped:
            att.rerouted, att.ref = True, None
            if refresh:
                with contextlib.suppress(Exception):
                    self.refresh()
            self._start_placing(att)
            return refresh
        err = classify(exc, call.task_id, call.node)
        lost = err.kind == WORKER_LOST and not att.stopped
        if lost:
            self._forget(att.held)
            if refresh:
                with contextlib.suppress(Exception):
                    self.refresh()
        self._finish(att, error=TaskFailedError(err))
        return lost and refresh

    def _delivered(self, att: _Attempt, value: Any, meta: dict[str, Any], pos: int) -> None:
        """A worker's ``(value, meta)`` for the attempt (``pos``: its place in a lane's reply)."""
        att.lane = None
        meta["node"] = self._names.get(meta.get("node_id", ""), meta.get("node_id", ""))
        att.future.podium_meta = meta  # type: ignore[attr-defined]
        if "error" in meta:
            self._finish(att, error=TaskFailedError(ErrorRecord.from_dict(meta["error"])))
            return
        if meta.get("size", 0) >= self._large and att.ref is not None:
            self._hold(value, att.ref, int(meta["size"]), pos)
        self._finish(att, value=value)

    def _finish(self, att: _Attempt, value: Any = None, error: BaseException | None = None) -> None:
        with self._lock:
            self._attempts.pop(att.future, None)
            pg, att.pg = att.pg, None
        if pg is not None:
            self._remove_pg(pg)
        try:
            if error is not None:
                att.future.set_exception(error)
            else:
                att.future.set_result(value)
        except InvalidStateError:  # killed or timed out meanwhile: the late outcome is dropped
            pass

    def _stop(self, att: _Attempt, kind: str, message: str, retryable: bool) -> None:
        """Fail the attempt's Future now, then force-cancel its Ray task and placement."""
        typ = "Cancelled" if kind == CANCELLED else "TimeoutError"
        err = TaskFailedError(ErrorRecord(typ, message, retryable=retryable, kind=kind))
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
            self._drop_lane(lane)
            self._kill_actor(lane.actor)
        elif ref is not None:
            self._cancel(ref)
        if pg is not None:
            self._remove_pg(pg)

    def _cancel(self, ref: Any) -> None:
        self._best_effort(self._ray.cancel, ref, force=True)

    # ------------------------------------------------------------------ held results

    def _hold(self, value: Any, ref: Any, size: int, pos: int) -> None:
        with self._lock:
            if id(value) in self._held:
                return
            self._held[id(value)] = (value, ref, size, pos)
            self._held_bytes += size
            while self._held_bytes > self._hold_limit and self._held:
                _, (_, _, n, _) = self._held.popitem(last=False)
                self._held_bytes -= n

    def _forget(self, ids: tuple[int, ...]) -> None:
        """Drop held results an attempt used when it lost its worker (their object may be lost)."""
        with self._lock:
            for i in ids:
                h = self._held.pop(i, None)
                if h is not None:
                    self._held_bytes -= h[2]

    def held(self) -> int:
        """How many results are held in Ray's object store for downstream calls."""
        return len(self._held)

    # ------------------------------------------------------------------ timeouts

    def _timeouts(self) -> Deadlines[_Attempt]:
        with self._lock:
            if self._timer is None:
                self._timer = Deadlines("podium-ray-timeouts", self._expire, lambda a: a.future.done())
            return self._timer

    def _expire(self, att: _Attempt) -> None:
        if not att.future.done():
            call = att.call
            msg = f"task {call.task_id!r} timed out after {call.timeout:g}s (its Ray task was cancelled)"
            self._stop(att, TIMEOUT, msg, retryable=True)
