"""The folded view says where and when an attempt really ran when its executor told: a
``TaskSucceeded`` carrying the worker's ``node`` and ``started`` wins over ``TaskStarted``'s,
which record where the engine sent the call and when it took the node's capacity."""

from __future__ import annotations

from podium.model import events as ev
from podium.model.events import Event
from podium.runtime.view import fold


def _log(succeeded: dict[str, object]) -> list[Event]:
    return [
        Event(1, ev.RUN_CREATED, None, 0, 100.0, {}),
        Event(2, ev.RUN_STARTED, None, 0, 100.0, {}),
        Event(3, ev.TASK_QUEUED, "t", 1, 100.0, {}),
        Event(4, ev.TASK_STARTED, "t", 1, 101.0, {"node": "planned", "res": {"cpu": 1.0}}),
        Event(5, ev.TASK_SUCCEEDED, "t", 1, 103.0, {"duration": 2.0, **succeeded}),
    ]


def test_the_workers_node_and_start_win() -> None:
    t = fold(_log({"node": "moved", "started": 100.5})).tasks["t"]
    assert (t.node, t.started_at, t.finished_at) == ("moved", 100.5, 103.0)


def test_without_them_the_engines_record_stands() -> None:
    t = fold(_log({})).tasks["t"]
    assert (t.node, t.started_at) == ("planned", 101.0)
