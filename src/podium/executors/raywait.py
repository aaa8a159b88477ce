"""Waiting for a node: a Ray call whose node is gone runs on any node that can hold it.

A mixin of ``RayExecutor``. When the node a call was placed on is gone (and no replacement
with its name is live), the call waits in a Ray placement group (``STRICT_PACK``, one bundle of
its resources) for a node that can hold it, for at most ``pending_timeout`` seconds, in a
thread of its own. While it waits, ``waiting()`` lists it with the reason (also logged on the
``podium.ray`` logger); past the timeout it fails as ``timeout`` with a message saying what it
needed. A call that holds no resources runs on any node at once.

Invariants: a waiting call's placement group is removed once it ran, failed or was stopped; a
stopped call never launches; the reason is listed exactly while the call waits.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from podium.errors import TIMEOUT, TaskFailedError
from podium.executors.raycluster import ray_bundle

if TYPE_CHECKING:
    from podium.executors.ray import RayExecutor, _Attempt

    _Base = RayExecutor
else:
    _Base = object

log = logging.getLogger("podium.ray")


class NodeWait(_Base):
    def waiting(self) -> dict[str, str]:
        """Task instances waiting for a node that can hold them, with the reason."""
        with self._lock:
            return dict(self._waiting)

    def _start_placing(self, att: _Attempt) -> None:
        threading.Thread(target=self._place, args=(att,), name="podium-ray-place", daemon=True).start()

    def _place(self, att: _Attempt) -> None:
        """Run a call whose node is gone on any node that can hold it, waiting for one to join
        for at most ``pending_timeout`` seconds (a placement group holds the resources)."""
        from ray.util.placement_group import placement_group
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        call = att.call
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
                self._launch(att, None, strategy="DEFAULT")
                return
            pg = placement_group([bundle], strategy="STRICT_PACK")
            with self._lock:
                att.pg = pg
            ready = pg.wait(limit)
            if att.stopped:
                self._remove_pg(pg)
                return
            if not ready:
                msg = (
                    f"task {call.task_id!r} needs {call.resources.describe()} but no live node could "
                    f"hold it within {limit:g}s (node {call.node!r} is gone)"
                )
                self._stop(att, TIMEOUT, msg, retryable=True)
                return
            self.refresh()
            self._launch(att, None, strategy=PlacementGroupSchedulingStrategy(pg, 0))
        except Exception as e:  # Ray refused the placement: the attempt failed
            from podium.executors.ray import classify

            self._finish(att, error=TaskFailedError(classify(e, call.task_id, call.node)))
        finally:
            with self._lock:
                self._waiting.pop(call.task_id, None)

    def _remove_pg(self, pg: Any) -> None:
        from ray.util.placement_group import remove_placement_group

        self._best_effort(remove_placement_group, pg)
