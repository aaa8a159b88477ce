"""Failure classes end to end: out of memory retried with more memory, the result cache and its
checksum, quarantine of a task that keeps killing its worker."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from runtime_tasks import call

from podium.model import Const, Param, ParamSpec, Ref, Resources, RetryPolicy, TaskSpec, Workflow
from podium.model import events as ev
from podium.runtime.engine import Engine
from podium.runtime.view import fold
from podium.store import open_store

MiB = 1024 * 1024


def test_out_of_memory_is_retried_with_more_memory_only(store, executor, tmp_path: Path) -> None:
    log = tmp_path / "attempts.log"
    wf = Workflow.build(
        "hungry",
        [
            TaskSpec(
                "hog",
                call=call("hog"),
                args={"megabytes": Const(220), "log": Const(str(log))},
                resources=Resources.of(cpu=1, memory="150MiB"),
                isolation="process",
            )
        ],
    )
    result = Engine(store, executor).run(wf)
    assert result.ok, fold(store.events(result.run_id)).tasks["hog"].error
    assert result["hog"] == 220
    events = [e for e in store.events(result.run_id) if e.task_id == "hog"]
    retry = next(e for e in events if e.type == ev.TASK_RETRYING)
    assert retry.data["error"]["kind"] == "oom"
    assert retry.data["memory"] == 300 * MiB
    starts = [e.data["res"] for e in events if e.type == ev.TASK_STARTED]
    assert starts[0]["memory"] == 150 * MiB and starts[-1]["memory"] == 300 * MiB
    assert starts[0]["cpu"] == starts[-1]["cpu"] == 1.0  # only the resource that ran out grew
    view = fold(store.events(result.run_id))
    assert view.tasks["hog"].failures == 0  # an out-of-memory retry is not one of the user's retries
    assert log.read_text().count("attempt") == len(starts)


def test_cache_reuses_a_result_and_rejects_a_corrupt_one(store, executor, tmp_path: Path) -> None:
    log = tmp_path / "calls.log"

    def wf() -> Workflow:
        return Workflow.build(
            "cached",
            [TaskSpec("c", call=call("counted"), args={"log": Const(str(log)), "x": Param("x")}, cache=True)],
            [ParamSpec("x", "int")],
        )

    first = Engine(store, executor).run(wf(), {"x": 4})
    second = Engine(store, executor).run(wf(), {"x": 4})
    assert first["c"] == second["c"] == 40
    assert log.read_text().split() == ["4"]  # ran once
    assert fold(store.events(second.run_id)).tasks["c"].cached
    third = Engine(store, executor).run(wf(), {"x": 5})  # other inputs, other key
    assert third["c"] == 50 and log.read_text().split() == ["4", "5"]
    assert not fold(store.events(third.run_id)).tasks["c"].cached

    # corrupt the cached bytes behind the store's back: the checksum fails and the task reruns
    db = sqlite3.connect(tmp_path / "podium.db")
    db.execute("UPDATE cache SET data = ?", (b"\x80\x05K\x07.",))  # a valid pickle of 7, wrong bytes
    db.commit()
    db.close()
    fourth = Engine(store, executor).run(wf(), {"x": 4})
    assert fourth["c"] == 40
    assert log.read_text().split() == ["4", "5", "4"]
    assert not fold(store.events(fourth.run_id)).tasks["c"].cached


def test_a_task_that_keeps_killing_its_worker_is_quarantined(store, executor, tmp_path: Path) -> None:
    wf = Workflow.build(
        "killer",
        [
            TaskSpec(
                "k",
                call=call("suicide"),
                isolation="process",
                retry=RetryPolicy(attempts=2),
            )
        ],
    )
    result = Engine(store, executor).run(wf)
    view = fold(store.events(result.run_id))
    t = view.tasks["k"]
    assert t.state == "failed"
    assert t.error["kind"] == "worker_lost"
    assert (
        "quarantined" in t.error["message"]
        and "SIGKILL" in t.error["message"]
        and "'k'" in t.error["message"]
    )
    starts = [e for e in store.events(result.run_id) if e.type == ev.TASK_STARTED]
    # lost workers do not consume the user's retries: 3 free retries, then the 2 attempts of its policy
    assert len(starts) == 5


def test_a_corrupted_result_fails_its_checksum_and_its_task_reruns(store, executor, tmp_path: Path) -> None:
    r"""
    a -> b -> c, and c also reads a. c fails on the first run; a's stored result is then
    corrupted on disk; the resume re-runs a (its checksum fails) instead of handing c bad data.
    """
    log = tmp_path / "calls.log"
    gate = tmp_path / "c-may-pass"
    wf = Workflow.build(
        "corrupt",
        [
            TaskSpec("a", call=call("counted"), args={"log": Const(str(log)), "x": Const(1)}),
            TaskSpec("b", call=call("counted"), args={"log": Const(str(log)), "x": Ref("a")}),
            TaskSpec(
                "c", call=call("gated_sum"), args={"gate": Const(str(gate)), "a": Ref("a"), "b": Ref("b")}
            ),
        ],
    )
    first = Engine(store, executor).run(wf)
    assert not first.ok and log.read_text().split() == ["1", "10"]
    store.close()
    db = sqlite3.connect(tmp_path / "podium.db")
    assert db.execute("UPDATE results SET data = ? WHERE task_id = 'a'", (b"\x80\x05K\x07.",)).rowcount == 1
    db.commit()
    db.close()
    gate.touch()
    again = open_store(str(tmp_path / "podium.db"))
    try:
        resumed = Engine(again, executor).resume(first.run_id, wf)
        assert resumed.ok
        assert resumed["c"] == 10 + 100  # a's true value 10, not the corrupt 7
        assert log.read_text().split() == ["1", "10", "1"]  # a ran again; b did not
        events = again.events(first.run_id)
        inval = [e for e in events if e.type == ev.TASK_INVALIDATED]
        assert [e.task_id for e in inval] == ["a"] and "checksum" in inval[0].data["reason"]
        assert all(r.verify() for r in again.results(first.run_id).values())
        assert fold(events).state == "succeeded"
    finally:
        again.close()
