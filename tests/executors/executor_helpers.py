"""Helpers for executor tests: building task calls and polling for process state."""

from __future__ import annotations

import time
from typing import Any

import psutil

from podium.model import Resources, TaskCall, TaskSpec

FLOW_MODULE = "podium_executor_test_flow"


def make_call(
    fn: str | None = None,
    *,
    kind: str = "python",
    isolation: str = "thread",
    timeout: float | None = None,
    memory: object = 0,
    config: dict[str, Any] | None = None,
    node: str = "local",
    task_id: str | None = None,
    **kwargs: Any,
) -> TaskCall:
    name = task_id or fn or kind
    call = None if fn is None else (fn if ":" in fn else f"{FLOW_MODULE}:{fn}")
    spec = TaskSpec(
        name=name, kind=kind, call=call, config=config or {}, isolation=isolation, timeout=timeout
    )
    return TaskCall(
        run_id="run-1",
        task_id=name,
        attempt=1,
        spec=spec,
        kwargs=kwargs,
        config=spec.config,
        resources=Resources.of(memory=memory),
        node=node,
        timeout=timeout,
    )


def wait_until(predicate: Any, limit: float = 30.0) -> bool:
    """Poll ``predicate`` until it holds (a bound against hangs, not a timing assertion)."""
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.02)
    return bool(predicate())


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True
