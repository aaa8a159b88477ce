"""What runs inside Ray for calls that hold devices or workers: their context, GPUs and ranks.

- ``run_placed(ctx, blob, *held)``: the body of a call that runs as a Ray task of its own (it
  holds GPUs, or waited for a node). ``podium.context()`` is ``ctx`` with the GPUs Ray assigned
  to the task (``ray.get_gpu_ids()``: the devices of the ``CUDA_VISIBLE_DEVICES`` Ray set for
  it), then the call runs as every call does (``worker.run_on_worker``).
- ``GangMember``: one actor per worker of a gang, in its own bundle of the gang's placement
  group. Rank 0's ``master()`` runs first and returns the IP of its node and a port found free
  there; ``run(env, ctx, master, blob, *held)`` (Ray starts it once ``master`` is known) sets
  the rank's variables (``taskenv.rank_env``), ``MASTER_ADDR`` and ``MASTER_PORT`` from
  ``master`` and ``PODIUM_GPUS`` from Ray's GPUs, then runs the call as ``run_placed`` does.

Invariants: this module imports only ``base`` and ``worker`` of this package (a worker loads
nothing of the driver's side) and not ``ray`` at import time; the context and GPUs a call sees
are Ray's assignment, and Ray's ``CUDA_VISIBLE_DEVICES`` is never overwritten; a member actor
runs one call and is killed after it, so its variables never reach another call.
"""

from __future__ import annotations

import dataclasses
import os
import socket
from typing import Any

from podium.executors.ray.base import ray_api
from podium.executors.ray.worker import run_on_worker
from podium.taskcontext import TaskContext, enter, leave


def ray_gpus() -> tuple[int, ...]:
    """The GPU indices Ray assigned to the running task or actor."""
    out: list[int] = []
    for g in ray_api().ray.get_gpu_ids():
        try:
            out.append(int(g))
        except (TypeError, ValueError):  # a device named by UUID: not an index
            continue
    return tuple(out)


def run_placed(ctx: TaskContext, blob: bytes, *held: Any) -> tuple[Any, dict[str, Any]]:
    """Run a call with ``ctx`` as its ``podium.context()``, holding the GPUs Ray gave it."""
    enter(dataclasses.replace(ctx, gpus=ray_gpus()))
    try:
        return run_on_worker(blob, *held)
    finally:
        leave()


class GangMember:
    """One worker of a gang (see the module docstring); Ray runs its methods one at a time."""

    def master(self) -> tuple[str, int]:
        """The IP of this node and a TCP port free on it now (rank 0's: the gang meets there)."""
        ip = ray_api().ray.util.get_node_ip_address()
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((ip, 0))
            return ip, int(s.getsockname()[1])

    def run(
        self, env: dict[str, str], ctx: TaskContext, master: tuple[str, int], blob: bytes, *held: Any
    ) -> tuple[Any, dict[str, Any]]:
        """Run worker ``ctx.rank`` of the gang's call with its variables (see the module docstring)."""
        gpus = ray_gpus()
        os.environ.update(env)
        os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = master[0], str(master[1])
        os.environ["PODIUM_GPUS"] = ",".join(str(g) for g in gpus)
        return run_placed(ctx, blob, *held)
