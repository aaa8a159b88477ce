"""Duration estimates: what the planner and the run loop assume a task takes, and why.

The one rule, in order of preference: what was learned from the task's measured attempts
(``learned``: a p50 that ``podium.learn`` fitted on enough samples, ``learn.MIN_SAMPLES``)
("learned"); else the spec's declared ``expected_duration`` ("declared"): a declared figure is
a prior that history overrides once there is enough of it, unless learning is off (the engine's
``learn=False``, ``podium run --no-learn``: declared figures are then pinned); else the median
of the task's recorded durations ("history"); else ``default`` ("default"). Pure: history and
learned figures are passed in (the engine reads them from the store; ``podium plan`` has none).
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence

from podium.model.task import TaskSpec


def estimate(
    spec: TaskSpec, history: Sequence[float], default: float = 1.0, learned: float | None = None
) -> tuple[float, str]:
    """Seconds task ``spec`` is expected to take and where the figure came from."""
    if learned is not None and learned > 0:
        return float(learned), "learned"
    if spec.expected_duration is not None:
        return float(spec.expected_duration), "declared"
    if history:
        return float(statistics.median(history)), "history"
    return float(default), "default"


def needs_history(tasks: Mapping[str, TaskSpec]) -> bool:
    """Whether any task lacks a declared duration (so history is worth reading)."""
    return any(t.expected_duration is None for t in tasks.values())


def estimate_all(
    tasks: Mapping[str, TaskSpec],
    history: Mapping[str, Sequence[float]],
    default: float | None,
    learned: Mapping[str, float] | None = None,
) -> dict[str, float]:
    """``estimate`` of every task by name; with ``default`` None, tasks with neither a learned
    or declared duration nor history are left out."""
    out: dict[str, float] = {}
    learned = learned or {}
    for name, spec in tasks.items():
        d = 0.0 if default is None else default
        seconds, source = estimate(spec, history.get(name, ()), d, learned.get(name))
        if source != "default" or default is not None:
            out[name] = seconds
    return out
