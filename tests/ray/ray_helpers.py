"""Names shared by the Ray tests: the task module (loaded on the workers by path) and its tasks."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

TASKS_MODULE = "podium_ray_tests_tasks"
TASKS_FILE = str(Path(__file__).with_name("ray_tasks.py"))


def task(name: str) -> str:
    """The registry name of task ``name`` of ``ray_tasks.py``."""
    return f"{TASKS_MODULE}:{name}"


def wait_for(what: str, check: Callable[[], Any], timeout: float = 60.0) -> Any:
    """Poll ``check`` until it returns something true; return that (AssertionError at timeout)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def in_thread(run: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    """Start ``run()`` (an engine's run) in a thread; its return value lands in the dict under
    ``result``, or what it raised under ``error`` (for the test's assertions)."""
    outcome: dict[str, Any] = {}

    def body() -> None:
        try:
            outcome["result"] = run()
        except BaseException as e:  # reported by the test's assertions
            outcome["error"] = e

    runner = threading.Thread(target=body, name="engine")
    runner.start()
    return runner, outcome
