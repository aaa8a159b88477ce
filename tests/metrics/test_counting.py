"""What a run's hook counts, checked exactly against a hand-written event log: transitions by
the state entered, attempts by outcome, failures by kind, durations and queue waits. Each count
is asserted to the unit, so a count lost or counted twice fails; the same log is fed in batches
of every size, with the histograms binned mid-run or only at the scrape."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from podium.metrics import MetricsHub
from podium.metrics import tracker as tracker_mod
from podium.metrics.state import Histogram
from podium.model import events as ev
from podium.model import states as st
from podium.runtime.view import RunView


def _log() -> list[ev.Event]:
    """A run of four tasks: ``a`` retried after a timeout, ``b`` failed for good (oom), ``c`` a
    cache hit, ``m`` a map of two items (one skipped), and a worker loss reset on ``d``."""
    rows: list[tuple[str, str | None, int, float, dict[str, Any]]] = [
        (ev.RUN_CREATED, None, 0, 0.0, {"workflow": "w"}),
        (ev.RUN_STARTED, None, 0, 1.0, {}),
        (ev.TASK_QUEUED, "a", 0, 1.0, {}),
        (ev.TASK_STARTED, "a", 1, 1.5, {"node": "n", "res": {"cpu": 1.0}}),  # waited 0.5
        (ev.TASK_RETRYING, "a", 1, 3.5, {"duration": 2.0, "error": {"kind": "timeout"}}),
        (ev.TASK_QUEUED, "a", 1, 4.0, {}),
        (ev.TASK_STARTED, "a", 2, 4.0, {"node": "n", "res": {"cpu": 1.0}}),  # waited 0
        (ev.TASK_SUCCEEDED, "a", 2, 4.01, {"duration": 0.01}),  # exactly on the 0.01 bound
        (ev.TASK_QUEUED, "b", 0, 1.0, {}),
        (ev.TASK_STARTED, "b", 1, 2.0, {"node": "n", "res": {"cpu": 1.0}}),  # waited 1.0
        (ev.TASK_FAILED, "b", 1, 5.0, {"duration": 3.0, "error": {"kind": "oom"}}),
        (ev.TASK_QUEUED, "c", 0, 1.0, {}),
        (ev.TASK_SUCCEEDED, "c", 0, 1.0, {"cached": True}),  # no attempt ran: no duration
        (ev.TASK_EXPANDED, "m", 0, 4.1, {"count": 2}),
        (ev.TASK_QUEUED, "m[0]", 0, 4.125, {}),
        (ev.TASK_STARTED, "m[0]", 1, 4.25, {"node": "n", "res": {"cpu": 1.0}}),  # waited 0.125
        (ev.TASK_SUCCEEDED, "m[0]", 1, 4.7, {"duration": 0.5}),
        (ev.TASK_SKIPPED, "m[1]", 0, 4.7, {"reason": "upstream"}),
        (ev.TASK_SUCCEEDED, "m", 0, 4.8, {}),
        (ev.TASK_QUEUED, "d", 0, 1.0, {}),
        (ev.TASK_STARTED, "d", 1, 2.5, {"node": "n", "res": {"cpu": 1.0}}),  # waited 1.5
        (ev.TASK_RESET, "d", 1, 3.0, {"duration": 0.5}),  # its worker was lost
        (ev.TASK_QUEUED, "d", 1, 3.0, {}),
        (ev.TASK_STARTED, "d", 2, 2.9, {"node": "n", "res": {"cpu": 1.0}}),  # clocks: -0.1 is 0
        (ev.TASK_SUCCEEDED, "d", 2, 7.9, {"duration": 5.0}),  # exactly on the 5 bound
        (ev.RUN_FAILED, None, 0, 8.0, {}),
    ]
    return [ev.Event(i + 1, *row) for i, row in enumerate(rows)]


STATE_OF = {
    ev.TASK_QUEUED: st.QUEUED,
    ev.TASK_STARTED: st.RUNNING,
    ev.TASK_SUCCEEDED: st.SUCCEEDED,
    ev.TASK_FAILED: st.FAILED,
    ev.TASK_RETRYING: st.RETRYING,
    ev.TASK_SKIPPED: st.SKIPPED,
    ev.TASK_EXPANDED: st.EXPANDED,
    ev.TASK_RESET: st.PENDING,
}


def _hub() -> MetricsHub:
    hub = MetricsHub()
    hub.executor = "x"  # what a metered executor sets: round trips are reported under its name
    return hub


def _feed(batch: int, names: tuple[str, ...] = ()) -> dict[str, Any]:
    """The log in batches of ``batch`` events; with ``names``, through the hook an engine
    gets for a workflow of those task names (labels settled before the first event)."""
    hub = _hub()
    log = _log()
    if not names:
        for i in range(0, len(log), batch):
            hub.observe("r", log[i : i + batch])
        return hub.snapshot()
    hook, view = hub.track("r", len(names), names), RunView()
    for i in range(0, len(log), batch):
        for e in log[i : i + batch]:
            view.apply(e)
        hook(log[i : i + batch], view)
    return hub.snapshot()


def _buckets(snap: dict[str, Any], name: str, key: tuple[str, ...]) -> tuple[dict[str, int], float]:
    cumulative, total = snap[name][key]
    return dict(cumulative), total


@pytest.mark.parametrize("batch", [1, 2, 3, 7, 100])
@pytest.mark.parametrize("fold_every", [None, 1, 6])
@pytest.mark.parametrize("names", [(), ("a", "b", "c", "m", "d")])
def test_every_count_matches_the_log(
    batch: int, fold_every: int | None, names: tuple[str, ...], monkeypatch: Any
) -> None:
    if fold_every is not None:  # bin pending observations (and forget task ids) every few ids
        monkeypatch.setattr(tracker_mod, "FOLD_EVERY", fold_every)
    snap = _feed(batch, names)
    expected = Counter(
        ("w", e.task_id.split("[")[0], STATE_OF[e.type]) for e in _log() if e.task_id is not None
    )
    assert snap["podium_task_transitions_total"] == dict(expected)
    assert snap["podium_task_transitions_total"][("w", "a", "queued")] == 2
    assert snap["podium_task_transitions_total"][("w", "m", "succeeded")] == 2  # the map and its item
    assert snap["podium_attempts_total"] == {
        ("w", "a", "timeout"): 1,
        ("w", "a", "succeeded"): 1,
        ("w", "b", "oom"): 1,
        ("w", "m", "succeeded"): 1,
        ("w", "d", "interrupted"): 1,
        ("w", "d", "succeeded"): 1,
    }
    assert snap["podium_task_failures_total"] == {("w", "b", "oom"): 1}

    a, total = _buckets(snap, "podium_task_duration_seconds", ("w", "a"))
    assert (a["0.005"], a["0.01"], a["+Inf"], total) == (0, 1, 1, pytest.approx(0.01))
    d, total = _buckets(snap, "podium_task_duration_seconds", ("w", "d"))
    assert (d["2.5"], d["5.0"], d["+Inf"], total) == (0, 1, 1, pytest.approx(5.0))
    m, total = _buckets(snap, "podium_task_duration_seconds", ("w", "m"))
    assert (m["0.25"], m["0.5"], m["+Inf"], total) == (0, 1, 1, pytest.approx(0.5))
    assert ("w", "b") not in snap["podium_task_duration_seconds"]  # no attempt of b succeeded
    assert ("w", "c") not in snap["podium_task_duration_seconds"]  # a cache hit ran nothing

    waits, total = _buckets(snap, "podium_task_queue_wait_seconds", ("w",))
    # 0.5, 0 (a); 1.0 (b); 0.125 (m[0]); 1.5 and -0.1 counted as 0 (d)
    assert (waits["0.005"], waits["0.1"], waits["0.25"], waits["0.5"], waits["1.0"]) == (2, 2, 3, 4, 5)
    assert (waits["2.5"], waits["+Inf"], total) == (6, 6, pytest.approx(3.125))

    trips, total = _buckets(snap, "podium_executor_round_trip_seconds", ("x",))
    assert trips["+Inf"] == 6 and total == pytest.approx(2.0 + 0.01 + 3.0 + 0.5 + 0.5 + 5.0)


def test_histogram_bins_on_le_bounds_and_keeps_values_observed_during_a_fold() -> None:
    h = Histogram((1.0, 2.0))
    for v in (0.5, 1.0, 1.5, 2.0, 3.0, -1.0):
        h.observe(v)
    buckets, total = h.cumulative()
    assert buckets == [("1.0", 3), ("2.0", 5), ("+Inf", 6)]
    assert total == pytest.approx(8.0)  # -1 counts as 0
    h.observe(2.0)  # after a fold: pending again until the next reader
    assert list(h.pending) == [2.0]
    assert h.count() == 7 and not h.pending
    other = Histogram((1.0, 2.0))
    other.observe(0.1)
    h.add(other)
    assert h.cumulative() == ([("1.0", 4), ("2.0", 7), ("+Inf", 8)], pytest.approx(10.1))
    h.reset()
    assert h.cumulative() == ([("1.0", 0), ("2.0", 0), ("+Inf", 0)], 0.0)


def test_a_live_run_counts_once_across_scrapes() -> None:
    """Scrapes mid-run add the live run's counts without taking them: each later scrape and the
    run's end still count every event exactly once."""
    hub = _hub()
    log = _log()
    seen = []
    for i in range(0, len(log), 4):
        hub.observe("r", log[i : i + 4])
        seen.append(hub.snapshot())
    final = hub.snapshot()
    assert final == seen[-1]
    assert final["podium_attempts_total"][("w", "a", "succeeded")] == 1
    assert _buckets(final, "podium_task_queue_wait_seconds", ("w",))[0]["+Inf"] == 6
    mid = seen[2]  # events 1..12: a finished, b failed
    assert mid["podium_task_transitions_total"][("w", "a", "running")] == 2
    assert _buckets(mid, "podium_task_duration_seconds", ("w", "a"))[0]["+Inf"] == 1


