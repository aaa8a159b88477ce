"""The one conformance suite of the ``Store`` Protocol: every backend (memory, SQLite, PostgreSQL)
runs every test here through the parametrised ``store`` / ``open_same`` fixtures."""

from __future__ import annotations

import threading

import pytest

from podium.errors import ConflictError, NotFoundError, StoreError, UsageError
from podium.model.events import (
    RUN_CREATED,
    TASK_STARTED,
    TASK_SUCCEEDED,
    Event,
    ResultRecord,
    RunRecord,
)
from podium.types import Store

from .conftest import Opener


def run(run_id: str = "r1", workflow: str = "wf", created_at: float = 100.0, **kw: object) -> RunRecord:
    return RunRecord(run_id, workflow, "running", created_at, created_at, **kw)  # type: ignore[arg-type]


def ev(seq: int, type_: str = TASK_STARTED, task_id: str | None = "a", **data: object) -> Event:
    return Event(seq, type_, task_id, 1, 1000.0 + seq, dict(data))


def ok(
    task_id: str, seq: int, duration: float | None = None, ts: float | None = None, **data: object
) -> Event:
    if duration is not None:
        data["duration"] = duration
    return Event(seq, TASK_SUCCEEDED, task_id, 1, 1000.0 + seq if ts is None else ts, dict(data))


def seqs(store: Store, run_id: str = "r1") -> list[int]:
    return [e.seq for e in store.events(run_id)]


@pytest.fixture
def started(store: Store) -> Store:
    store.create_run(run(), [Event(1, RUN_CREATED, None, 0, 1.0, {"by": "test"})])
    return store


# -- runs -------------------------------------------------------------------------------------


def test_create_and_get_run_round_trips_every_field(store: Store) -> None:
    rec = RunRecord(
        "r1", "wf", "pending", 10.5, 11.5, {"n": 3, "name": "é"}, {"kind": "yaml", "path": "x"}, "me"
    )
    store.create_run(rec, [Event(1, RUN_CREATED, None, 0, 10.5, {"p": [1, 2]})])
    assert store.get_run("r1") == rec
    assert store.events("r1") == [Event(1, RUN_CREATED, None, 0, 10.5, {"p": [1, 2]})]


def test_create_run_twice_is_a_conflict_and_changes_nothing(started: Store) -> None:
    with pytest.raises(ConflictError, match="r1"):
        started.create_run(run(workflow="other"), [ev(2)])
    assert started.get_run("r1").workflow == "wf"
    assert seqs(started) == [1]


def test_create_run_rejects_duplicate_seqs_in_its_events(store: Store) -> None:
    with pytest.raises(ConflictError):
        store.create_run(run(), [ev(1), ev(1)])
    with pytest.raises(NotFoundError):
        store.get_run("r1")
    assert store.list_runs() == []


def test_get_unknown_run_is_not_found(store: Store) -> None:
    with pytest.raises(NotFoundError) as info:
        store.get_run("nope")
    assert str(info.value) == "run 'nope' not found"


def test_update_run_sets_header_fields(started: Store) -> None:
    started.update_run("r1", status="succeeded", owner="host:42", updated_at=200.0)
    started.update_run("r1", params={"k": [1, 2]}, source={"kind": "python", "ref": "m:wf"})
    got = started.get_run("r1")
    assert (got.status, got.owner, got.updated_at) == ("succeeded", "host:42", 200.0)
    assert got.params == {"k": [1, 2]} and got.source == {"kind": "python", "ref": "m:wf"}
    assert (got.workflow, got.created_at) == ("wf", 100.0)


def test_update_run_rejects_unknown_field_and_writes_nothing(started: Store) -> None:
    with pytest.raises(UsageError, match="workflow"):
        started.update_run("r1", status="failed", workflow="x")
    assert started.get_run("r1").status == "running"


def test_update_unknown_run_is_not_found(store: Store) -> None:
    with pytest.raises(NotFoundError, match="'ghost'"):
        store.update_run("ghost", status="failed")
    with pytest.raises(NotFoundError):
        store.update_run("ghost")


def test_list_runs_newest_first_with_limit(store: Store) -> None:
    store.create_run(run("old", created_at=1.0), [])
    store.create_run(run("new", created_at=3.0), [])
    store.create_run(run("mid", created_at=2.0), [])
    store.create_run(run("mid2", created_at=2.0), [])  # same time: later insert counts as newer
    assert [r.run_id for r in store.list_runs()] == ["new", "mid2", "mid", "old"]
    assert [r.run_id for r in store.list_runs(limit=2)] == ["new", "mid2"]


