"""A run interrupted on one Ray cluster resumes on a new cluster from the durable SQLite store:
the result committed before the first cluster went away is reused, not recomputed.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from ray_helpers import task

from podium.executors.ray import RayExecutor
from podium.model import Const, Ref, TaskSpec, Workflow
from podium.model import events as ev
from podium.runtime.engine import Engine
from podium.runtime.view import fold
from podium.store.sqlite import SqliteStore

pytestmark = pytest.mark.ray


def _workflow(tmp: Path) -> Workflow:
    """first (appends to a ledger) -> wait (fails unless signalled within 1 s) -> second (first + "!")."""
    return Workflow.build(
        "resume-on-ray",
        [
            TaskSpec(
                "first", call=task("count"), args={"tag": Const("a"), "ledger": Const(str(tmp / "ledger"))}
            ),
            TaskSpec(
                "wait",
                call=task("hold"),
                args={"tag": Const("wait"), "signals": Const(str(tmp)), "timeout": Const(1.0)},
                after=("first",),
            ),
            TaskSpec(
                "second",
                call=task("gate"),
                args={"value": Ref("first"), "marker": Const(str(tmp / "go"))},
                after=("wait",),
            ),
        ],
    )


def test_committed_result_survives_a_new_cluster(ray_cluster, registry, tmp_path: Path) -> None:
    wf = _workflow(tmp_path)
    db = str(tmp_path / "podium.db")
    store = SqliteStore(db)
    executor = RayExecutor(registry=registry)
    try:
        first_try = Engine(store, executor).run(wf, run_id="resume1")
    finally:
        executor.shutdown()
        store.close()
    assert first_try.status == "failed"  # wait got no signal; first's result is committed
    assert first_try.view.tasks["first"].state == "succeeded"
    assert (tmp_path / "ledger").read_text() == "a\n"

    ray_cluster.restart()  # the first cluster is gone; a new one with new node ids takes over
    (tmp_path / "go").write_text("")
    store = SqliteStore(db)
    executor = RayExecutor(registry=registry)
    try:
        result = Engine(store, executor).resume("resume1", wf)
        events = store.events("resume1")
    finally:
        executor.shutdown()
        store.close()
    assert result.ok, result.status
    assert result["second"] == "A!"  # built from the result committed on the first cluster
    assert (tmp_path / "ledger").read_text() == "a\n"  # first never ran again
    assert [e.attempt for e in events if e.type == ev.TASK_STARTED and e.task_id == "first"] == [1]
    assert fold(events).tasks["first"].state == "succeeded"
