"""Duration estimates: what the planner assumes a task takes, and where that figure came from.

Order of preference: the spec's declared ``expected_duration`` ("declared"), else the median of
the task's measured history ("history"), else ``default`` ("default"). Pure: history is passed in.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from podium.model.task import TaskSpec


def estimate(spec: TaskSpec, history: Sequence[float], default: float = 1.0) -> tuple[float, str]:
    if spec.expected_duration is not None:
        return float(spec.expected_duration), "declared"
    if history:
        return float(statistics.median(history)), "history"
    return float(default), "default"
