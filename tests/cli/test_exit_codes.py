"""One mapping from errors to exit codes (``podium.cli.exit_code``), and what a user sees."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import click
import pytest

from podium.cli import RunInterrupted, RunNotSucceeded, exit_code, main
from podium.errors import (
    ConflictError,
    CycleError,
    InfeasibleError,
    InvalidValueError,
    NotFoundError,
    SpecError,
    UsageError,
)
from podium.model.states import IllegalTransition


@pytest.mark.parametrize(
    ("err", "code"),
    [
        (SpecError("bad spec"), 2),
        (UsageError("bad flag"), 2),
        (InvalidValueError("bad size"), 2),
        (CycleError(["a", "b", "a"]), 2),
        (NotFoundError("no run"), 2),
        (ConflictError("owned"), 3),
        (InfeasibleError("no plan"), 4),
        (RunNotSucceeded("run x failed"), 1),
        (RunInterrupted("run x cancelled"), 130),
        (IllegalTransition("gap"), 1),
        (KeyboardInterrupt(), 130),
        (click.exceptions.Abort(), 130),
        (click.UsageError("no such option"), 2),
        (RuntimeError("a bug"), 1),
    ],
)
def test_each_error_has_one_exit_code(err: BaseException, code: int) -> None:
    assert exit_code(err) == code


def test_a_nul_byte_in_an_argument_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["show", "a\x00b"])
    assert exc.value.code == 2
    assert capsys.readouterr().err == "error: argument 2 contains a NUL byte\n"


FLOW = textwrap.dedent(
    """
    import podium

    @podium.task()
    def boom() -> None:
        raise RuntimeError("boom")

    @podium.flow(name="fails")
    def fails():
        boom()
    """
)


def test_a_run_that_fails_exits_1_with_one_line_saying_how_to_resume(tmp_path: Path) -> None:
    (tmp_path / "flow.py").write_text(FLOW, encoding="utf-8")
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "podium",
            "run",
            "flow.py",
            "--run-id",
            "r1",
            "--store",
            "s.db",
            "--no-progress",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 1, out.stderr
    assert out.stderr.strip().splitlines()[-1] == "error: run r1 failed; continue it with: podium resume r1"
    assert "Traceback" not in out.stderr
