"""The executors layer: where task attempts actually run.

Every executor implements ``podium.types.Executor`` (``submit`` -> stdlib Future, ``kill``,
``nodes``, ``shutdown``). A Future resolves to the task's result or raises
``TaskFailedError`` whose ``ErrorRecord.kind`` says how the attempt ended (``user``,
``timeout``, ``oom``, ``worker_lost``, ``cancelled``). ``ThreadExecutor`` runs calls on threads
(cheap; cannot really stop a call), ``ProcessExecutor`` in one killable, memory-limited process
per attempt, ``LocalExecutor`` routes between them by ``spec.isolation`` and ``call.node``.
``kinds`` says how a python, http or shell call is run; ``RayExecutor`` (the ``ray`` package,
extra ``ray``) runs calls on a Ray cluster. Executors import only model and leaves.

Names are imported lazily so a worker process (``podium.executors.worker``) starts without
loading the executors it does not use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from podium.executors.kinds import run_call
    from podium.executors.local import LocalExecutor, detect_node
    from podium.executors.process import ProcessExecutor
    from podium.executors.thread import ThreadExecutor

_WHERE = {
    "run_call": "podium.executors.kinds",
    "LocalExecutor": "podium.executors.local",
    "detect_node": "podium.executors.local",
    "ProcessExecutor": "podium.executors.process",
    "ThreadExecutor": "podium.executors.thread",
    "RayExecutor": "podium.executors.ray.executor",
}

__all__ = ["LocalExecutor", "ProcessExecutor", "RayExecutor", "ThreadExecutor", "detect_node", "run_call"]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'podium.executors' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
