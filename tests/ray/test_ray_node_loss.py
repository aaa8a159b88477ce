"""Losing a Ray node mid-run: its tasks fail as ``worker_lost``, are retried elsewhere (or wait,
with a visible reason, for a node that can hold them), and the run completes with nothing lost.

The engine runs in a thread; the test watches the tasks start (each writes a marker file naming
its Ray node), kills node-b, checks what the executor reports while it is gone, then adds a
replacement node-b and lets the tasks finish.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
from ray_helpers import in_thread, task, wait_for

from podium.errors import TIMEOUT, WORKER_LOST, TaskFailedError
from podium.executors.ray import RayExecutor
from podium.model import Const, Resources, TaskSpec, Workflow
from podium.model import events as ev
from podium.model.cluster import Node
from podium.model.task import TaskCall
from podium.runtime.engine import Engine
from podium.runtime.view import fold
from podium.store.sqlite import SqliteStore

pytestmark = pytest.mark.ray


def _started(signals: Path, tag: str) -> list[str]:
    return [p.read_text() for p in sorted(signals.glob(f"{tag}.*.started"))]


def test_node_loss_retries_elsewhere_and_completes(ray_cluster, registry, tmp_path: Path) -> None:
    r"""
    fill_head (head=1)   fill_a (nodeA=1)   plain (cpu=1)   pinned (cpu=0, nodeB=1)
    plain and pinned both start on node-b (the only node left with room); node-b is killed.
    """
    signals = tmp_path / "signals"
    signals.mkdir()
    changes: list[list[str]] = []

    def changed(nodes: Sequence[Node]) -> None:
        changes.append(sorted(n.name for n in nodes))

    def hold(name: str, res: Resources, duration: float) -> TaskSpec:
        args = {"tag": Const(name), "signals": Const(str(signals))}
        return TaskSpec(name, call=task("hold"), args=args, resources=res, expected_duration=duration)

    wf = Workflow.build(
        "node-loss",
        [  # longer expected durations dispatch first: the fills take head and node-a
            hold("fill_head", Resources(cpu=1.0, custom=(("head", 1.0),)), 30.0),
            hold("fill_a", Resources(cpu=1.0, custom=(("nodeA", 1.0),)), 20.0),
            hold("plain", Resources(cpu=1.0), 10.0),
            hold("pinned", Resources(cpu=0.0, custom=(("nodeB", 1.0),)), 5.0),
        ],
    )
    executor = RayExecutor(registry=registry, on_nodes_changed=changed)
    short_wait = RayExecutor(registry=registry, pending_timeout=1.0)
    store = SqliteStore(str(tmp_path / "podium.db"))
    runner, outcome = in_thread(lambda: Engine(store, executor).run(wf))
    try:
        for tag in ("fill_head", "fill_a", "plain", "pinned"):
            wait_for(f"{tag} to start", lambda t=tag: _started(signals, t))
        old_b = ray_cluster.nodes["node-b"].node_id
        assert _started(signals, "plain") == [old_b] and _started(signals, "pinned") == [old_b]

        lost = ray_cluster.remove("node-b")
        ray_cluster.wait_dead(lost)
        # the dead node is no longer a Podium node, and the change was reported
        wait_for("node-b to leave nodes()", lambda: "node-b" not in {n.name for n in executor.nodes()})
        assert ["head", "node-a"] in changes
        # pinned needs nodeB, which no live node has: it waits, saying why
        reason = wait_for("pinned to wait for a node", lambda: executor.waiting().get("pinned"))
        assert "node 'node-b' is gone" in reason and "nodeB=1" in reason
        # a call that cannot be placed in time fails as a timeout with a clear message
        spec = TaskSpec("probe", call=task("where"), resources=Resources(cpu=0.0, custom=(("nodeB", 1.0),)))
        call = TaskCall("r0", "probe", 1, spec, {"tag": "p"}, {}, spec.resources, "node-b")
        assert "node-b" not in {n.name for n in short_wait.refresh()}
        with pytest.raises(TaskFailedError) as info:
            short_wait.submit(call).result(timeout=60)
        assert info.value.record.kind == TIMEOUT
        assert "no live node could hold it within 1s" in info.value.record.message

        (signals / "go").write_text("")  # the fills and the rerun of plain may finish now
        new_b = ray_cluster.add("node-b").node_id
        runner.join(timeout=90)
        assert not runner.is_alive(), "the run did not finish after node-b came back"
        events = store.events(outcome["result"].run_id) if "result" in outcome else []
        results = store.results(outcome["result"].run_id) if "result" in outcome else {}
    finally:
        (signals / "go").write_text("")
        runner.join(timeout=30)
        short_wait.shutdown()
        executor.shutdown()
        store.close()
        if "node-b" not in ray_cluster.nodes:
            ray_cluster.add("node-b")

    assert "error" not in outcome, outcome.get("error")
    result = outcome["result"]
    assert result.ok, result.status
    view = fold(events)
    assert {t: v.state for t, v in view.tasks.items()} == dict.fromkeys(wf.tasks, "succeeded")
    assert set(results) == set(wf.tasks)  # every result committed to Podium's store: nothing lost
    for name in ("plain", "pinned"):
        retried = [e for e in events if e.type == ev.TASK_RETRYING and e.task_id == name]
        assert [e.data["error"]["kind"] for e in retried] == [WORKER_LOST], name
        assert view.tasks[name].attempt == 2
        assert result[name]["node_id"] != lost, f"{name} was not retried elsewhere"
    # each task declared no retries of its own (attempts=1): the lost worker did not use them up
    assert all(s.retry.attempts == 1 for s in wf.tasks.values())
    assert result["pinned"]["node_id"] == new_b  # it waited for the new node holding nodeB
    assert {n.name for n in executor.refresh()} == {"head", "node-a", "node-b"}
    assert executor.node_id("node-b") == new_b  # the replacement carries the stable name
