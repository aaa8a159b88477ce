"""Gangs on Ray: the N workers of a gang-scheduled call, placed all or none and started together.

A part of ``RayExecutor`` (``RayGangs``, composed, not a mixin); what it needs from the executor
is declared by ``GangHost``. ``submit(call)`` runs a call whose spec has ``workers`` > 1, one
worker per ``call.grants`` entry (the engine granted each rank a node), and returns ONE future
for the attempt:

- **Placed all or none.** One placement group holds a bundle of the call's resources (cpu,
  gpu, memory, custom) per worker, each bundle on its rank's granted node (a label selector on
  Ray's ``ray.io/node-id``; an older Ray without them goes by the strategy alone), ``PACK``
  when the gang is on one node, else ``SPREAD``. Ray
  reserves every bundle at once or none, so no worker starts before all can.
- **Started together.** One ``member.GangMember`` actor per rank, in its bundle. Rank 0's
  actor first finds its node's IP and a port free there (``master``); every rank's ``run``
  takes that reply as an argument, so Ray starts them once it is known, each with
  torch.distributed's ``env://`` variables (``taskenv.rank_env``) and the GPUs Ray assigned it.
- **One attempt.** When every worker succeeded, the future resolves to rank 0's result (and
  its ``podium_meta``). As soon as one fails (its own error, or its process or node lost), the
  others are killed (``ray.kill``: a collective would otherwise wait for the dead one); after a
  worker's own error only ``PEER_GRACE`` seconds later, since that error is often a peer's death
  seen through a collective and the lost peer must report itself before the gang kills it; and
  once all have ended (at most ``STOP_GRACE`` seconds later) the attempt fails with the most
  telling failure (``failure.worst``: a lost worker, then out of memory, a timeout, the task's
  own error); workers the gang itself killed (``KILLED_MARK``) count only if nothing else
  failed. A lost
  worker makes the engine retry the whole gang as one attempt. A node the executor finds lost
  (``node_lost``) fails the gangs with a worker there at once.
- ``kill`` fails the attempt as ``cancelled``, a timeout (``call.timeout``, counted from the
  submission) as ``timeout``; both kill every worker.

Invariants: every future resolves exactly once; the actors are killed and the placement group
removed before the future resolves, whatever the outcome; a gang whose granted node is no
longer live starts nothing and fails as a lost worker (the engine places it again).
"""

from __future__ import annotations

import functools
import inspect
import threading
import time
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

from podium.errors import CANCELLED, TIMEOUT, USER_ERROR, WORKER_LOST, ErrorRecord, TaskFailedError
from podium.executors.deadlines import Deadlines
from podium.executors.failure import failure, worst
from podium.executors.ray.base import Attempt, RayApi, RayFuture, classify
from podium.executors.ray.cluster import ray_bundle, ray_options
from podium.executors.ray.completer import Completer
from podium.executors.ray.member import GangMember
from podium.executors.ray.payload import Payloads
from podium.executors.taskenv import rank_env
from podium.model.task import TaskCall
from podium.taskcontext import of_call
from podium.types import AttemptMeta

#: Seconds the workers of a stopped gang have to end before its attempt fails anyway.
STOP_GRACE = 30.0
#: After a worker's own error, how long its peers may take to report that they were lost.
PEER_GRACE = 5.0
#: Ray's label of a node's id (a bundle's label selector pins it to its granted node).
NODE_ID_LABEL = "ray.io/node-id"
#: What Ray says of an actor killed with ``ray.kill`` (a worker the gang itself stopped).
KILLED_MARK = "killed by `ray.kill`"
#: Variables of ``rank_env`` a member sets itself, from Ray (GPUs) or from rank 0 (the master).
_FROM_RAY = ("CUDA_VISIBLE_DEVICES", "PODIUM_GPUS", "MASTER_ADDR", "MASTER_PORT")


class GangHost(Protocol):
    """What gangs need from the executor that owns them: its live nodes."""

    def node_id(self, name: str) -> str:
        """The Ray node id of the live Podium node ``name`` (``KeyError`` if none is live)."""

    def node_name(self, node_id: str) -> str:
        """The Podium name of a Ray node id."""


@dataclass(eq=False)
class Gang:
    """One attempt of a gang-scheduled call, from ``submit`` until its future resolves."""

    call: TaskCall
    future: RayFuture
    node_ids: tuple[str, ...]  # the Ray node of each rank
    pg: Any = None
    actors: list[Any] = field(default_factory=list)
    refs: list[Any] = field(default_factory=list)  # each rank's ``run`` reply
    held: tuple[int, ...] = ()  # held results passed by reference
    left: int = 0  # workers whose reply has not come
    errors: list[BaseException] = field(default_factory=list)  # failures before the gang stopped
    after_stop: list[BaseException] = field(default_factory=list)  # failures it caused
    value: Any = None
    meta: dict[str, Any] | None = None
    stopping: bool = False
    done: bool = False


