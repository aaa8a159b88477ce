"""Every backend keeps a run's snapshot (``types.SnapshotStore``): never ahead of its log, never
replaced by an older one, and ``load_view`` (the snapshot plus the events after it) is the fold of
the log, also when the snapshot is damaged or lags the log.
"""

from __future__ import annotations

import random

import pytest

from podium.errors import StoreError
from podium.model.events import Event, RunRecord
from podium.runtime.reading import load_view
from podium.runtime.snapshot import encode
from podium.runtime.view import fold
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