# -- events -----------------------------------------------------------------------------------


def test_events_come_back_in_seq_order_after_a_seq(started: Store) -> None:
    started.append("r1", [ev(3), ev(2, task_id="b", x=1)])
    started.append("r1", [ev(4, task_id=None)])
    assert seqs(started) == [1, 2, 3, 4]
    assert started.events("r1", after_seq=2) == [ev(3), ev(4, task_id=None)]
    assert started.events("r1", after_seq=4) == []
    assert started.events("r1")[1] == Event(2, TASK_STARTED, "b", 1, 1002.0, {"x": 1})


def test_events_and_results_of_unknown_run_are_empty(store: Store) -> None:
    assert store.events("nope") == []
    assert store.results("nope") == {}


def test_append_to_unknown_run_is_not_found(store: Store) -> None:
    with pytest.raises(NotFoundError, match="'nope'"):
        store.append("nope", [ev(1)])


def test_duplicate_seq_is_a_conflict_and_commits_nothing(started: Store) -> None:
    started.append("r1", [ev(2)])
    result = ResultRecord.of("a", 1, b"value")
    with pytest.raises(ConflictError, match="seq 2"):
        started.append("r1", [ev(3), ev(2), ok("a", 4, duration=1.0)], [result])
    assert seqs(started) == [1, 2]
    assert started.results("r1") == {}
    assert started.durations("wf", "a") == []


def test_duplicate_seq_within_one_batch_is_a_conflict(started: Store) -> None:
    with pytest.raises(ConflictError, match="seq 5"):
        started.append("r1", [ev(5), ev(6), ev(5)])
    assert seqs(started) == [1]


def test_after_a_conflict_the_store_keeps_working(started: Store) -> None:
    with pytest.raises(ConflictError):
        started.append("r1", [ev(1)])
    started.append("r1", [ev(2)])
    assert seqs(started) == [1, 2]


def test_data_that_is_not_json_is_rejected_before_writing(started: Store) -> None:
    with pytest.raises(UsageError, match="seq 3"):
        started.append("r1", [ev(2), ev(3, bad=object())])
    assert seqs(started) == [1]


def test_data_round_trips_through_json(started: Store) -> None:
    data: dict[str, object] = {"t": (1, 2), "nested": {"k": [None, True, 1.5]}, "s": "naïve ✓"}
    started.append("r1", [Event(2, TASK_STARTED, "a", 1, 5.0, data)])
    data["t"] = "mutated"  # the caller's dict is not the stored one
    got = started.events("r1", after_seq=1)[0]
    assert got.data == {"t": [1, 2], "nested": {"k": [None, True, 1.5]}, "s": "naïve ✓"}


def test_events_are_separate_per_run(started: Store) -> None:
    started.create_run(run("r2"), [Event(1, RUN_CREATED)])
    started.append("r2", [ev(2, x="r2")])
    started.append("r1", [ev(2, x="r1")])
    assert started.events("r1", 1)[0].data == {"x": "r1"}
    assert started.events("r2", 1)[0].data == {"x": "r2"}


# -- results ----------------------------------------------------------------------------------


def test_results_are_committed_with_their_events(started: Store) -> None:
    big = bytes(range(256)) * 4096  # 1 MiB, every byte value
    r_a = ResultRecord.of("a", 2, big)
    r_b = ResultRecord.of("m[0]", 1, b'{"x":1}', encoding="json")
    started.append("r1", [ok("a", 2), ok("m[0]", 3)], [r_a, r_b])
    got = started.results("r1")
    assert got == {"a": r_a, "m[0]": r_b}
    assert got["a"].verify() and got["m[0]"].encoding == "json"


def test_results_can_be_read_artifacts_only(started: Store) -> None:
    ref = ResultRecord.of("a", 1, b'{"blake3": "' + b"0" * 64 + b'", "size": 3}', encoding="artifact")
    inline = ResultRecord.of("b", 1, b"value")
    started.append("r1", [ok("a", 2), ok("b", 3)], [ref, inline])
    assert started.results("r1", artifacts_only=True) == {"a": ref}  # no value read for a listing
    assert started.results("r1") == {"a": ref, "b": inline}
    assert started.results("nope", artifacts_only=True) == {}


def test_a_committed_result_is_never_replaced(started: Store) -> None:
    first = ResultRecord.of("a", 1, b"first")
    started.append("r1", [ok("a", 2)], [first])
    with pytest.raises(ConflictError, match="'a'"):
        started.append("r1", [ev(3, task_id="b")], [ResultRecord.of("a", 2, b"second")])
    assert started.results("r1") == {"a": first}
    assert seqs(started) == [1, 2]


