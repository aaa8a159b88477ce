"""Work a lost worker took with it goes first: a task retried after ``worker_lost`` starts
before ready tasks of the same priority that have not begun (so lost work restarts at the first
free slot, not behind the whole queue). On the inline executor with a fake clock: exact order."""

from __future__ import annotations

from collections import Counter

from podium.errors import WORKER_LOST
from podium.executors.failure import failure
from podium.executors.inline import InlineExecutor
from podium.model import Const, Node, Resources, TaskSpec, Workflow
from podium.model import events as ev
from podium.registry import REGISTRY
from podium.runtime.engine import Engine
from podium.testing import FakeClock

_RUNS: Counter[str] = Counter()


def once_lost(name: str) -> str:
    """Loses its worker on its first run (as a dead node would), then succeeds."""
    _RUNS[name] += 1
    if name == "a" and _RUNS[name] == 1:
        raise failure(WORKER_LOST, "NodeLost", "the node went away")
    return name


REGISTRY.register("lost_first:once_lost", once_lost)


def test_a_lost_task_restarts_before_equal_tasks_not_begun(store) -> None:
    specs = [
        TaskSpec(n, call="lost_first:once_lost", args={"name": Const(n)}, expected_duration=10.0)
        for n in ("a", "b", "c", "d")
    ]
    clock = FakeClock()
    ex = InlineExecutor([Node("one", Resources(cpu=1.0))], clock=clock)
    result = Engine(store, ex, clock=clock).run(Workflow.build("lost-first", specs))
    assert result.ok
    started = [e.task_id for e in store.events(result.run_id) if e.type == ev.TASK_STARTED]
    assert started == ["a", "a", "b", "c", "d"]
