"""Duration estimates: what the planner and the run loop assume a task takes, and why.

The one rule, in order of preference: the spec's declared ``expected_duration`` ("declared"),
else the median of the task's measured history ("history"), else ``default`` ("default").
Pure: history is passed in (the engine reads it from the store; ``podium plan`` has none).
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence

from podium.model.task import TaskSpec


def estimate(spec: TaskSpec, history: Sequence[float], default: float = 1.0) -> tuple[float, str]:
    """Seconds task ``spec`` is expected to take and where the figure came from."""
    if spec.expected_duration is not None:
        return float(spec.expected_duration), "declared"
    if history:
        return float(statistics.median(history)), "history"
    return float(default), "default"


def needs_history(tasks: Mapping[str, TaskSpec]) -> bool:
    """Whether any task lacks a declared duration (so history is worth reading)."""
    return any(t.expected_duration is None for t in tasks.values())


def estimate_all(
    tasks: Mapping[str, TaskSpec], history: Mapping[str, Sequence[float]], default: float | None
) -> dict[str, float]:
    """``estimate`` of every task by name; with ``default`` None, tasks with neither a declared
    duration nor history are left out."""
    out: dict[str, float] = {}
    for name, spec in tasks.items():
        seconds, source = estimate(spec, history.get(name, ()), 0.0 if default is None else default)
        if source != "default" or default is not None:
            out[name] = seconds
    return out
