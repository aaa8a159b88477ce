"""Podium on Ray: ``RayExecutor`` runs each task attempt on the Ray node the engine chose.

The package, bottom up (each module imports only those above it in this list):

- ``base``: the records every part shares (``Attempt``, ``Lane``), how Ray's exceptions become
  ``ErrorRecord``s (``classify``), and ``ray_api``, the only import of ``ray`` in Podium;
- ``cluster``: Ray nodes as Podium nodes, and Ray options of a resource vector (pure);
- ``worker``: what runs inside Ray (``run_on_worker``, the ``PodiumWorker`` actor);
- ``member``: what runs inside Ray for calls holding GPUs or workers (``run_placed``, the
  ``GangMember`` actor of a gang's worker);
- ``completer``: the thread that does what must not run in Ray's own callback thread;
- ``connect``: connecting the driver to Ray (a cluster, or a local Ray it starts);
- ``payload``: what a call sends to its worker, and large results held in Ray's object store;
- ``lanes``: pooled worker actors running calls in order, in batches (``ActorLanes``);
- ``wait``: calls whose node is gone, waiting for one that can hold them (``NodeWait``);
- ``gang``: gang-scheduled calls, their workers placed all or none (``RayGangs``);
- ``health``: probes of the nodes' raylets, suspect nodes, without waiting for Ray (``NodeHealth``);
- ``executor``: ``RayExecutor``, the attempts' life cycle, composing the parts above.

Invariants: no module of the package imports one below it (``lanes``, ``wait``, ``gang`` and
``health`` reach the executor only through the ``LaneHost`` / ``WaitHost`` / ``GangHost`` /
``HealthHost`` Protocols it implements); the worker side (``worker``, ``member`` and ``base``)
loads nothing of the driver's side; names here are imported lazily, so a Ray worker importing
``podium.executors.ray.worker`` does not load the executor.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from podium.executors.ray.connect import LOCAL
    from podium.executors.ray.executor import HOLD_BYTES, LARGE_RESULT, PENDING_TIMEOUT, RayExecutor

_WHERE = {
    "RayExecutor": "podium.executors.ray.executor",
    "LOCAL": "podium.executors.ray.connect",
    "PENDING_TIMEOUT": "podium.executors.ray.executor",
    "LARGE_RESULT": "podium.executors.ray.executor",
    "HOLD_BYTES": "podium.executors.ray.executor",
}

__all__ = ["HOLD_BYTES", "LARGE_RESULT", "LOCAL", "PENDING_TIMEOUT", "RayExecutor"]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'podium.executors.ray' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