def test_a_cleared_or_invalidated_result_is_dropped_in_the_same_transaction(started: Store) -> None:
    """``TaskCleared`` (``resume --from``) and ``TaskInvalidated`` drop the task's result with
    their own commit, so the task's next result can be committed."""
    started.append(
        "r1", [ok("a", 2), ok("b", 3)], [ResultRecord.of("a", 1, b"old"), ResultRecord.of("b", 1, b"b")]
    )
    cleared = Event(4, "TaskCleared", "a", 0, 0.0, {"from": "a", "was": "succeeded"})
    started.append("r1", [cleared])
    assert set(started.results("r1")) == {"b"}
    new = ResultRecord.of("a", 2, b"new")
    started.append("r1", [ok("a", 5)], [new])
    assert started.results("r1")["a"] == new
    started.append("r1", [Event(6, "TaskInvalidated", "b", 0, 0.0, {"reason": "test"})])
    assert set(started.results("r1")) == {"a"}


def test_two_results_for_one_task_in_one_batch_conflict(started: Store) -> None:
    with pytest.raises(ConflictError):
        started.append("r1", [ev(2)], [ResultRecord.of("a", 1, b"x"), ResultRecord.of("a", 1, b"y")])
    assert started.results("r1") == {} and seqs(started) == [1]


def test_same_task_id_in_two_runs_has_two_results(started: Store) -> None:
    started.create_run(run("r2"), [])
    started.append("r1", [ok("a", 2)], [ResultRecord.of("a", 1, b"one")])
    started.append("r2", [ok("a", 1)], [ResultRecord.of("a", 1, b"two")])
    assert started.results("r1")["a"].data == b"one"
    assert started.results("r2")["a"].data == b"two"


# -- cache ------------------------------------------------------------------------------------


def test_cache_put_get_and_replace(store: Store) -> None:
    assert store.cache_get("k") is None
    first = ResultRecord.of("a", 1, b"one")
    store.cache_put("k", first)
    assert store.cache_get("k") == first
    second = ResultRecord.of("a", 2, b"two", encoding="json")
    store.cache_put("k", second)
    assert store.cache_get("k") == second
    assert store.cache_get("other") is None


# -- history ----------------------------------------------------------------------------------


def test_durations_come_from_succeeded_events_newest_first(started: Store) -> None:
    started.append(
        "r1",
        [
            ok("train", 2, duration=3.0, ts=10.0),
            ok("train", 3, duration=5.0, ts=30.0),
            ok("train", 4, duration=4.0, ts=20.0),
            ev(5, TASK_STARTED, "train", duration=99.0),  # not a success: no history
            ok("train", 6),  # no duration: no history
            Event(7, TASK_SUCCEEDED, "train", 1, 50.0, {"duration": "slow"}),  # not a number: no history
            Event(8, TASK_SUCCEEDED, "train", 1, 60.0, {"duration": True}),  # a bool is not a duration
        ],
    )
    assert started.durations("wf", "train") == [5.0, 4.0, 3.0]
    assert started.durations("wf", "train", limit=2) == [5.0, 4.0]
    assert started.history("wf") == {"train": [5.0, 4.0, 3.0]}
    assert started.history("wf", limit=1) == {"train": [5.0]}
    assert started.history("other-wf") == {}
    assert started.durations("other-wf", "train") == []
    assert started.durations("wf", "nope") == []


def test_map_items_count_under_their_map_name(started: Store) -> None:
    started.append(
        "r1",
        [ok("score[0]", 2, duration=1.0, ts=1.0), ok("score[12]", 3, duration=2.0, ts=2.0, max_rss=1 << 20)],
    )
    assert started.durations("wf", "score") == [2.0, 1.0]
    assert started.history("wf") == {"score": [2.0, 1.0]}
    assert started.durations("wf", "score[0]") == []


def test_history_is_per_workflow_across_runs(started: Store) -> None:
    started.create_run(run("r2", workflow="wf2"), [])
    started.create_run(run("r3"), [])
    started.append("r1", [ok("t", 2, duration=1.0, ts=1.0)])
    started.append("r2", [ok("t", 2, duration=2.0, ts=2.0)])
    started.append("r3", [ok("t", 2, duration=3.0, ts=3.0)])
    assert started.durations("wf", "t") == [3.0, 1.0]
    assert started.durations("wf2", "t") == [2.0]


def test_create_run_events_also_feed_history(store: Store) -> None:
    store.create_run(run(), [Event(1, RUN_CREATED), ok("t", 2, duration=7.0)])
    assert store.durations("wf", "t") == [7.0]


