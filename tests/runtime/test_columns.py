"""Reading a run from its snapshot's columns (``runtime.columns``) says what its view says.

On random runs (see ``runlogs``): the totals are those of the folded view, and the JSON is what
``podium show --json`` prints from the view's facts: the same values, keys in the same order.
"""

from __future__ import annotations

import json
import math

import pytest

from podium.model.events import Event, RunRecord
from podium.runtime import columns as runtime_columns
from podium.runtime.columns import document_text, read_columns, totals
from podium.runtime.reading import totals as view_totals
from podium.runtime.reading import view_facts
from podium.runtime.readmodel import run_document
from podium.runtime.snapshot import columns, encode
from podium.runtime.view import fold
from podium.store import MemoryStore
from runlogs import random_log

RECORD = RunRecord("r1", "w", "succeeded", 1.0, 2.0, {"token": "s3cret-value", "n": 3})


def _with_map(events: list[Event], n: int) -> list[Event]:
    """``events`` with a map of ``n`` items that all ran (before the run's final event, if any)."""
    end = events[-1] if events[-1].task_id is None and events[-1].type.startswith("Run") else None
    body = events[:-1] if end is not None and end.type != "RunStarted" else events
    if body[-1].type in ("RunSucceeded", "RunFailed", "RunCancelled") or body[-1].type == "RunCreated":
        return events
    out = list(body)
    ts = out[-1].ts

    def add(typ: str, tid: str, attempt: int = 0, data: dict | None = None) -> None:  # type: ignore[type-arg]
        out.append(Event(len(out) + 1, typ, tid, attempt, ts + len(out) * 0.001, data or {}))

    add("TaskExpanded", "bigmap", 0, {"count": n})
    for i in range(n):
        add("TaskQueued", f"bigmap[{i}]")
        add("TaskStarted", f"bigmap[{i}]", 1, {"node": "n1", "res": {"cpu": 1.0}})
        add("TaskSucceeded", f"bigmap[{i}]", 1, {"duration": 0.125 + i / 7})
    return out


def _same_totals(got, want) -> None:  # type: ignore[no-untyped-def]
    for f in got._fields:
        a, b = getattr(got, f), getattr(want, f)
        if isinstance(a, float) and isinstance(b, float):
            assert math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12), f
        else:
            assert a == b, f


@pytest.mark.parametrize("seed", range(60))
@pytest.mark.parametrize("chunk", [5000, 3, 1])
def test_totals_and_json_from_columns_are_those_of_the_view(
    seed: int, chunk: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runtime_columns, "CHUNK", chunk)  # pieces of every size, runs cut anywhere
    events = random_log(seed, tasks=1 + seed % 25)
    if seed % 3 == 0:  # a long map whose items ran in order: runs of items in the snapshot
        events = _with_map(events, 40)
    view = fold(events)
    cols = columns(encode(view))
    _same_totals(totals(cols), view_totals(view))
    facts = view_facts(RECORD, view)
    doc = run_document(RECORD, facts.totals, facts.tasks)
    doc["artifacts"] = [{"task_id": "t1", "size": 3}]
    want = json.loads(json.dumps(doc, default=str))
    got = json.loads("".join(document_text(RECORD, cols, {"artifacts": doc["artifacts"]})))
    assert got == want
    assert list(got) == list(want) and [list(t) for t in got["tasks"]] == [list(t) for t in want["tasks"]]


def test_a_run_with_events_after_its_snapshot_is_not_read_from_columns() -> None:
    events = random_log(5)
    store = MemoryStore()
    store.create_run(RunRecord("r", "w", "created", 1.0, 1.0), events[:1])
    store.append("r", events[1:-3])
    assert read_columns(store, "r") is None  # no snapshot
    store.put_snapshot("r", events[-4].seq, encode(fold(events[:-3])))
    assert read_columns(store, "r") is not None
    store.append("r", events[-3:])
    assert read_columns(store, "r") is None  # three events after it: fold them
