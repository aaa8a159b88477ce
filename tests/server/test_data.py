"""The server's read model over a real SQLite store: the runs index stays exact as runs are
added, redaction, and result previews that never run code from the store."""

from __future__ import annotations

import os
import pickle
import sqlite3
from pathlib import Path

from podium.model import events as ev
from podium.model.events import Event, ResultRecord, RunRecord
from podium.server import data
from podium.server.redact import preview, redact
from podium.store import open_store


def _add(store, run_id: str, ts: float, status: str = "succeeded") -> None:
    store.create_run(RunRecord(run_id, "wf", status, ts, ts), [Event(1, ev.RUN_CREATED, None, 0, ts, {})])


def test_the_runs_index_keeps_up_with_new_runs(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'p.db'}?journal=off")
    for i in range(5):
        _add(store, f"a{i}", 100.0 + i)
    items, total = data.list_runs(store, limit=3)
    assert total == 5 and [i["run_id"] for i in items] == ["a4", "a3", "a2"]
    for i in range(data.NEWEST + 50):  # more new runs than one pass reads: the index reads them all
        _add(store, f"b{i}", 1000.0 + i)
    items, total = data.list_runs(store, limit=2, offset=0)
    assert total == 5 + data.NEWEST + 50
    assert [i["run_id"] for i in items] == [f"b{data.NEWEST + 49}", f"b{data.NEWEST + 48}"]
    _add(store, "c", 5000.0, status="failed")
    items, total = data.list_runs(store, status="failed")
    assert total == 1 and items[0]["run_id"] == "c"
    assert data.list_runs(store, q="A3")[1] == 1
    store.close()


def test_redaction() -> None:
    value = {
        "api_key": "k",
        "Password": "p",
        "nested": [{"token": "t", "ok": "https://u:pw@h/x"}],
        "note": "Authorization: Bearer abcdefghijklmnop",
        "secret_empty": "",
    }
    out = redact(value)
    assert out["api_key"] == out["Password"] == out["nested"][0]["token"] == "***"
    assert out["nested"][0]["ok"] == "https://u:***@h/x"
    assert out["note"] == "Authorization: Bearer ***" and out["secret_empty"] == ""


class Boom:
    def __reduce__(self):
        return (os.system, ("touch /tmp/podium-preview-pwned",))


def test_previews_read_plain_data_and_run_nothing(tmp_path: Path) -> None:
    assert preview(pickle.dumps({"a": [1, 2.5, "x" * 3000], "b": {1, 2}}))["value"]["a"][2].endswith(
        "(3000 characters)"
    )
    marker = Path("/tmp/podium-preview-pwned")
    marker.unlink(missing_ok=True)
    evil = preview(pickle.dumps(Boom()))
    assert "not plain data" in evil["note"] and not marker.exists()
    assert "not previewed" in preview(b"\x80\x05garbage")["note"]
    big = preview(pickle.dumps(list(range(100_000))))
    assert big["value"][-1] == "... 99900 more items"
    secret = preview(pickle.dumps({"password": "hunter2"}))
    assert secret["value"] == {"password": "***"}
    store = open_store(f"sqlite:///{tmp_path / 'p.db'}?journal=off")
    _add(store, "r", 1.0, status="running")
    store.append(
        "r",
        [
            Event(2, ev.RUN_STARTED, None, 0, 1.0, {}),
            Event(3, ev.TASK_QUEUED, "t", 0, 1.0),
            Event(4, ev.TASK_STARTED, "t", 1, 1.0, {"node": "local", "res": {"cpu": 1}}),
            Event(5, ev.TASK_SUCCEEDED, "t", 1, 2.0, {"duration": 1.0}),
        ],
        [ResultRecord.of("t", 1, pickle.dumps(Boom()))],
    )
    detail = data.task_detail(store, "r", "t")
    assert "not plain data" in detail["result"]["note"] and not marker.exists()
    assert detail["attempts_detail"][0]["outcome"] == "succeeded"
    store.close()


def test_a_result_altered_in_the_database_is_described_not_previewed(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    store = open_store(f"sqlite:///{db}?journal=off")
    _add(store, "r", 1.0)
    done = Event(2, ev.TASK_SUCCEEDED, "t", 1, 2.0, {"duration": 0.5})
    store.append("r", [done], [ResultRecord.of("t", 1, pickle.dumps({"score": 0.9}))])
    assert data.result_preview(store, "r", "t")["value"] == {"score": 0.9}
    # a writer of the database (without the store's key) puts in other plain data, sha256 and all
    forged = ResultRecord.of("t", 1, pickle.dumps({"score": 1.0}))
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("UPDATE results SET data = ?, checksum = ?", (forged.data, forged.checksum))
    conn.close()
    for shown in (
        data.result_preview(store, "r", "t"),
        data.result_previews(store, "r", 0, 10)[0][0]["preview"],
    ):
        assert shown is not None and "value" not in shown
        assert "fails its checksum or authentication" in shown["note"]
    store.close()


def _noop() -> None:
    return None


def test_a_run_of_an_unregistered_workflow_has_the_graph_its_log_recorded(tmp_path: Path) -> None:
    """A run started from the CLI (no registered workflow) still gets its graph and critical
    path, from the dependencies RunCreated recorded."""
    from podium.executors.inline import InlineExecutor
    from podium.model import Node, Resources, TaskSpec, Workflow
    from podium.registry import REGISTRY
    from podium.runtime.engine import Engine
    from podium.testing import FakeClock

    REGISTRY.register("server_data_tests:noop", _noop)
    durations = {"a": 1.0, "b": 2.0, "c": 1.0, "s": 0.5}
    wf = Workflow.build(
        "chain",
        [
            TaskSpec(n, call="server_data_tests:noop", after=after, expected_duration=durations[n])
            for n, after in [("a", ()), ("b", ("a",)), ("c", ("b",)), ("s", ())]
        ],
    )
    clock = FakeClock()
    ex = InlineExecutor(
        [Node("local", Resources.of(cpu=2, memory="1GiB"))],
        clock=clock,
        duration=lambda c: durations[c.task_id],
    )
    store = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        run = Engine(store, ex, clock=clock).run(wf)
        out = data.run_detail(store, run.run_id)
    finally:
        store.close()
    assert {g["name"]: g["deps"] for g in out["graph"]} == {"a": [], "b": ["a"], "c": ["b"], "s": []}
    assert out["critical_path"] == ["a", "b", "c"]
