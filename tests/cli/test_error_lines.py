"""What ``podium`` writes on stderr when something goes wrong is whole lines: every error ends
in a newline and starts a line of its own, even after a task's echoed output that stopped
mid-line; a bare ``podium`` prints its help, not an error. Run as a user runs it: a process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BAD = "tasks:\n  a: {argv: [x], timeout: soon, bogus: 1}\n"
#: A task whose last output has no newline (a progress counter, a prompt) and which then fails.
PARTIAL = 'tasks:\n  a: {argv: ["sh", "-c", "printf 50%% >&2; printf done; exit 3"]}\n'
PARTIAL_PY = """
import sys
import podium

@podium.task()
def half() -> None:
    sys.stderr.write("50%")
    raise RuntimeError("stopped")

@podium.flow(name="partial")
def partial():
    half()
"""


def podium(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "podium", *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "podium.toml").write_text('allow_programs = ["sh"]\n')
    (tmp_path / "bad.yaml").write_text(BAD)
    (tmp_path / "partial.yaml").write_text(PARTIAL)
    (tmp_path / "partial.py").write_text(PARTIAL_PY)
    (tmp_path / "blocked").write_text("")
    (tmp_path / "ok.yaml").write_text('tasks:\n  a: {argv: ["sh", "-c", "true"]}\n')
    return tmp_path


def assert_error_lines(err: str) -> None:
    """stderr is whole lines and its error starts a line of its own."""
    assert err.endswith("\n") and not err.endswith("\n\n"), repr(err)
    assert "error: " in err and (err.startswith("error: ") or "\nerror: " in err), repr(err)
    assert "Traceback" not in err and "internal error" not in err


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["validate", "bad.yaml"], 2),  # several problems, one line each
        (["run", "missing.yaml"], 2),
        (["run", "ok.yaml", "--bogus"], 2),  # click's own usage errors
        (["show", "nope", "--store", "s.db"], 2),
        (["run", "ok.yaml", "-p", "=x"], 2),
        # the run succeeds, its Gantt chart cannot be written (a file where its folder should be)
        (["run", "ok.yaml", "--no-progress", "--store", "s.db", "--gantt", "blocked/g.html"], 2),
    ],
)
def test_errors_end_in_a_newline(folder: Path, args: list[str], code: int) -> None:
    out = podium(args, folder)
    assert out.returncode == code, out.stderr
    assert_error_lines(out.stderr)


@pytest.mark.parametrize("spec", ["partial.yaml", "partial.py"])
def test_an_error_after_output_cut_mid_line_starts_its_own_line(folder: Path, spec: str) -> None:
    out = podium(["run", spec, "--no-progress", "--store", "s.db", "--run-id", "r1"], folder)
    assert out.returncode == 1, out.stderr
    assert_error_lines(out.stderr)
    lines = out.stderr.splitlines()
    assert "[a] 50%" in lines or "[half] 50%" in lines, out.stderr
    if spec == "partial.yaml":  # its stdout too: the run summary does not go on after "done"
        assert "[a] done" in out.stdout.splitlines(), out.stdout
    assert lines[-1] == "error: run r1 failed; continue it with: podium resume r1"


def test_a_bare_podium_prints_its_help_not_an_error(folder: Path) -> None:
    out = podium([], folder)
    assert out.stderr.startswith("Usage: podium") and out.stderr.endswith("\n"), out.stderr
    assert "error:" not in out.stderr
