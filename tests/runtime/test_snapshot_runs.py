"""The engine hands its store snapshots of a run's view, and every reader starts from them.

With the thresholds lowered so small runs take snapshots: a finished run's snapshot is at its
last event; ``podium show --json`` printed from it is what the fold of the log prints; a run that
failed is resumed from its snapshot and finishes with the right values; ``podium resume`` of a
finished run answers from it; a store that cannot keep a snapshot never stops a run.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

import podium
from inprocess_cli import cli
from podium.errors import StoreError
from podium.runtime import recorder
from podium.runtime.reading import facts, load_view
from podium.runtime.readmodel import run_document
from podium.runtime.snapshot import decode
from podium.runtime.view import fold
from podium.store import MemoryStore, open_store
from runlogs import assert_same_view

FLOW = textwrap.dedent(
    """
    import os
    import podium

    @podium.task
    def items(n: int) -> list:
        return list(range(n))

    @podium.task
    def sq(x: int) -> int:
        if x == 3 and os.path.exists("broken"):
            raise ValueError("three is broken")
        return x * x

    @podium.task
    def total(xs: list) -> int:
        return sum(xs)

    @podium.flow(name="snapped")
    def flow(n: int = 12):
        total(xs=sq(x=podium.each(items(n=n))))
    """
)


@pytest.fixture
def every_run_snapshots(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(recorder, "SNAPSHOT_EVENTS", 1)


def _setup(tmp_path: Path, name: str) -> tuple[Path, Path]:
    """The flow in a file (one module name per test: a module is imported once) and a store."""
    flow = tmp_path / f"snapped_{name}.py"
    flow.write_text(FLOW, encoding="utf-8")
    return flow, tmp_path / "podium.db"


@pytest.mark.usefixtures("every_run_snapshots")
def test_show_json_of_a_finished_run_is_read_from_its_snapshot_and_says_what_the_log_says(
    tmp_path: Path,
) -> None:
    flow, db = _setup(tmp_path, "show")
    assert podium.run(flow, {"n": 12}, store=str(db), run_id="s1")["total"] == 506
    with open_store(str(db)) as store:
        events = store.events("s1")
        kept = store.snapshot("s1")
        assert kept is not None and kept[0] == events[-1].seq
        assert_same_view(load_view(store, "s1"), fold(events))
        f = facts(store.get_run("s1"), events)
        want = run_document(f.record, f.totals, f.tasks)
    code, out, err = cli(["show", "s1", "--store", str(db), "--json"], tmp_path)
    assert code == 0, err
    got = json.loads(out)
    assert got.pop("artifacts") == [] and got.pop("attention") == []
    assert got == json.loads(json.dumps(want, default=str))
    assert [t["task_id"] for t in got["tasks"]][:3] == ["items", "sq", "sq[0]"]
    code, out, err = cli(["runs", "--store", str(db), "--json"], tmp_path)  # totals from its columns
    assert code == 0, err
    (listed,) = json.loads(out)
    assert listed == {k: v for k, v in got.items() if k != "tasks"}
    code, out, err = cli(["resume", "s1", "--store", str(db)], tmp_path)
    assert code == 0, err
    assert "already succeeded: nothing to resume" in out
    assert f"T = {got['T']:.3f} s" in out


@pytest.mark.usefixtures("every_run_snapshots")
def test_a_failed_run_resumes_from_its_snapshot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    flow, db = _setup(tmp_path, "resume")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "broken").write_text("", encoding="utf-8")
    failed = podium.run(flow, {"n": 12}, store=str(db), run_id="s2")
    assert failed.status == "failed"
    with open_store(str(db)) as store:
        seq, _ = store.snapshot("s2")  # type: ignore[misc]
        assert seq == store.events("s2")[-1].seq
    (tmp_path / "broken").unlink()
    code, out, err = cli(["resume", "s2", "--store", str(db), "--no-progress"], tmp_path)
    assert code == 0, err + out
    with open_store(str(db)) as store:
        events = store.events("s2")
        view = load_view(store, "s2")
        assert_same_view(view, fold(events))
        assert view.state == "succeeded" and view.tasks["sq[3]"].attempt == 2
        assert view.tasks["sq[4]"].attempt == 1  # succeeded before: not run again
        assert store.snapshot("s2")[0] == events[-1].seq  # type: ignore[index]
    assert podium.open_run("s2", store=str(db))["total"] == 506


class NoSnapshots(MemoryStore):
    def put_snapshot(self, run_id: str, seq: int, data: bytes) -> None:
        raise StoreError("disk full")


@pytest.mark.usefixtures("every_run_snapshots")
def test_a_store_that_cannot_keep_a_snapshot_never_stops_a_run(tmp_path: Path) -> None:
    flow, _ = _setup(tmp_path, "nosnap")
    store = NoSnapshots()
    result = podium.run(flow, {"n": 5}, store=store, run_id="s3")
    assert result.status == "succeeded" and result["total"] == 30
    assert store.snapshot("s3") is None
    assert_same_view(load_view(store, "s3"), fold(store.events("s3")))


def test_small_runs_take_no_snapshot(tmp_path: Path) -> None:
    flow, db = _setup(tmp_path, "small")
    podium.run(flow, {"n": 5}, store=str(db), run_id="s4")
    with open_store(str(db)) as store:
        assert len(store.events("s4")) < recorder.SNAPSHOT_EVENTS
        assert store.snapshot("s4") is None


class Checking(MemoryStore):
    """Checks every snapshot it is handed against the log it holds at that moment."""

    def __init__(self) -> None:
        super().__init__()
        self.kept: list[int] = []

    def put_snapshot(self, run_id: str, seq: int, data: bytes) -> None:
        events = self.events(run_id)
        assert seq == events[-1].seq  # as of the last committed event, never ahead of it
        assert_same_view(decode(data), fold(events))
        self.kept.append(seq)
        super().put_snapshot(run_id, seq, data)


def test_snapshots_taken_while_a_run_goes_are_its_view_at_their_seq(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(recorder, "SNAPSHOT_EVENTS", 1)
    monkeypatch.setattr(recorder, "SNAPSHOT_EVERY", 0.0)
    monkeypatch.setattr(recorder, "SNAPSHOT_SHARE", 0)
    flow, _ = _setup(tmp_path, "periodic")
    store = Checking()
    assert podium.run(flow, {"n": 20}, store=store, run_id="s5")["total"] == 2470
    assert len(store.kept) > 3 and store.kept == sorted(store.kept)
    assert store.kept[-1] == store.events("s5")[-1].seq
