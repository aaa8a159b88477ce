"""The text Gantt of ``podium plan`` names the tasks in their bars: cut with an ellipsis when
a bar is too short (and the count of those said once), every character one terminal cell, no
escape sequence from a task name reaching the terminal."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from inprocess_cli import cli
from podium.cli.plan import bar_label

SPEC = """\
name: g
tasks:
  prepare_data: {argv: ["true"], expected_duration: 10}
  train_model_with_a_really_long_name: {argv: ["true"], expected_duration: 30, after: [prepare_data]}
  eval: {argv: ["true"], expected_duration: 10, after: [train_model_with_a_really_long_name]}
"""


def plan(tmp_path: Path, spec: str, name: str, columns: int, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    monkeypatch.setenv("COLUMNS", str(columns))
    (tmp_path / "podium.toml").write_text('allow_programs = ["true"]\n')
    (tmp_path / name).write_text(spec)
    code, out, err = cli(["plan", name, "--processors", "1"], tmp_path)
    assert code == 0, err
    return out.splitlines()


def test_bars_carry_their_task_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lines = plan(tmp_path, SPEC, "g.yaml", 100, monkeypatch)
    row = next(ln for ln in lines if ln.strip().startswith("p0 "))
    # one row, the bars in plan order, each name at its bar's start, the bars kept apart
    assert row.index("prepare_data█") < row.index("train_model_with_a_really_long_name█") < row.index("eval█")
    assert not any("cut short" in ln for ln in lines)


def test_names_too_long_for_their_bars_are_cut_and_counted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = plan(tmp_path, SPEC, "g.yaml", 60, monkeypatch)
    row = next(ln for ln in lines if ln.strip().startswith("p0 "))
    assert "prepare…█" in row and "train_model_with_a_reall…█" in row and "eval█" in row
    assert "2 of 3 task names cut short in their bars: --json or --html shows them all" in lines


def test_names_are_terminal_safe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = {
        "name": "g",
        "tasks": {
            "\x1bcwipe_the_screen_now": {"argv": ["true"], "expected_duration": 10},
            "訓練モデルの長い名前です": {
                "argv": ["true"],
                "expected_duration": 10,
                "after": ["\x1bcwipe_the_screen_now"],
            },
        },
    }
    lines = plan(tmp_path, json.dumps(spec), "g.json", 80, monkeypatch)
    text = "\n".join(lines)
    assert "\x1b" not in text and "\\x1bcwipe_the_scree" in text
    row = next(ln for ln in lines if ln.strip().startswith("p0 "))
    axis = next(ln for ln in lines if ln.strip().startswith("0 "))
    assert len(row) == len(axis)  # every character of a name is one cell: the row keeps its width
    assert "??????" in row  # wide characters stand as one-cell marks


def test_bar_label() -> None:
    assert bar_label("train", 10) == "train"
    assert bar_label("train", 5) == "train"
    assert bar_label("train", 4) == "tra…"
    assert bar_label("train", 1) == ""
    assert bar_label("a\x1bb", 10) == "a\\x1bb"
    assert bar_label("é\u0301x", 5) == "é?x"
