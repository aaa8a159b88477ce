"""Worker lanes on Ray: pooled ``PodiumWorker`` actors, each running its calls one at a time, in order.

A part of ``RayExecutor`` (``ActorLanes``, composed, not a mixin); what it needs from the
executor is declared by ``LaneHost``. A *lane* is one ``PodiumWorker`` actor pinned to a node
(hard node affinity, ``max_concurrency=1``, holding no Ray resources: the engine accounts for
the node's capacity) and the calls assigned to it, in order. A warm actor needs no worker
lease, which a Ray task needs every time.

- **Batches.** Calls reach the actor in batches (``run_many``). At most ``INFLIGHT`` batches
  of a lane are in flight, so the next calls already wait at the actor when one finishes;
  calls assigned meanwhile leave together in the next batch: one Ray call for all of them.
  The actor replies once ``budget`` seconds have passed since a batch began (checked between
  calls) or nothing is left; calls it has not reached stay queued there and come back with a
  later reply (an empty batch fetches them when nothing else is in flight). So results return
  in the order the calls were assigned, at most ``budget`` late, and a call that does not
  finish holds back only the calls behind it.
- **Following.** ``submit(call, follow=f)`` assigns the call to the lane of ``f``'s call: it
  runs right after it, on the same worker, and its Future resolves after ``f``'s. If ``f``'s
  call is not on a live lane, the call starts once ``f`` has resolved.
- **Limits.** ``limits(node_id)`` (behind the executor's ``queue_limits(node)``) tells the
  engine how many calls may wait behind a running one (``MAX_DEPTH``) and the node's round trip:
  the moving average of a reply's time beyond the run time its calls report, measured on batches
  sent to an idle, warm actor (0 calls until one was measured). The engine decides what to queue
  (``podium.runtime.lanes``).
- **Timeouts.** A call with a timeout starts a reply cycle of its own (the actor replies
  before starting it), so its deadline is armed when it becomes the first call of its lane.
- **Failures.** A lane dies with its actor (node lost, killed after a timeout or a kill):
  every call still assigned to it fails, in order, with the error Ray raised, so the engine
  treats them as lost workers. A dead lane is never reused; an idle lane goes back to its
  node's pool (at most ``ceil(cpus)`` idle lanes per node are kept).
- **Large results.** A reply with results the worker put in Ray's object store (``Stored``) is
  delivered in the completer thread, which reads them (that may block); the lane's later
  replies follow it there until it is delivered, so the order holds. Such an object is owned by
  the lane's actor: lost with it, it fails the calls reading it as lost workers.

Invariants: a lane's calls run one at a time, in the order assigned; each assigned call's
outcome is delivered exactly once, in that order; batches of a lane are sent in order (one
lock per lane) and their replies handled in that order, whatever thread each arrives in; a
lane with calls assigned has a batch in flight.
"""

from __future__ import annotations

import math
import threading
import time
from concurrent.futures import Future
from typing import Any, Protocol

from podium.errors import WORKER_LOST, worker_survived
from podium.executors.failure import failure
from podium.executors.ray.base import Attempt, Lane, RayApi, RayFuture
from podium.executors.ray.completer import Completer
from podium.executors.ray.payload import Payloads
from podium.executors.ray.worker import PodiumWorker, Stored

#: Batches of one lane in flight at once.
INFLIGHT = 2
#: Calls sent in one batch at most.
MAX_BATCH = 64
#: Calls the engine may queue behind a running call, at most.
MAX_DEPTH = 32
#: Seconds a batch may run before the actor replies with what it has finished.
BUDGET = 0.002
#: Weight of a new sample in the moving average round trip.
_ALPHA = 0.2


