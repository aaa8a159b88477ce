"""Every backend keeps a run's snapshot (``types.SnapshotStore``): never ahead of its log, never
replaced by an older one, and ``load_view`` (the snapshot plus the events after it) is the fold of
the log, also when the snapshot is damaged or lags the log.
"""

from __future__ import annotations

import json
import random
import sqlite3

import pytest

from podium.errors import StoreError
from podium.model.events import Event, RunRecord
from podium.runtime.columns import read_columns
from podium.runtime.reading import load_view
from podium.runtime.snapshot import encode
from podium.runtime.view import fold
from podium.store import SqliteStore
from podium.types import SnapshotStore, Store
from runlogs import assert_same_view, random_log


def _write(store: Store, run_id: str, events: list[Event], upto: int) -> None:
    store.create_run(RunRecord(run_id, "w", "created", 1.0, 1.0), events[:1])
    rng = random.Random(upto)
    i = 1
    while i < upto:
        n = rng.choice((1, 3, 20))
        store.append(run_id, events[i : min(upto, i + n)])
        i += n


def test_a_snapshot_and_the_events_after_it_read_as_the_fold(open_same) -> None:  # type: ignore[no-untyped-def]
    store = open_same()
    assert isinstance(store, SnapshotStore)
    for seed in range(6):
        events = random_log(seed)
        cut = len(events) // 2
        run_id = f"r{seed}"
        _write(store, run_id, events, cut)
        store.put_snapshot(run_id, events[cut - 1].seq, encode(fold(events[:cut])))
        store.append(run_id, events[cut:])
        reader = open_same()
        assert reader.snapshot(run_id)[0] == events[cut - 1].seq  # type: ignore[index]
        assert_same_view(load_view(reader, run_id), fold(events))


def test_a_snapshot_ahead_of_the_log_is_refused_and_an_older_one_changes_nothing(open_same) -> None:  # type: ignore[no-untyped-def]
    store = open_same()
    events = random_log(1)
    _write(store, "r", events, len(events))
    last = events[-1].seq
    with pytest.raises(StoreError, match="ahead of its log"):
        store.put_snapshot("r", last + 1, encode(fold(events)))
    assert store.snapshot("r") is None
    store.put_snapshot("r", last, encode(fold(events)))
    store.put_snapshot("r", 2, encode(fold(events[:2])))  # older: kept is the newer one
    assert open_same().snapshot("r") == (last, encode(fold(events)))


@pytest.mark.parametrize("data", [b"garbage", b'{"format": "podium.snapshot/1"}'])
def test_a_damaged_snapshot_is_passed_over_for_the_fold(open_same, data: bytes) -> None:  # type: ignore[no-untyped-def]
    store = open_same()
    events = random_log(2)
    _write(store, "r", events, len(events))
    store.put_snapshot("r", events[-1].seq, data)
    assert_same_view(load_view(open_same(), "r"), fold(events))


def test_a_snapshot_stamped_with_another_seq_than_its_view_is_passed_over(open_same) -> None:  # type: ignore[no-untyped-def]
    store = open_same()
    events = random_log(4)
    _write(store, "r", events, len(events))
    store.put_snapshot("r", events[-1].seq, encode(fold(events[:3])))  # says seq N, holds seq 3
    assert_same_view(load_view(open_same(), "r"), fold(events))


def _claiming(n: int, seq: int) -> bytes:
    """A planted snapshot of a few bytes that claims ``n`` tasks (every column one value)."""
    same = {"all": 0}
    return json.dumps(
        {
            "format": "podium.snapshot/1",
            "n": n,
            "ids": [["x", 0, n]],
            "run": {
                "state": "succeeded",
                "last_seq": seq,
                "created_at": 1.0,
                "started_at": 1.0,
                "finished_at": 2.0,
                "meta": {},
                "plan": None,
                "last_ts": 2.0,
                "active": 1.0,
                "span_start": None,
            },
            "state": {"values": ["succeeded"], "codes": same},
            "node": {"values": [None], "codes": same},
            "attempt": same,
            "queued_at": same,
            "started_at": same,
            "finished_at": same,
            "duration": same,
            "busy": same,
            "est": same,
            **{
                f: []
                for f in (
                    "failures",
                    "lost",
                    "ooms",
                    "memory",
                    "error",
                    "cached",
                    "skip_reason",
                    "children",
                    "gpus",
                    "ranks",
                )
            },
            "usage": {"has": [], "records": []},
            "resources": {"values": [{}], "codes": same},
        }
    ).encode()


@pytest.mark.parametrize("past_the_log", [True, False])
def test_a_planted_snapshot_claiming_a_billion_tasks_is_passed_over(tmp_path, past_the_log: bool) -> None:  # type: ignore[no-untyped-def]
    """Written into the database behind the store's back: stamped past the log, or claiming more
    tasks than the log has events. Readers fold the log instead of making a billion tasks."""
    db = tmp_path / "s.db"
    store = SqliteStore(db)
    events = random_log(6)
    _write(store, "r", events, len(events))
    last = events[-1].seq
    seq = last + 10**9 if past_the_log else last
    with sqlite3.connect(db) as conn:
        conn.execute(
            "INSERT INTO snapshots (run_id, seq, data) VALUES (?, ?, ?)", ("r", seq, _claiming(10**9, seq))
        )
    assert read_columns(store, "r") is None
    assert_same_view(load_view(store, "r"), fold(events))
    store.close()
