"""`podium show` of a run: a map's items summed up on its row, and T as the run's active time.

A real run with a map of 30 (one item fails) is shown: the map's row says how its items ended
with their p50/p95, the failed item is listed below the table, no item gets a row of its own.
A run resumed an hour after its orchestrator died has T = its active spans (5 s), and its wall
time (3605 s) beside it, in the text and in ``--json``.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from inprocess_cli import cli
from podium.model import events as ev
from podium.model.events import Event, RunRecord
from podium.runtime.view import fold
from podium.store import open_store

FLOW = textwrap.dedent(
    """
    import podium

    @podium.task(cpu=1)
    def items(n: int) -> list:
        return list(range(n))

    @podium.task(cpu=1)
    def sq(x: int) -> int:
        if x == 3:
            raise ValueError("three is bad")
        return x * x

    @podium.flow(name="spans_mapper")
    def spans_mapper(n: int = 30):
        sq(x=podium.each(items(n=n)))
    """
)


def test_the_text_table_sums_up_a_map_and_lists_its_failed_item(tmp_path: Path) -> None:
    (tmp_path / "spanflow.py").write_text(FLOW, encoding="utf-8")
    db = str(tmp_path / "p.db")
    code, out, err = cli(
        ["run", "spanflow.py", "--run-id", "r1", "--store", db, "--no-progress", "--keep-going"], tmp_path
    )
    assert code == 1, err  # one item failed
    assert "map of 30, 29 succeeded, 1 failed, p50" in out
    code, out, err = cli(["show", "r1", "--store", db], tmp_path)
    assert code == 0, err
    assert "map of 30, 29 succeeded, 1 failed, p50" in out
    assert "sq[0]" not in out and "sq[12]" not in out  # items are not printed one by one
    assert "sq[3] failed [user]: ValueError: three is bad" in out
    assert "(wall " not in out  # a run never stopped: its wall time is its T


def test_t_leaves_out_the_time_between_a_crash_and_the_resume(tmp_path: Path) -> None:
    db = str(tmp_path / "p.db")
    store = open_store(db)
    log = [
        Event(1, ev.RUN_CREATED, None, 0, 100.0, {"objective": {"alpha": 1.0, "beta": 0.0}}),
        Event(2, ev.RUN_STARTED, None, 0, 100.0),
        Event(3, ev.TASK_QUEUED, "a", 0, 101.0),
        Event(4, ev.TASK_STARTED, "a", 1, 102.0, {"node": "n", "res": {"cpu": 1.0}}),
        # the orchestrator dies here; an hour later the run is resumed
        Event(5, ev.RUN_STARTED, None, 0, 3702.0),
        Event(6, ev.TASK_RESET, "a", 1, 3702.0, {"reason": "orchestrator restarted"}),
        Event(7, ev.TASK_QUEUED, "a", 1, 3702.0),
        Event(8, ev.TASK_STARTED, "a", 2, 3703.0, {"node": "n", "res": {"cpu": 1.0}}),
        Event(9, ev.TASK_SUCCEEDED, "a", 2, 3705.0, {"duration": 2.0}),
        Event(10, ev.RUN_SUCCEEDED, None, 0, 3705.0),
    ]
    try:
        store.create_run(RunRecord("c", "w", "succeeded", 100.0, 3705.0), log[:1])
        store.append("c", log[1:])
    finally:
        store.close()
    assert fold(log).active_time() == 2.0 + 3.0  # 100..102 (to its last event), 3702..3705
    code, out, err = cli(["show", "c", "--json", "--store", db], tmp_path)
    assert code == 0, err
    doc = json.loads(out)
    assert doc["T"] == 5.0 and doc["wall_time"] == 3605.0  # active spans vs wall time
    code, out, err = cli(["show", "c", "--store", db], tmp_path)
    assert code == 0, err
    assert "T = 5.000 s (wall 3605.000 s)" in out