class LaneHost(Protocol):
    """What the lanes need from the executor that owns them: its attempts' life cycle."""

    @property
    def closed(self) -> bool:
        """The executor is shut down: idle lanes are not kept."""

    def launch(self, att: Attempt, node_id: str | None, strategy: Any = None) -> None:
        """Run ``att`` on ``node_id`` afresh (the call it followed left no live lane)."""

    def arm(self, att: Attempt, start: float) -> None:
        """Schedule ``att``'s timeout from ``start`` (``time.monotonic()``)."""

    def deliver(self, att: Attempt, value: Any, meta: dict[str, Any], pos: int) -> None:
        """A worker's ``(value, meta)`` for ``att``, the ``pos``-th result of its lane's reply."""

    def fail(self, att: Attempt, exc: BaseException, refresh: bool = True) -> bool:
        """Fail ``att`` with what Ray raised (completer thread); whether nodes were re-read."""

    def finish(self, att: Attempt, value: Any = None, error: BaseException | None = None) -> None:
        """Resolve ``att``'s Future (at most once)."""


class ActorLanes:
    """The lanes of every node: idle pools, batches, replies (see the module docstring).

    ``lock`` is the executor's: it guards the lanes' state and the attempts' ``stopped`` and
    ``lane`` fields together."""

    def __init__(
        self,
        host: LaneHost,
        api: RayApi,
        lock: threading.RLock,
        completer: Completer,
        payloads: Payloads,
        budget: float = BUDGET,
    ) -> None:
        self._host = host
        self._ray = api.ray
        self._affinity = api.node_affinity
        # the lanes' actors hold no Ray resources (the engine accounts for the node's
        # capacity); they only pin a warm worker process to a node
        self._worker_cls = api.ray.remote(num_cpus=0, max_concurrency=1, max_restarts=0, max_task_retries=0)(
            PodiumWorker
        )
        self._lock = lock
        self._completer = completer
        self._payloads = payloads
        self._budget = budget
        self._idle: dict[str, list[Lane]] = {}  # Ray node id -> idle lanes on it
        self._cpus: dict[str, float] = {}  # Ray node id -> its cpus (caps its idle lanes)
        self._rtt: dict[str, float] = {}  # Ray node id -> moving average round trip beyond it
        self._counts = {"calls": 0, "batches": 0, "queued": 0, "lanes": 0}

    def stats(self) -> dict[str, int]:
        """Calls and batches sent to lanes, calls queued behind another on its lane, lanes made."""
        with self._lock:
            return dict(self._counts)

    def set_nodes(self, cpus: dict[str, float]) -> None:
        """The live nodes (Ray node id -> cpus); idle lanes of the others are forgotten (their
        actors died with their node). Caller holds the lock."""
        self._cpus = cpus
        for gone in [n for n in self._idle if n not in cpus]:
            del self._idle[gone]

    # ------------------------------------------------------------------ depth

    def limits(self, node_id: str | None) -> tuple[int, float]:
        """How many calls may wait behind a running call on a lane of ``node_id``, and the round
        trip of a call beyond its run time (seconds); (0, 0) until measured."""
        rtt = self._rtt.get(node_id) if node_id is not None else None
        if rtt is None:
            return 0, 0.0
        return MAX_DEPTH, rtt

    def _measure(self, node_id: str, rtt: float) -> None:
        old = self._rtt.get(node_id)
        self._rtt[node_id] = rtt if old is None else old + _ALPHA * (rtt - old)

    # ------------------------------------------------------------------ assigning

    def follow(self, att: Attempt, follow: Future[Any], node_id: str) -> None:
        """Run ``att`` after ``follow``'s call: on its lane while that lane lives (even if it
        went idle meanwhile), else once ``follow`` has resolved: then, if ``follow`` failed
        for any reason but its task's own error, its worker is gone and ``att`` fails as
        ``worker_lost`` without running."""
        lane = follow.lane if isinstance(follow, RayFuture) else None
        if lane is not None and lane.node_id == node_id and not att.call.resources.gpu:
            with self._lock:
                ok = not lane.dead
                if ok:
                    self._unpark(lane)
                    self._on_lane(att, lane)
                    self._counts["queued"] += 1
            if ok:
                self._pump(lane)
                return
        host = self._host

        def after(f: Future[Any]) -> None:
            if worker_survived(f.exception()):
                host.launch(att, node_id)
                return
            msg = f"task {att.call.task_id!r} was queued behind a call whose worker is gone"
            host.finish(att, error=failure(WORKER_LOST, "WorkerLost", msg))

        # its done-callbacks run in the order they were added: whoever waits for ``follow``
        # hears of it first
        follow.add_done_callback(after)

    def _on_lane(self, att: Attempt, lane: Lane) -> None:
        """Assign ``att`` to ``lane`` (caller holds the lock)."""
        att.lane = lane
        att.node_id = lane.node_id
        att.future.lane = lane
        lane.queue.append(att)

    def assign(self, att: Attempt, node_id: str) -> None:
        """Assign ``att`` to an idle lane on the node, or to a new one."""
        with self._lock:
            pool = self._idle.get(node_id)
            lane = pool.pop() if pool else None
        if lane is None:
            if self._completer.in_callback():  # creating an actor may block: not in Ray's own thread
                self._completer.defer(self.assign, att, node_id)
                return
            actor = self._worker_cls.options(scheduling_strategy=self._affinity(node_id, soft=False)).remote()
            lane = Lane(actor, node_id)
            with self._lock:
                self._counts["lanes"] += 1
        with self._lock:
            if att.stopped:  # killed or timed out before it was assigned: the lane stays idle
                self._idle.setdefault(node_id, []).append(lane)
                return
            self._on_lane(att, lane)
        self._pump(lane)

    def _pump(self, lane: Lane) -> None:
        """Send the lane's queued calls as one batch if fewer than ``INFLIGHT`` are in flight
        (or an empty batch to fetch calls left at the actor when none is)."""
        with lane.send_lock:
            with self._lock:
                if lane.dead or lane.inflight >= INFLIGHT:
                    return
                batch: list[Attempt] = []
                queue = lane.queue
                while queue and len(batch) < MAX_BATCH:
                    att = queue.popleft()
                    if not att.stopped:
                        batch.append(att)
                if not batch and not (lane.assigned and lane.inflight == 0):
                    return
                idle = not lane.assigned
                lane.assigned.extend(batch)
                lane.inflight += 1
                seq = lane.sent
                lane.sent += 1
                self._counts["calls"] += len(batch)
                self._counts["batches"] += 1
            items, refs = self._batch_payload(batch)
            sent = time.monotonic()
            ref = lane.actor.run_many.remote(self._budget, items, *refs)
            for att in batch:
                att.ref = ref
        if idle and batch and batch[0].call.timeout is not None:
            self._host.arm(batch[0], sent)
        ref.future().add_done_callback(lambda rf: self.on_reply(lane, seq, rf, sent if idle else None))

    def _batch_payload(self, batch: list[Attempt]) -> tuple[tuple[tuple[bytes, bool], ...], list[Any]]:
        refs: list[Any] = []
        index: dict[int, int] = {}
        items = []
        build = self._payloads.build
        for att in batch:
            items.append((build(att, refs, index), att.call.timeout is not None))
        return tuple(items), refs

    # ------------------------------------------------------------------ replies

    def on_reply(self, lane: Lane, seq: int, rf: Future[Any], sent: float | None) -> None:
        """Done-callback of batch ``seq`` (usually in Ray's thread): replies are handled in the
        order their batches were sent, flat-combining style: the thread that finds the next
        reply handles it and any that arrived after it; a thread that finds one being handled
        leaves its reply to that thread."""
        with lane.reply_lock:
            lane.replies[seq] = (rf, sent)
            if lane.draining:
                return
            lane.draining = True
        while True:
            with lane.reply_lock:
                item = lane.replies.pop(lane.next_reply, None)
                if item is None:
                    lane.draining = False
                    return
                lane.next_reply += 1
            self._handle_reply(lane, *item)

    def _handle_reply(self, lane: Lane, rf: Future[Any], sent: float | None) -> None:
        if rf.exception() is not None:
            with self._lock:
                lane.failing = True  # later replies must not take this batch's calls
            self._completer.defer(self._lane_failed, lane, rf.exception())
            return
        self._completer.as_callback(self._replied, lane, rf.result(), sent)

    def _replied(self, lane: Lane, reply: tuple[list[Any], int], sent: float | None) -> None:
        results = reply[0]
        now = time.monotonic()
        with self._lock:
            if lane.closed or lane.failing:
                return
            lane.inflight -= 1
            done = [lane.assigned.popleft() for _ in results]
            head = lane.assigned[0] if lane.assigned else None
            idle = not lane.assigned and not lane.queue and lane.inflight == 0 and not lane.dead
        if not lane.warm:
            lane.warm = True
        elif results and sent is not None:  # sent to an idle actor: no wait behind other calls
            total = 0.0
            for _value, meta in results:
                total += meta.get("seconds", 0.0)
            self._measure(lane.node_id, max(0.0, now - sent - total))
        if head is not None and head.call.timeout is not None and not head.armed:
            self._host.arm(head, now)
        if idle:  # before the results go out: the calls they lead to may use this lane
            self._park(lane)
        else:
            self._pump(lane)
        if any(type(r[0]) is Stored for r in results) or lane.deferred:
            with self._lock:
                lane.deferred += 1
            self._completer.defer(self._deliver_later, lane, done, results)
            return
        deliver = self._host.deliver
        for pos, (att, (value, meta)) in enumerate(zip(done, results, strict=True)):
            deliver(att, value, meta, pos)

    def _deliver_later(self, lane: Lane, done: list[Attempt], results: list[Any]) -> None:
        """Deliver a reply with results to read from Ray's object store (completer thread,
        where reading may block); the lane's later replies come here too, so they keep order."""
        try:
            deliver = self._host.deliver
            for pos, (att, (value, meta)) in enumerate(zip(done, results, strict=True)):
                deliver(att, value, meta, pos)
        finally:
            with self._lock:
                lane.deferred -= 1

    def _park(self, lane: Lane) -> None:
        """Return an idle lane to its node's pool (kill its actor if the pool is full)."""
        with self._lock:
            if lane.dead or lane.assigned or lane.queue or lane.inflight:
                return
            pool = self._idle.setdefault(lane.node_id, [])
            if not self._host.closed and len(pool) < max(1, math.ceil(self._cpus.get(lane.node_id, 1.0))):
                pool.append(lane)
                return
            lane.dead = True
        self.kill(lane)

    def lost(self, lane: Lane, exc: BaseException) -> None:
        """The lane's node stopped answering: fail its calls with ``exc`` as if its actor died."""
        self._lane_failed(lane, exc)

    def _lane_failed(self, lane: Lane, exc: BaseException) -> None:
        """A batch of the lane failed (its actor or node died): fail every call still
        assigned to it, in order (completer thread)."""
        with self._lock:
            if lane.closed:
                return
            lane.closed = lane.dead = True
            atts = [*lane.assigned, *lane.queue]
            lane.assigned.clear()
            lane.queue.clear()
            self._unpark(lane)
        refreshed = False
        for att in atts:
            if att.stopped:
                continue
            att.lane = None
            if self._host.fail(att, exc, refresh=not refreshed):
                refreshed = True
        self.kill(lane)

    # ------------------------------------------------------------------ ending lanes

    def drop(self, lane: Lane) -> None:
        """Stop using ``lane`` and kill its actor (an actor call cannot be force-cancelled): its
        replies will fail."""
        with self._lock:
            lane.dead = True
            self._unpark(lane)
        self.kill(lane)

    def kill(self, lane: Lane) -> None:
        """Kill the lane's actor (``ray.kill``, best effort)."""
        self._completer.best_effort(self._ray.kill, lane.actor, no_restart=True)

    def _unpark(self, lane: Lane) -> None:
        """Take ``lane`` out of its node's idle pool if it is there (caller holds the lock)."""
        pool = self._idle.get(lane.node_id)
        if pool and lane in pool:
            pool.remove(lane)

    def take_idle(self) -> list[Lane]:
        """Empty every idle pool; return the lanes that were in them."""
        with self._lock:
            lanes = [lane for pool in self._idle.values() for lane in pool]
            self._idle.clear()
        return lanes
