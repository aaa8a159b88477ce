"""A snapshot of a run's view (``runtime.snapshot``) plus the events after it is the fold of the log.

Random legal runs (retries, failures, maps expanded again into fewer items, cancellation, crashes
and resumes, invalidated results, services, GPUs and gangs, measured usage) are cut at every
point: the snapshot of the fold up to the cut, decoded, with the rest of the log applied, must be
the view a fold of the whole log gives, field by field. Damaged snapshots are refused, never
half-read.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

from podium.runtime.snapshot import FIELDS, FORMAT, SnapshotError, decode, encode
from podium.runtime.view import RunView, TaskView, fold
from runlogs import assert_same_view, random_log


def test_every_task_field_is_in_the_snapshot() -> None:
    declared = set(TaskView.__annotations__) | {"task_id"}
    assert declared == set(FIELDS)


@pytest.mark.parametrize("seed", range(40))
def test_a_snapshot_at_any_point_plus_the_rest_of_the_log_is_the_fold(seed: int) -> None:
    events = random_log(seed)
    whole = fold(events)
    for cut in range(0, len(events) + 1, max(1, len(events) // 15)):
        view = decode(encode(fold(events[:cut])))
        assert view.last_seq == (events[cut - 1].seq if cut else 0)
        for e in events[cut:]:
            view.apply(e)
        assert_same_view(view, whole)


@settings(max_examples=60, deadline=None)
@given(seed=hs.integers(0, 10**6), tasks=hs.integers(1, 30))
def test_snapshots_round_trip_on_many_runs(seed: int, tasks: int) -> None:
    events = random_log(seed, tasks)
    view = fold(events)
    assert_same_view(decode(encode(view)), view)


def test_tasks_sharing_one_resources_dict_share_it_again() -> None:
    view = RunView()
    shared = {"cpu": 1.0}
    for i in range(3):
        view.task(f"sq[{i}]").resources = shared
    view.last_seq = 3  # as if each had its event
    back = decode(encode(view))
    assert {id(t.resources) for t in back.tasks.values()} == {id(back.tasks["sq[0]"].resources)}
    assert back.tasks["sq[2]"].resources == shared


def _doc(view: RunView) -> dict:  # type: ignore[type-arg]
    return json.loads(encode(view))


def _bytes(doc: dict) -> bytes:  # type: ignore[type-arg]
    return json.dumps(doc).encode()


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: d.update(format="podium.snapshot/999"),
        lambda d: d.update(n=d["n"] + 1),
        lambda d: d["ids"].__setitem__(0, 7),
        lambda d: d.update(ids=[["sq", 0, 10**9]]),
        lambda d: d.update(ids=[["s[q", 0, 2], *d["ids"][2:]]),
        lambda d: d["attempt"].__setitem__(0, "1"),
        lambda d: d["queued_at"].__setitem__(0, "soon"),
        lambda d: d.update(started_at=""),
        lambda d: d["usage"].update(has=[10**6]),
        lambda d: d["resources"].update(codes=[99] * d["n"]),
        lambda d: d["state"].update(values=[{"a": 1}]),
        lambda d: d["resources"].update(values=["cpu"]),
        lambda d: d["run"].update(last_seq="3"),
        lambda d: d["run"].update(last_ts="late"),
        lambda d: d.update(error=[[99, {"kind": "user"}]]),
        lambda d: d.pop("busy"),
    ],
)
def test_a_damaged_snapshot_is_refused(damage) -> None:  # type: ignore[no-untyped-def]
    doc = _doc(fold(random_log(3)))
    damage(doc)
    with pytest.raises(SnapshotError):
        decode(_bytes(doc))


@pytest.mark.parametrize("data", [b"", b"not json", b"[1, 2]", b"\xff", b"{}"])
def test_bytes_that_are_no_snapshot_are_refused(data: bytes) -> None:
    with pytest.raises(SnapshotError):
        decode(data)


def test_a_snapshot_claiming_more_tasks_than_events_is_refused() -> None:
    view = RunView()
    for i in range(3):
        view.task(f"t{i}")
    view.last_seq = 2  # every task of a real view had an event: three tasks need three
    with pytest.raises(SnapshotError, match="more tasks than events"):
        decode(encode(view))


def test_the_format_is_named() -> None:
    assert _doc(RunView())["format"] == FORMAT


@pytest.mark.parametrize(
    "ids",
    [
        [],
        ["a"],
        ["m[0]", "m[1]", "m[2]", "m[4]", "m[5]", "x", "m[6]"],
        ["x[01]", "x[1]", "x[2]", "a[b]", "a[b][0]", "p%d[0]", "p%d[1]", "[1]", "[2]", "é[0]", "é[1]"],
        [f"big[{i}]" for i in range(1000)] + [f"big[{i}]" for i in range(2000, 2007)],
    ],
)
def test_runs_of_map_items_are_kept_as_one_entry_and_read_back_in_order(ids: list[str]) -> None:
    view = RunView()
    for tid in ids:
        view.task(tid)
    view.last_seq = len(ids)  # as if each had its event
    doc = _doc(view)
    assert decode(encode(view)).tasks.keys() == view.tasks.keys()
    assert len(doc["ids"]) <= len(ids)
    if len(ids) > 100:
        assert doc["ids"] == [["big", 0, 1000], ["big", 2000, 7]]
