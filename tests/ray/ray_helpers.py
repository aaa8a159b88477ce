"""Names shared by the Ray tests: the task module (loaded on the workers by path) and its tasks."""

from __future__ import annotations

from pathlib import Path

TASKS_MODULE = "podium_ray_tests_tasks"
TASKS_FILE = str(Path(__file__).with_name("ray_tasks.py"))


def task(name: str) -> str:
    """The registry name of task ``name`` of ``ray_tasks.py``."""
    return f"{TASKS_MODULE}:{name}"
