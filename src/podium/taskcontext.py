"""``podium.context()``: which task is running here, and what it holds.

Inside a task, ``podium.context()`` returns a ``TaskContext``: ``run_id``, ``task_id``,
``attempt``, ``node``, ``gpus`` (the device indices it holds, as in its
``CUDA_VISIBLE_DEVICES``), ``cpus`` (its cpu request) and, for a worker of a gang, ``rank``,
``world_size`` and ``local_rank`` (0, 1 and 0 otherwise).

Where it comes from, cheapest first:
- a thread task: ``RUNNING`` maps each executor thread to the future of the call it runs (the
  thread executor keeps that map anyway to track its threads; the future carries the call);
- a Python task in a worker process (process executor, Ray): the worker ``enter``s the call's
  context before the function runs;
- any process a task started (a shell command running a Python script, a child process): the
  ``PODIUM_*`` variables of its environment.

Invariants: reading the context never changes it; outside a task ``context()`` raises
``UsageError``. This module imports only the error root.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from podium.errors import UsageError

#: Executor thread -> the future of the call it runs (None between calls).
RUNNING: dict[threading.Thread, Any] = {}
_ENTERED: list[TaskContext] = []  # the call a worker process runs now


@dataclass(frozen=True, slots=True)
class TaskContext:
    """What a running task is and holds (see the module docstring)."""

    run_id: str
    task_id: str
    attempt: int
    node: str
    gpus: tuple[int, ...] = ()
    cpus: float = 1.0
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0


def of_call(call: Any, rank: int = 0) -> TaskContext:
    """The context of worker ``rank`` of a ``TaskCall``."""
    grants = call.grants
    mine = grants[rank] if grants else None
    node = mine.node if mine is not None else call.node
    local = sum(1 for g in grants[:rank] if g.node == node)
    return TaskContext(
        call.run_id,
        call.task_id,
        call.attempt,
        node,
        tuple(mine.gpus) if mine is not None else (),
        call.resources.cpu,
        rank,
        max(1, len(grants)) if call.spec.workers > 1 else 1,
        local,
    )


def of_env(env: Mapping[str, str]) -> TaskContext | None:
    """The context the ``PODIUM_*`` variables of an environment describe (None: none)."""
    task_id = env.get("PODIUM_TASK_ID")
    if task_id is None:
        return None
    gpus = env.get("PODIUM_GPUS", "")
    try:
        return TaskContext(
            env.get("PODIUM_RUN_ID", ""),
            task_id,
            int(env.get("PODIUM_ATTEMPT", "1")),
            env.get("PODIUM_NODE", ""),
            tuple(int(g) for g in gpus.split(",") if g.strip()),
            float(env.get("PODIUM_CPUS", "1")),
            int(env.get("RANK", "0")),
            int(env.get("WORLD_SIZE", "1")),
            int(env.get("LOCAL_RANK", "0")),
        )
    except ValueError:
        raise UsageError("podium.context(): malformed PODIUM_* variables in this environment") from None


def enter(ctx: TaskContext) -> None:
    """A worker process starts running the call of ``ctx`` (``leave`` when it ends)."""
    _ENTERED.append(ctx)


def leave() -> None:
    if _ENTERED:
        _ENTERED.pop()


def context() -> TaskContext:
    """The running task's context (see the module docstring)."""
    fut = RUNNING.get(threading.current_thread())
    call = getattr(fut, "podium_call", None) if fut is not None else None
    if call is not None:
        return of_call(call)
    if _ENTERED:
        return _ENTERED[-1]
    ctx = of_env(os.environ)
    if ctx is None:
        raise UsageError("podium.context() is only available inside a running task")
    return ctx


__all__ = ["RUNNING", "TaskContext", "context", "enter", "leave", "of_call", "of_env"]
