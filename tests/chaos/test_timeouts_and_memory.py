"""Hanging tasks caught by timeouts, memory hogs caught and retried with more memory.

Hanging tasks hang on their first execution only (a marker file remembers it): thread tasks
are abandoned at their timeout, process tasks have their process group killed; the retry
returns at once and the run finishes. Memory hogs are process tasks with a memory request
that allocate past it: the attempt must fail as ``oom``, and a retry must get more memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from chaos_harness import engine_for, executor, load, registry, spec_of
from chaos_invariants import STATS, assert_no_leftovers, check_run, count_faults

from podium.model import events as ev
from podium.model.resources import parse_size
from podium.store.sqlite import SqliteStore

RETRY = {"attempts": 3, "delay": "10ms", "jitter": 0}
REQUEST = "64MiB"


def _task(fn: str, name: str, deps: Sequence[str] = (), **args: Any) -> dict[str, Any]:
    return {
        "call": f"chaos_tasks:{fn}",
        "args": {
            "log": "${params.log}",
            "name": name,
            **args,
            **({"inputs": [f"${{{d}}}" for d in deps]} if deps else {}),
        },
        "retries": dict(RETRY),
    }


def _run(tmp_path: Path, tasks: dict[str, Any], name: str, expect: str = "succeeded") -> Any:
    reg = registry()
    wf = load(spec_of(tasks, name), reg)
    db, log = tmp_path / "state.db", tmp_path / "effects.log"
    store = SqliteStore(str(db))
    ex = executor(reg)
    try:
        result = engine_for(store, ex).run(wf, {"log": str(log)}, run_id=name)
        assert result.status == expect, (
            result.status,
            {t: v.error for t, v in result.view.tasks.items() if v.error},
        )
        verdict = check_run(store, name, log, db=db, expect=expect)
    finally:
        ex.shutdown()
        store.close()
    count_faults(verdict)
    if expect == "succeeded":
        STATS["runs_completed"] += 1
    return verdict


@pytest.mark.chaos
def test_hanging_thread_and_process_tasks_are_stopped_by_timeouts(tmp_path: Path, tag: str) -> None:
    tasks: dict[str, Any] = {}
    hangers = []
    # the process timeout leaves room for a worker to start on a loaded machine (it marks its
    # first attempt only once it runs; a start slower than the timeout would hang twice)
    for i in range(4):
        for isolation, timeout, hang in (("thread", "300ms", 3.0), ("process", "3s", 60.0)):
            name = f"hang_{isolation}_{i}"
            t = _task("hang_once", name, marker=str(tmp_path / f"{name}.marker"), hang=hang)
            t["timeout"] = timeout
            t["isolation"] = isolation
            tasks[name] = t
            hangers.append(name)
    tasks["after"] = _task("effect", "after", deps=hangers)
    verdict = _run(tmp_path, tasks, "hangs")
    timed_out = {
        e.task_id
        for e in verdict.events
        if e.type == ev.TASK_RETRYING and e.data["error"]["kind"] == "timeout"
    }
    assert timed_out == set(hangers)
    assert all(verdict.committed[h] == 2 for h in hangers), verdict.committed
    assert_no_leftovers(tag, tmp_path)


@pytest.mark.chaos
def test_a_memory_hog_is_caught_as_out_of_memory(tmp_path: Path, tag: str) -> None:
    """A process task allocating without end past its request fails as oom; its siblings finish."""
    hog = _task("hog_forever", "hog")
    hog.update(isolation="process", resources={"memory": REQUEST}, retries=0)
    tasks = {
        "hog": hog,
        "sibling": _task("effect", "sibling"),
        "after": _task("effect", "after", deps=["hog"]),
    }
    verdict = _run(tmp_path, tasks, "hog-caught", expect="failed")
    assert verdict.view.tasks["hog"].state == "failed"
    assert verdict.view.tasks["hog"].error["kind"] == "oom", verdict.view.tasks["hog"].error
    assert verdict.view.tasks["sibling"].state == "succeeded"
    assert verdict.view.tasks["after"].state == "skipped"
    assert_no_leftovers(tag, tmp_path)


@pytest.mark.chaos
def test_a_memory_hog_is_retried_with_more_memory(tmp_path: Path, tag: str) -> None:
    """Each hog needs about twice its request: its first attempt fails as oom, a retry with a
    larger memory grant (shown in the retry's TaskStarted resources) succeeds."""
    request = parse_size(REQUEST)
    tasks: dict[str, Any] = {}
    for i in range(3):
        t = _task("hog", f"hog{i}", mib=140)
        t.update(isolation="process", resources={"memory": REQUEST})
        tasks[f"hog{i}"] = t
    tasks["after"] = _task("effect", "after", deps=list(tasks))
    verdict = _run(tmp_path, tasks, "hog-retried")
    for i in range(3):
        mine = [e for e in verdict.events if e.task_id == f"hog{i}"]
        kinds = [e.data["error"]["kind"] for e in mine if e.type == ev.TASK_RETRYING]
        assert kinds and set(kinds) == {"oom"}, kinds
        started = [e for e in mine if e.type == ev.TASK_STARTED]
        assert started[-1].data["res"].get("memory", 0) > request, started[-1].data
    assert verdict.retried_kinds["oom"] >= 3
    assert_no_leftovers(tag, tmp_path)
