"""The environment Podium gives the processes of a task: threads, devices, identity, rank.

Every process, shell and container task starts with:
- ``OMP_NUM_THREADS``, ``MKL_NUM_THREADS``, ``OPENBLAS_NUM_THREADS`` set to its cpu request
  (rounded up, at least 1), so numeric libraries (NumPy's BLAS, scikit-learn, PyTorch, which
  sizes its intra-op pool from ``OMP_NUM_THREADS`` when it is imported) start as many threads
  as the task asked for, not one per core of the machine; a shell or container task's own
  ``env`` overrides them;
- ``CUDA_VISIBLE_DEVICES`` (and ``PODIUM_GPUS``) listing the GPUs it holds, when it holds any
  (a task without a gpu request inherits the variable as it is, as Ray does);
- ``PODIUM_RUN_ID``, ``PODIUM_TASK_ID``, ``PODIUM_ATTEMPT``, ``PODIUM_NODE``, ``PODIUM_CPUS``
  (``podium.context()`` reads them in a process a task started);
- for worker ``rank`` of a gang: torch.distributed's ``env://`` variables ``RANK``,
  ``WORLD_SIZE``, ``LOCAL_RANK``, ``LOCAL_WORLD_SIZE``, ``NODE_RANK``, ``MASTER_ADDR`` and
  ``MASTER_PORT``.

Invariants: pure (no I/O); the values depend only on the call (and the gang's address).
"""

from __future__ import annotations

import math
from typing import Any

from podium.model.task import TaskCall

#: Thread-count variables set from a task's cpu request.
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def threads(cpu: float) -> int:
    """Threads a task asking ``cpu`` cpus should start: rounded up, at least 1."""
    return max(1, math.ceil(cpu - 1e-9))


def task_env(call: TaskCall, limit_threads: bool = True) -> dict[str, str]:
    """The variables of the call's (first worker's) process (see the module docstring)."""
    env = {k: str(threads(call.resources.cpu)) for k in THREAD_VARS} if limit_threads else {}
    env["PODIUM_RUN_ID"] = call.run_id
    env["PODIUM_TASK_ID"] = call.task_id
    env["PODIUM_ATTEMPT"] = str(call.attempt)
    env["PODIUM_NODE"] = call.node
    env["PODIUM_CPUS"] = f"{call.resources.cpu:g}"
    gpus = call.gpus
    if gpus or call.resources.gpu:
        env["CUDA_VISIBLE_DEVICES"] = env["PODIUM_GPUS"] = ",".join(str(g) for g in gpus)
    return env


def rank_env(
    call: TaskCall, rank: int, master: tuple[str, int], limit_threads: bool = True
) -> dict[str, str]:
    """The variables of worker ``rank`` of a gang whose rank 0 listens at ``master``."""
    grants = call.grants
    mine = grants[rank]
    env = task_env(call._replace(node=mine.node, grants=(mine,)), limit_threads)
    nodes: dict[str, int] = {}
    for g in grants:
        nodes.setdefault(g.node, len(nodes))
    env.update(
        RANK=str(rank),
        WORLD_SIZE=str(len(grants)),
        LOCAL_RANK=str(sum(1 for g in grants[:rank] if g.node == mine.node)),
        LOCAL_WORLD_SIZE=str(sum(1 for g in grants if g.node == mine.node)),
        NODE_RANK=str(nodes[mine.node]),
        MASTER_ADDR=master[0],
        MASTER_PORT=str(master[1]),
    )
    return env


def spec_env(call: TaskCall) -> dict[str, Any]:
    """The ``env`` a shell or container task's spec sets (it overrides Podium's values)."""
    return {str(k): str(v) for k, v in (call.config.get("env") or {}).items()}


__all__ = ["THREAD_VARS", "rank_env", "spec_env", "task_env", "threads"]