@pytest.mark.parametrize("declared", [True, False])
def test_names_past_the_label_room_count_as_other(declared: bool, monkeypatch: Any) -> None:
    """A workflow of more names than ``MAX_TASK_LABELS``: with its names given, the first ones
    in declared order get labels; without, the first ones to have an event. Either way every
    event counts once, under its label or ``_other``."""
    monkeypatch.setattr(tracker_mod, "MAX_TASK_LABELS", 3)
    names = tuple(f"n{i}" for i in range(5))
    rows = [(ev.RUN_CREATED, None, {"workflow": "w"}), (ev.RUN_STARTED, None, {})]
    for name in reversed(names):  # the last declared runs first
        rows += [(ev.TASK_QUEUED, name, {}), (ev.TASK_STARTED, name, {"node": "n", "res": {"cpu": 1.0}})]
        rows += [(ev.TASK_SUCCEEDED, name, {"duration": 1.0})]
    rows.append((ev.RUN_SUCCEEDED, None, {}))
    log = [ev.Event(i + 1, typ, tid, 1, float(i), data) for i, (typ, tid, data) in enumerate(rows)]
    hub = _hub()
    hook, view = hub.track("r", len(names), names if declared else ()), RunView()
    for i in range(0, len(log), 2):
        for e in log[i : i + 2]:
            view.apply(e)
        hook(log[i : i + 2], view)
    labelled = ("n0", "n1", "n2") if declared else ("n4", "n3", "n2")
    transitions = hub.snapshot()["podium_task_transitions_total"]
    assert transitions == {
        **{("w", n, state): 1 for n in labelled for state in (st.QUEUED, st.RUNNING, st.SUCCEEDED)},
        **{("w", "_other", state): 2 for state in (st.QUEUED, st.RUNNING, st.SUCCEEDED)},
    }
    assert hub.task_labels["w"] == set(labelled)
