"""Waiting for a node: a Ray call whose node is gone runs on any node that can hold it.

A part of ``RayExecutor`` (``NodeWait``, composed, not a mixin); what it needs from the executor
is declared by ``WaitHost``. When the node a call was placed on is gone (and no replacement with
its name is live), the call waits in a Ray placement group (``STRICT_PACK``, one bundle of its
resources) for a node that can hold it, for at most ``pending_timeout`` seconds, in a thread of
its own. While it waits, ``waiting()`` lists it with the reason (also logged on the
``podium.ray`` logger); past the timeout it fails as ``timeout`` with a message saying what it
needed. A call that holds no resources runs on any node at once.

Invariants: a waiting call's placement group is removed once it ran, failed or was stopped; a
stopped call never launches; the reason is listed exactly while the call waits.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any, Protocol

from podium.errors import TIMEOUT, TaskFailedError
from podium.executors.ray.base import Attempt, RayApi, classify
from podium.executors.ray.cluster import ray_bundle
from podium.executors.ray.completer import Completer
from podium.model.cluster import Node

log = logging.getLogger("podium.ray")


class WaitHost(Protocol):
    """What waiting for a node needs from the executor that owns it: its attempts' life cycle."""

    def refresh(self) -> Sequence[Node]:
        """Re-read Ray's node table."""

    def launch(self, att: Attempt, node_id: str | None, strategy: Any = None) -> None:
        """Run ``att`` with a Ray scheduling ``strategy``."""

    def abort(self, att: Attempt, kind: str, message: str, retryable: bool) -> None:
        """Fail ``att``'s Future now and stop whatever runs it."""

    def finish(self, att: Attempt, value: Any = None, error: BaseException | None = None) -> None:
        """Resolve ``att``'s Future (at most once)."""


class NodeWait:
    """Calls waiting for a node (see the module docstring). ``lock`` is the executor's: it
    guards ``att.pg`` together with the executor's view of the attempt."""

    def __init__(
        self, host: WaitHost, api: RayApi, lock: threading.RLock, completer: Completer, pending_timeout: float
    ) -> None:
        self._host = host
        self._api = api
        self._lock = lock
        self._completer = completer
        self._pending_timeout = pending_timeout
        self._waiting: dict[str, str] = {}

    def waiting(self) -> dict[str, str]:
        """Task instances waiting for a node that can hold them, with the reason."""
        with self._lock:
            return dict(self._waiting)

    def start(self, att: Attempt) -> None:
        """Place ``att`` on any node that can hold it, in a thread of its own."""
        threading.Thread(target=self._place, args=(att,), name="podium-ray-place", daemon=True).start()

    def _place(self, att: Attempt) -> None:
        """Run a call whose node is gone on any node that can hold it, waiting for one to join
        for at most ``pending_timeout`` seconds (a placement group holds the resources)."""
        call = att.call
        host = self._host
        limit = self._pending_timeout
        reason = (
            f"task {call.task_id!r}: node {call.node!r} is gone; waiting up to {limit:g}s for a live "
            f"node with {call.resources.describe()}"
        )
        log.warning(reason)
        with self._lock:
            self._waiting[call.task_id] = reason
        try:
            bundle = ray_bundle(call.resources)
            if not bundle:  # holds nothing: any node will do
                host.launch(att, None, strategy="DEFAULT")
                return
            pg = self._api.placement_group([bundle], strategy="STRICT_PACK")
            with self._lock:
                att.pg = pg
            ready = pg.wait(limit)
            if att.stopped:
                self.remove_pg(pg)
                return
            if not ready:
                msg = (
                    f"task {call.task_id!r} needs {call.resources.describe()} but no live node could "
                    f"hold it within {limit:g}s (node {call.node!r} is gone)"
                )
                host.abort(att, TIMEOUT, msg, retryable=True)
                return
            host.refresh()
            host.launch(att, None, strategy=self._api.pg_strategy(pg, 0))
        except Exception as e:  # Ray refused the placement: the attempt failed
            host.finish(att, error=TaskFailedError(classify(e, call.task_id, call.node)))
        finally:
            with self._lock:
                self._waiting.pop(call.task_id, None)

    def remove_pg(self, pg: Any) -> None:
        """Remove a placement group (best effort)."""
        self._completer.best_effort(self._api.remove_placement_group, pg)