# -- cancellation, sharing, durability ------------------------------------------------------


def test_cancel_request_is_seen_by_another_store_object(started: Store, open_same: Opener) -> None:
    other = open_same()
    assert not other.cancel_requested("r1")
    other.request_cancel("r1")
    assert started.cancel_requested("r1")
    assert not started.cancel_requested("unknown")
    with pytest.raises(NotFoundError):
        other.request_cancel("unknown")
    started.update_run("r1", cancel_requested=False)  # a run that starts again clears it
    assert not other.cancel_requested("r1") and not started.cancel_requested("r1")


def test_another_store_object_sees_and_extends_the_log(
    started: Store, open_same: Opener, backend: str
) -> None:
    started.append("r1", [ok("t[0]", 2, duration=1.5, ts=5.0)], [ResultRecord.of("t[0]", 1, b"v")])
    other = open_same()
    if backend == "journal":
        # A journaled store leases a run to the object that appends to it: a second writer is
        # refused at once (nothing written), and sees everything once the lease is released.
        with pytest.raises(ConflictError, match="another process"):
            other.append("r1", [ok("t[1]", 3, duration=2.5, ts=6.0)])
        started.close()
    assert seqs(other) == [1, 2]
    other.append("r1", [ok("t[1]", 3, duration=2.5, ts=6.0)])  # a fresh object learns the workflow
    assert 2.5 in other.durations("wf", "t")  # its own history at once
    if backend != "journal":
        with pytest.raises(ConflictError):
            started.append("r1", [ev(3)])  # fenced: seq 3 was written by the other object
        assert started.results("r1")["t[0]"].data == b"v"
    if other is not started:
        started.close()  # history may be buffered per store object; closing writes it
    assert other.durations("wf", "t") == [2.5, 1.5]


def test_data_survives_close_and_reopen(backend: str, open_same: Opener) -> None:
    if backend == "memory":
        pytest.skip("a memory store holds nothing after close")
    first = open_same()
    first.create_run(run(params={"a": 1}), [Event(1, RUN_CREATED)])
    first.append("r1", [ok("t", 2, duration=1.0)], [ResultRecord.of("t", 1, b"r")])
    first.cache_put("key", ResultRecord.of("t", 1, b"r"))
    first.close()
    again = open_same()
    assert again.get_run("r1").params == {"a": 1}
    assert seqs(again) == [1, 2]
    assert again.results("r1")["t"].data == b"r"
    assert again.cache_get("key") == ResultRecord.of("t", 1, b"r")
    assert again.durations("wf", "t") == [1.0]


def test_a_closed_store_refuses_work(started: Store) -> None:
    started.close()
    with pytest.raises(StoreError):
        started.append("r1", [ev(2)])
    with pytest.raises(StoreError):
        started.events("r1")
    started.close()  # closing twice is fine


def test_readers_on_other_threads_see_only_whole_batches(started: Store) -> None:
    batch, batches = 5, 40
    seen: list[int] = []
    errors: list[BaseException] = []
    done = threading.Event()

    def reader() -> None:
        try:
            while not done.is_set():
                n = len(started.events("r1"))
                seen.append(n)
                if (n - 1) % batch:
                    return
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        for b in range(batches):
            first = 2 + b * batch
            started.append("r1", [ev(s) for s in range(first, first + batch)])
    finally:
        done.set()
        for t in threads:
            t.join()
    assert not errors
    assert all((n - 1) % batch == 0 for n in seen), "a reader saw part of a batch"
    assert seqs(started) == list(range(1, 2 + batch * batches))


def test_every_protocol_method_is_implemented(store: Store) -> None:
    names = [n for n in vars(Store) if not n.startswith("_")]
    parts = [n for n in names if isinstance(vars(Store)[n], property)]  # ``logs``: an object
    missing = [
        n for n in names if not (callable(getattr(store, n, None)) or (n in parts and hasattr(store, n)))
    ]
    assert names and not missing and parts == ["logs"]


def test_runs_that_need_attention_say_why(started: Store) -> None:
    assert started.attention() == {} and started.attention("r1") == {}
    writer = getattr(started, "inner", started)  # a journal notes runs in the store behind it
    writer.note_attention("r1", "a: first")
    writer.note_attention("r2", "other run")
    writer.note_attention("r1", "b: second")
    assert started.attention("r1") == {"r1": ["a: first", "b: second"]}
    assert started.attention() == {"r1": ["a: first", "b: second"], "r2": ["other run"]}
    assert started.attention("nope") == {}
