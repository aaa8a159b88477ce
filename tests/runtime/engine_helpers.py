"""Helpers shared by the engine tests."""

from __future__ import annotations

from collections.abc import Mapping

from podium.executors.inline import InlineExecutor
from podium.executors.local import LocalExecutor
from podium.model import Node, Resources
from podium.model.task import TaskCall
from podium.testing import FakeClock


def node(cpu: float = 2, memory: str = "4GiB", **custom: float) -> Node:
    return Node("local", Resources.of(cpu=cpu, memory=memory, **custom))


def make_executor(cpu: float = 2, memory: str = "4GiB", **custom: float) -> LocalExecutor:
    """A local executor serving one node of exactly this capacity."""
    return LocalExecutor([node(cpu, memory, **custom)])


def simulated(
    cpu: float = 2, memory: str = "4GiB", durations: Mapping[str, float] | None = None, **custom: float
) -> tuple[InlineExecutor, FakeClock]:
    """An inline executor on one node of this capacity whose calls take simulated time on a fake
    clock: ``durations[task_id]`` seconds, else the task's ``expected_duration``, else 0. Give
    the clock to the engine too: a run then takes no real time and its log's times are exact."""
    clock = FakeClock()
    given = dict(durations or {})

    def duration(call: TaskCall) -> float:
        return given.get(call.task_id, call.spec.expected_duration or 0.0)

    return InlineExecutor([node(cpu, memory, **custom)], clock=clock, duration=duration), clock
