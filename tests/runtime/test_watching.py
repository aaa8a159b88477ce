"""An executor that watches its nodes (``types.WatchingExecutor``): the engine adopts a node
that joins mid-run at its next poll, without waiting for a lost worker.

Run on a real SQLite store with the inline executor on a fake clock: a node joins at a known
moment of simulated time, so where and when every task started is exact.
"""

from __future__ import annotations

from collections.abc import Sequence

from podium.executors.inline import InlineExecutor
from podium.model import Const, Node, Resources, TaskSpec, Workflow
from podium.model import events as ev
from podium.registry import REGISTRY
from podium.runtime.engine import Engine
from podium.runtime.loop import CANCEL_POLL
from podium.testing import FakeClock
from podium.types import WatchingExecutor


def sleeper(name: str) -> str:
    return name


REGISTRY.register("watch_tasks:sleeper", sleeper)

JOINS_AT = 15.0


class Watching(InlineExecutor):
    """Inline calls of the declared duration; node ``late`` joins at ``JOINS_AT`` (if ``watch``,
    the epoch says so; else only ``refresh`` would tell, after a lost worker)."""

    def __init__(self, clock: FakeClock, watch: bool) -> None:
        super().__init__([Node("first", Resources(cpu=1.0))], clock=clock)
        self.epoch = 0
        self.watch = watch
        clock.call_at(JOINS_AT, self._join)

    def _join(self) -> None:
        self._nodes = (*self._nodes, Node("late", Resources(cpu=1.0)))
        self.epoch += 1 if self.watch else 0

    def refresh(self) -> Sequence[Node]:
        return self._nodes

    def nodes_epoch(self) -> int:
        return self.epoch


def _run(store, watch: bool) -> tuple[dict[str, tuple[str, float]], float]:
    specs = [
        TaskSpec(f"t{i}", call="watch_tasks:sleeper", args={"name": Const(f"t{i}")}, expected_duration=10.0)
        for i in range(6)
    ]
    clock = FakeClock()
    ex = Watching(clock, watch)
    assert isinstance(ex, WatchingExecutor)
    result = Engine(store, ex, clock=clock).run(Workflow.build("watch", specs))
    assert result.ok
    events = store.events(result.run_id)
    t0 = events[0].ts
    started = {e.task_id: (e.data["node"], e.ts - t0) for e in events if e.type == ev.TASK_STARTED}
    return started, events[-1].ts - t0


def test_a_node_that_joins_gets_work_at_the_next_poll(store) -> None:
    started, makespan = _run(store, watch=True)
    on_late = sorted(at for node, at in started.values() if node == "late")
    assert on_late, "the node that joined got no work"
    assert JOINS_AT <= on_late[0] <= JOINS_AT + CANCEL_POLL + 1e-6
    assert makespan < 60.0  # six 10 s tasks on one cpu alone would take 60 s


def test_without_a_changed_epoch_the_run_keeps_its_nodes(store) -> None:
    started, makespan = _run(store, watch=False)
    assert {node for node, _ in started.values()} == {"first"}
    assert makespan == 60.0