class RayGangs:
    """The gangs running on Ray (see the module docstring). ``lock`` is the executor's."""

    def __init__(
        self, host: GangHost, api: RayApi, lock: threading.RLock, completer: Completer, payloads: Payloads
    ) -> None:
        self._host = host
        self._api = api
        self._lock = lock
        self._completer = completer
        self._payloads = payloads
        self._gangs: dict[Future[Any], Gang] = {}
        self._member: Any = None  # the GangMember actor class
        self._timer: Deadlines[tuple[str, Gang]] | None = None
        params = inspect.signature(api.placement_group).parameters
        self._selectors = "bundle_label_selector" in params  # newer Rays only

    def owns(self, future: Future[Any]) -> bool:
        return future in self._gangs

    def submit(self, call: TaskCall) -> RayFuture:
        """Start the workers of ``call`` on the nodes of its grants (see the module docstring)."""
        fut = RayFuture()
        fut.set_running_or_notify_cancel()
        try:
            ids = tuple(self._host.node_id(g.node) for g in call.grants)
        except KeyError as e:
            gone = e.args[0]
            msg = f"task {call.task_id!r} was not started: node {gone!r} of its gang is gone or not answering"
            fut.set_exception(failure(WORKER_LOST, "NodeLost", msg))
            return fut
        gang = Gang(call, fut, ids, left=len(ids))
        with self._lock:
            self._gangs[fut] = gang
        if self._completer.in_callback():  # creating actors may block: not in Ray's own thread
            self._completer.defer(self._launch, gang)
        else:
            self._launch(gang)
        return fut

    def kill(self, future: Future[Any]) -> None:
        """Cancel the gang's attempt: it fails as ``cancelled`` and every worker is killed."""
        gang = self._gangs.get(future)
        if gang is not None:
            msg = f"task {gang.call.task_id!r} was cancelled"
            self._abort(gang, failure(CANCELLED, "Cancelled", msg, retryable=False))

    def stop_all(self) -> None:
        """The executor shuts down: cancel every gang."""
        with self._lock:
            gangs = list(self._gangs.values())
        for gang in gangs:
            msg = f"task {gang.call.task_id!r} was cancelled: the executor shut down"
            self._abort(gang, failure(CANCELLED, "Cancelled", msg, retryable=False))
        if self._timer is not None:
            self._timer.stop()

    def node_lost(self, node_id: str, lost: str) -> None:
        """Node ``node_id`` stopped answering (``lost`` says so): its gangs' workers are lost."""
        with self._lock:
            gangs = [g for g in self._gangs.values() if node_id in g.node_ids and not g.done]
        for gang in gangs:
            rank = gang.node_ids.index(node_id)
            msg = f"task {gang.call.task_id!r}: worker {rank} of its gang {lost}"
            self._abort(gang, failure(WORKER_LOST, "NodeLost", msg))

    # ------------------------------------------------------------------ start

    def _launch(self, gang: Gang) -> None:
        call = gang.call
        api = self._api
        n = len(gang.node_ids)
        try:
            if self._member is None:
                member = api.ray.remote(max_restarts=0, max_task_retries=0, max_concurrency=1)
                self._member = member(GangMember)
            bundle = ray_bundle(call.resources) or {"CPU": 0.001}  # a bundle cannot be empty
            kwargs: dict[str, Any] = {"strategy": "PACK" if len(set(gang.node_ids)) == 1 else "SPREAD"}
            if self._selectors:
                kwargs["bundle_label_selector"] = [{NODE_ID_LABEL: i} for i in gang.node_ids]
            refs: list[Any] = []
            att = Attempt(call, gang.future)
            blob = self._payloads.build(att, refs, {}, put=False)  # its workers die once they reply
            opts = ray_options(call.resources)
            envs = [rank_env(call, r, ("", 0)) for r in range(n)]
            envs = [{k: v for k, v in env.items() if k not in _FROM_RAY} for env in envs]
            pg = api.placement_group([bundle] * n, **kwargs)  # a call to Ray's GCS: not under the lock
            with self._lock:  # submissions only from here: they do not wait for Ray
                gang.pg, gang.held = pg, att.held
                if gang.done:  # stopped meanwhile; its finish may not have seen the group
                    self._completer.best_effort(api.remove_placement_group, pg)
                    return
                for rank in range(n):
                    strategy = api.pg_strategy(pg, rank)
                    gang.actors.append(self._member.options(**opts, scheduling_strategy=strategy).remote())
                master = gang.actors[0].master.remote()
                for rank, actor in enumerate(gang.actors):
                    gang.refs.append(actor.run.remote(envs[rank], of_call(call, rank), master, blob, *refs))
        except Exception as e:  # Ray refused the placement or the actors: nothing runs
            self._abort(gang, TaskFailedError(classify(e, call.task_id, call.node)))
            return
        if call.timeout is not None:
            self._deadlines().schedule(time.monotonic() + call.timeout, ("timeout", gang))
        for rank, ref in enumerate(gang.refs):
            ref.future().add_done_callback(functools.partial(self._replied, gang, rank))

    # ------------------------------------------------------------------ outcomes

    def _replied(self, gang: Gang, rank: int, rf: Future[Any]) -> None:
        """A worker's reply came (usually in Ray's callback thread)."""
        call = gang.call
        err: BaseException | None = None
        value: Any = None
        meta: dict[str, Any] = {}
        ours = False  # killed by the gang itself
        try:
            value, meta = rf.result()
            if "error" in meta:
                err = TaskFailedError(ErrorRecord.from_dict(meta["error"]))
        except BaseException as exc:
            node = self._host.node_name(gang.node_ids[rank])
            err = TaskFailedError(classify(exc, call.task_id, node))
            ours = KILLED_MARK in str(exc)
        with self._lock:
            gang.left -= 1
            if err is not None:
                (gang.after_stop if ours and gang.stopping else gang.errors).append(err)
            elif rank == 0:
                gang.value, gang.meta = value, meta
            stop = err is not None and not gang.stopping
            gang.stopping = gang.stopping or stop
            last = gang.left == 0
        if last:
            self._completer.defer(self._finish, gang, None)
        elif stop and _own_error(err):
            # a worker's own error is often a peer's death seen through a collective ("connection
            # reset by peer"): let a lost peer report itself before the gang kills it and takes
            # its death for its own doing (then the gang's failure would be this error, not lost)
            self._deadlines().schedule(time.monotonic() + PEER_GRACE, ("peers", gang))
        elif stop:  # the others would wait for this one in a collective: stop them
            self._stop(gang)

    def _stop(self, gang: Gang) -> None:
        self._completer.defer(self._kill_workers, gang)
        self._deadlines().schedule(time.monotonic() + STOP_GRACE, ("grace", gang))

    def _abort(self, gang: Gang, error: BaseException) -> None:
        """End the attempt now with ``error`` (killed, timed out, node lost, not startable)."""
        with self._lock:
            gang.stopping = True
        self._completer.defer(self._finish, gang, error)

    def _kill_workers(self, gang: Gang) -> None:
        with self._lock:
            actors = list(gang.actors)
        for actor in actors:
            self._completer.best_effort(self._api.ray.kill, actor, no_restart=True)

    def _finish(self, gang: Gang, error: BaseException | None) -> None:
        """Kill the workers, remove the placement group, then resolve the future (completer
        thread): ``error``, else the worst failure of a worker, else rank 0's result."""
        with self._lock:
            if gang.done:
                return
            gang.done = True
            self._gangs.pop(gang.future, None)
            pg = gang.pg
        self._kill_workers(gang)
        if pg is not None:
            self._completer.best_effort(self._api.remove_placement_group, pg)
        fut = gang.future
        if error is None and (gang.errors or gang.after_stop):
            error = worst(gang.errors or gang.after_stop)
        if error is not None and isinstance(error, TaskFailedError) and error.record.kind == WORKER_LOST:
            self._payloads.forget(gang.held)  # what it read may be lost with the worker
        try:
            if error is not None:
                fut.set_exception(error)
                return
            meta = gang.meta or {}
            meta["node"] = self._host.node_name(meta.get("node_id", ""))
            fut.podium_meta = cast(AttemptMeta, meta)  # rank 0's: where and how long it ran
            if meta.get("size", 0) >= self._payloads.large and gang.refs:
                self._payloads.hold(gang.value, gang.refs[0], int(meta["size"]), -1)
            fut.set_result(gang.value)
        except InvalidStateError:
            pass

    # ------------------------------------------------------------------ deadlines

    def _deadlines(self) -> Deadlines[tuple[str, Gang]]:
        with self._lock:
            if self._timer is None:
                self._timer = Deadlines("podium-ray-gangs", self._expire, lambda item: item[1].done)
            return self._timer

    def _expire(self, item: tuple[str, Gang]) -> None:
        why, gang = item
        if gang.done:
            return
        call = gang.call
        if why == "grace":  # its workers did not all end: fail with what is known
            self._completer.defer(self._finish, gang, None)
            return
        if why == "peers":  # no peer reported its loss meanwhile: stop the others now
            self._stop(gang)
            return
        msg = f"task {call.task_id!r} timed out after {call.timeout:g}s (its gang's workers were killed)"
        self._abort(gang, failure(TIMEOUT, "TimeoutError", msg))


def _own_error(err: BaseException | None) -> bool:
    return isinstance(err, TaskFailedError) and err.record.kind == USER_ERROR


__all__ = ["PEER_GRACE", "STOP_GRACE", "Gang", "GangHost", "RayGangs"]
