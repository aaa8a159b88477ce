"""A failed task as a user meets it, on real processes: the run's summary names the exception's
type, message and the user's frame; ``podium show RUN TASK`` gives every attempt with its
failure kind, the resources it had, and the full traceback."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

FLOW = textwrap.dedent(
    """
    import logging
    import podium

    log = logging.getLogger("training")

    @podium.task(cpu=1)
    def train(n: int) -> dict:
        return {"accuracy": 0.9, "n": n}

    @podium.task(cpu=1, retries=1, retry_delay=0)
    def pick_best(scores: dict) -> float:
        print(f"picking among {len(scores)} scores")
        log.warning("scores look odd: %s", sorted(scores))
        return scores["acuracy"]

    @podium.flow(name="picker")
    def picker():
        pick_best(train(3))
    """
)
#: The line of ``return scores["acuracy"]`` in FLOW.
FAIL_LINE = FLOW.splitlines().index('    return scores["acuracy"]') + 1


Done = subprocess.CompletedProcess[str]


def podium(*args: str, cwd: Path) -> Done:
    cmd = [sys.executable, "-m", "podium", *args]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def failed_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, Done]:
    project = tmp_path_factory.mktemp("picker")
    (project / "flow.py").write_text(FLOW, encoding="utf-8")
    done = podium("run", "flow.py", "--no-progress", "--run-id", "r1", cwd=project)
    return project, "r1", done


def test_the_summary_names_type_message_and_frame(failed_run: tuple) -> None:
    _, run_id, done = failed_run
    assert done.returncode == 1, done.stderr
    assert "pick_best failed [user]: KeyError: 'acuracy'" in done.stdout
    assert f"at flow.py:{FAIL_LINE} in pick_best" in done.stdout
    assert f"podium show {run_id} pick_best" in done.stdout
    assert done.stderr.endswith("\n") and "Traceback" not in done.stderr


def test_show_task_gives_attempts_resources_and_the_traceback(failed_run: tuple) -> None:
    project, run_id, _ = failed_run
    shown = podium("show", run_id, "pick_best", cwd=project)
    assert shown.returncode == 0, shown.stderr
    out = shown.stdout
    assert "task pick_best  status failed  attempts 2" in out
    assert out.count("resources requested cpu=1") == 2
    assert "attempt 1: user" in out and "attempt 2: user" in out
    assert out.count("Traceback (most recent call last):") == 2
    assert f'flow.py", line {FAIL_LINE}, in pick_best' in out
    assert "KeyError: 'acuracy'" in out


def test_show_of_an_unknown_task_is_one_line(failed_run: tuple) -> None:
    project, run_id, _ = failed_run
    shown = podium("show", run_id, "nope", cwd=project)
    assert shown.returncode == 2
    assert shown.stderr == f"error: run {run_id!r} has no task 'nope'\n"
