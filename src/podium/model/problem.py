"""The planning problem: tasks with durations, resource vectors, dependencies and pins.

A ``PlanRequest`` is what the planner is asked to schedule. Each ``PlanTask`` has a reference
duration (seconds on a node of speed 1; on node n it takes ``duration / n.speed``), the resource
vector it holds while it runs, the tasks it waits for, an earliest start (``release``) and, for a
task already running, a pin ``(node, start)``. A gang (``workers`` > 1) needs that many slots
of its resources at once, on one node or spread over several. Times are on the run's clock: 0
is the run's start and ``now`` is the current instant (no unpinned task starts before it).

Invariants: plain frozen data; ``from_workflow`` is pure (durations are given, not measured).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from podium.errors import Problem, SpecError
from podium.model.graph import find_cycle
from podium.model.resources import Resources
from podium.model.workflow import Workflow


@dataclass(frozen=True)
class PlanTask:
    duration: float
    resources: Resources = Resources()
    deps: tuple[str, ...] = ()
    pinned: tuple[str, float] | None = None
    release: float = 0.0
    workers: int = 1


@dataclass(frozen=True)
class PlanRequest:
    tasks: Mapping[str, PlanTask]
    now: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "tasks", MappingProxyType(dict(self.tasks)))

    def deps(self) -> dict[str, tuple[str, ...]]:
        return {n: t.deps for n, t in self.tasks.items()}

    def validate(self, source: str | None = None) -> None:
        """Raise one ``SpecError`` listing every malformed task (bad durations, unknown deps, cycles)."""
        problems: list[Problem] = []
        for name, t in self.tasks.items():
            if not (t.duration >= 0.0) or t.duration == float("inf"):
                problems.append(
                    Problem(f"tasks.{name}.duration", f"must be a finite number >= 0, got {t.duration!r}")
                )
            if t.release < 0.0 or t.release != t.release:
                problems.append(Problem(f"tasks.{name}.release", f"must be >= 0, got {t.release!r}"))
            if t.workers < 1:
                problems.append(Problem(f"tasks.{name}.workers", f"must be >= 1, got {t.workers!r}"))
            for d in t.deps:
                if d not in self.tasks:
                    problems.append(Problem(f"tasks.{name}.deps", f"unknown task {d!r}"))
        cycle = find_cycle(self.deps())
        if cycle:
            problems.append(Problem("tasks", "dependency cycle: " + " -> ".join(cycle)))
        if problems:
            raise SpecError(problems, source)


def from_workflow(workflow: Workflow, durations: Mapping[str, float]) -> PlanRequest:
    """One ``PlanTask`` per workflow task: its resources, deps and ``durations[name]`` (default 1 s)."""
    tasks = {
        name: PlanTask(float(durations.get(name, 1.0)), spec.resources, spec.deps, workers=spec.workers)
        for name, spec in workflow.tasks.items()
    }
    return PlanRequest(tasks=tasks)
