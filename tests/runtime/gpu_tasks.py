"""Task functions the GPU, thread and gang tests run (registered by name, as users' tasks are)."""

from __future__ import annotations

import os
import time
from typing import Any

import podium
from podium.policy import Policy
from podium.registry import REGISTRY, Registry


def report(seconds: float = 0.0) -> dict[str, Any]:
    """What the task sees: its CUDA_VISIBLE_DEVICES, its context and its thread counts."""
    time.sleep(seconds)
    ctx = podium.context()
    return {
        "cuda": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "gpus": list(ctx.gpus),
        "task": ctx.task_id,
        "cpus": ctx.cpus,
        "omp": os.environ.get("OMP_NUM_THREADS"),
        "mkl": os.environ.get("MKL_NUM_THREADS"),
        "openblas": os.environ.get("OPENBLAS_NUM_THREADS"),
        "rank": ctx.rank,
        "world": ctx.world_size,
        "env_rank": os.environ.get("RANK"),
        "master": [os.environ.get("MASTER_ADDR"), os.environ.get("MASTER_PORT")],
        "local_rank": os.environ.get("LOCAL_RANK"),
        "pid": os.getpid(),
    }


def cuda_oom() -> None:
    raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 15.90 GiB total capacity)")


def gang_member(
    log: str, fail_rank: int = -1, fail_attempts: int = 0, hold: float = 0.0, linger: float = 0.0
) -> dict[str, Any]:
    """A gang worker: notes its attempt and rank in ``log`` and waits ``hold`` s. On the first
    ``fail_attempts`` attempts rank ``fail_rank`` dies (its process exits) while the others
    wait ``linger`` s more, as workers blocked in a collective on a dead peer would."""
    ctx = podium.context()
    with open(log, "a", encoding="utf-8") as f:
        f.write(f"{ctx.attempt} {ctx.rank} {os.getpid()}\n")
    if ctx.attempt <= fail_attempts:
        if ctx.rank == fail_rank:
            time.sleep(0.3)
            os._exit(3)
        time.sleep(linger)
    time.sleep(hold)
    return {"rank": ctx.rank, "world": ctx.world_size, "attempt": ctx.attempt}


FUNCTIONS = (report, cuda_oom, gang_member)
for _fn in FUNCTIONS:
    REGISTRY.register(f"gpu_tasks:{_fn.__name__}", _fn)
REGISTRY.allow("gpu_tasks")


def registry(*programs: str) -> Registry:
    """A registry with these task functions, that lets shell tasks run ``programs``."""
    reg = Registry()
    for fn in FUNCTIONS:
        reg.register(f"gpu_tasks:{fn.__name__}", fn)
    reg.allow("gpu_tasks")
    reg.grant(Policy(programs=programs))
    return reg
