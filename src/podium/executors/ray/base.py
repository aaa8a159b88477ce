"""The bottom of the Ray package: the records every part shares, failure classification, and Ray.

Owns the attempt record (``Attempt``), its Future (``RayFuture``: an ``AttemptFuture`` that
remembers its lane), the lane record (``Lane``), how an exception Ray raised
is classified into an ``ErrorRecord`` (``classify``, ``never_ran``) and the only import of
``ray`` in Podium (``ray_api``, lazily: nothing is imported until it is called).

Invariants: this module imports nothing else of this package, so every other module of it may
import it (the worker side included); importing it never imports ``ray``; ``ray_api`` sets
Ray's environment (usage stats off; for a local Ray, loopback only and token auth) before the
first import of ``ray`` and never after.
"""

from __future__ import annotations

import os
import secrets
import sys
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, NamedTuple

from podium.errors import CANCELLED, OOM, USER_ERROR, WORKER_LOST, ErrorRecord, TaskFailedError, UsageError
from podium.model.task import TaskCall
from podium.types import AttemptFuture


class RayApi(NamedTuple):
    """The parts of Ray this package calls."""

    ray: Any  # the ``ray`` module
    exceptions: Any  # ``ray.exceptions``
    node_affinity: Any  # ``NodeAffinitySchedulingStrategy``
    pg_strategy: Any  # ``PlacementGroupSchedulingStrategy``
    placement_group: Callable[..., Any]
    remove_placement_group: Callable[..., Any]


_API: list[RayApi] = []


def ray_api(local: bool = False) -> RayApi:
    """Import ``ray`` (once); before the first import, turn off usage stats and, for a local Ray,
    make it listen on loopback only (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``) and use token auth
    with a fresh random token unless one is set (nothing is written to ``~/.ray``)."""
    if _API:
        return _API[0]
    if "ray" not in sys.modules:
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        if local:
            os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
            os.environ.setdefault("RAY_AUTH_MODE", "token")
            if os.environ["RAY_AUTH_MODE"] == "token":
                os.environ.setdefault("RAY_AUTH_TOKEN", secrets.token_hex(32))
    try:
        import ray.exceptions  # binds ``ray`` too
        from ray.util.placement_group import placement_group, remove_placement_group
        from ray.util.scheduling_strategies import (
            NodeAffinitySchedulingStrategy,
            PlacementGroupSchedulingStrategy,
        )
    except ImportError:
        raise UsageError("Ray is not installed: pip install 'podium[ray]'") from None
    api = RayApi(
        ray,
        ray.exceptions,
        NodeAffinitySchedulingStrategy,
        PlacementGroupSchedulingStrategy,
        placement_group,
        remove_placement_group,
    )
    _API.append(api)
    return api


def classify(exc: BaseException, task_id: str, where: str = "") -> ErrorRecord:
    """The ``ErrorRecord`` of an exception Ray raised for an attempt: a dead node, crashed
    worker, lost object or unschedulable task -> ``worker_lost`` (retryable); Ray's memory
    monitor -> ``oom``; a cancelled task -> ``cancelled``; anything else -> ``user``."""
    if isinstance(exc, TaskFailedError):
        return exc.record
    rex = ray_api().exceptions
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


def never_ran(exc: BaseException) -> bool:
    """True if Ray could not even place the attempt (its node was already gone): nothing ran."""
    rex = ray_api().exceptions
    if isinstance(exc, rex.TaskUnschedulableError | rex.ActorUnschedulableError):
        return True
    return isinstance(exc, rex.ActorDiedError) and "never ran" in str(exc)


class RayFuture(AttemptFuture):
    """The Future of one Ray attempt: an ``AttemptFuture`` (the run loop reads its ``outcome``
    and ``podium_meta``) that also remembers the lane its call was assigned to, so a call
    submitted with ``follow=`` this future can be queued behind it on that lane."""

    lane: Lane | None = None


@dataclass(eq=False)
class Attempt:
    """One attempt of a call, from ``submit`` until its Future resolves."""

    call: TaskCall
    future: RayFuture
    ref: Any = None  # ObjectRef of its reply (a Ray task's (value, meta), or a lane's batch)
    pg: Any = None  # placement group while waiting for a node
    held: tuple[int, ...] = ()  # ids of held values passed by reference
    stopped: bool = False  # killed or timed out: never launch, drop any late outcome
    rerouted: bool = False  # its node vanished before it started: it went to wait for a node
    lane: Lane | None = None  # the lane running it (None: it runs as a Ray task)
    node_id: str | None = None  # the Ray node it was sent to (None: not sent, or anywhere)
    armed: bool = False  # its deadline is scheduled


class Lane:
    """One pooled worker actor and the calls assigned to it, in order (see ``lanes``)."""

    __slots__ = (
        "actor",
        "assigned",
        "closed",
        "dead",
        "deferred",
        "draining",
        "failing",
        "inflight",
        "next_reply",
        "node_id",
        "queue",
        "replies",
        "reply_lock",
        "send_lock",
        "sent",
        "warm",
    )

    def __init__(self, actor: Any, node_id: str) -> None:
        self.actor = actor
        self.node_id = node_id
        self.queue: deque[Attempt] = deque()  # assigned, not sent yet
        self.assigned: deque[Attempt] = deque()  # sent, outcome not delivered (actor's order)
        self.inflight = 0  # batches sent and not replied
        self.dead = False  # its actor is (being) killed: take nothing new
        self.closed = False  # its remaining calls have been failed
        self.deferred = 0  # replies handed to the completer thread and not yet delivered
        self.send_lock = threading.Lock()
        self.warm = False  # it has replied once (the first reply includes the actor's start)
        self.sent = 0  # batches sent (the next one's sequence number)
        # replies are handled in the order their batches were sent, by one thread at a time
        # (a reply can come back in another thread before the one before it is handled)
        self.reply_lock = threading.Lock()
        self.replies: dict[int, tuple[Future[Any], float | None]] = {}  # arrived, not handled
        self.next_reply = 0
        self.draining = False
        self.failing = False  # a batch failed: the remaining calls fail with it
