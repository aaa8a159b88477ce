"""``podium history``, ``podium advise``, ``podium run --right-size`` and ``podium show --json``
on real runs of a real flow file (worker processes measure each attempt's peak memory)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from podium.cli import main
from podium.model import events as ev
from podium.model.cluster import DEFAULT_PRICES, price_per_second
from podium.store import open_store

FLOW = textwrap.dedent(
    """
    import podium

    @podium.task(cpu=2, memory="1GiB", isolation="process")
    def grow(mib: int) -> int:
        block = bytearray(mib << 20)
        for i in range(0, len(block), 4096):
            block[i] = 1
        return len(block)

    @podium.task(cpu=1, expected_duration="30s")
    def total(n: int) -> int:
        return n // (1 << 20)

    @podium.flow(name="sizing")
    def sizing(mib: int = 60):
        total(n=grow(mib=mib))
    """
)


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    main(list(args))
    return capsys.readouterr().out


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "flow.py").write_text(FLOW, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "250")
    return tmp_path


def test_three_runs_teach_advise_and_a_right_sized_fourth_costs_less(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(project / "s.db")
    for i in range(3):
        _cli(capsys, "run", "flow.py", "--store", db, "--run-id", f"s{i}", "--no-progress")
    hist = json.loads(_cli(capsys, "history", "sizing", "--store", db, "--json"))
    grow = next(t for t in hist["tasks"] if t["task"] == "grow")
    assert grow["attempts"] == 3 and 60 << 20 <= grow["peak_memory_p95"] < 1 << 30
    advice = json.loads(_cli(capsys, "advise", "flow.py", "--store", db, "--json"))
    row = next(t for t in advice["tasks"] if t["task"] == "grow")
    assert row["declared_memory"] == 1 << 30
    assert grow["peak_memory_p95"] <= row["suggested_memory"] < 1 << 30  # above the peak, below the ask
    # one single-threaded process: about one core (CPU clocks tick coarsely: a quarter above)
    assert row["suggested_cpu"] is not None and row["suggested_cpu"] <= 1.25 < row["declared_cpu"]
    assert advice["last_run"] == "s2" and advice["R_suggested"] < advice["R_last"]
    text = _cli(capsys, "advise", "flow.py", "--store", db)
    assert "saves" in text and "grow" in text
    # the fourth run asks for what advise suggested: lower R, the same result
    _cli(capsys, "run", "flow.py", "--store", db, "--run-id", "s3", "--no-progress", "--right-size")
    store = open_store(db)
    try:
        started = {e.task_id: e.data["res"] for e in store.events("s3") if e.type == ev.TASK_STARTED}
        assert started["grow"]["memory"] == row["suggested_memory"]
        assert store.results("s3")["total"].checksum == store.results("s2")["total"].checksum
    finally:
        store.close()
    before = json.loads(_cli(capsys, "show", "s2", "--store", db, "--json"))
    after = json.loads(_cli(capsys, "show", "s3", "--store", db, "--json"))
    # the same work costs less: each task's price per second, after and before, times the time it
    # took before (the run's own R also counts how long each attempt took, which a busy machine
    # stretches or shrinks from run to run)
    took = {t["task_id"]: t["duration"] or 0.0 for t in before["tasks"]}

    def priced(doc: dict) -> float:  # type: ignore[type-arg]
        return sum(
            price_per_second(t["resources"], DEFAULT_PRICES) * took[t["task_id"]] for t in doc["tasks"]
        )

    assert priced(after) < priced(before)
    tasks = {t["task_id"]: t for t in after["tasks"]}
    assert tasks["grow"]["usage"]["peak_memory"] >= 60 << 20 and tasks["grow"]["duration"] > 0
    # three measured runs override the declared 30 s: it takes microseconds
    assert tasks["total"]["estimate"] < 1.0 and tasks["grow"]["estimate"] is not None


def test_unknown_workflow_or_task_is_one_line_and_exit_2(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(project / "e.db")
    open_store(db).close()  # an empty store (with none, it says no store was found)
    for args in (["history", "nope", "--store", db], ["history", "nope", "x", "--store", db]):
        with pytest.raises(SystemExit) as exc:
            main(args)
        assert exc.value.code == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1 and "nope" in err
