"""A failed task as a user meets it, on real processes: the run's summary names the exception's
type, message and the user's frame; ``podium show RUN TASK`` gives every attempt with its
failure kind, the resources it had, and the full traceback."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
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


def test_logs_show_the_lines_of_each_attempt(failed_run: tuple) -> None:
    project, run_id, done = failed_run
    logs = podium("logs", run_id, "pick_best", cwd=project)
    assert logs.returncode == 0, logs.stderr
    lines = logs.stdout.splitlines()
    assert lines == [
        "==> pick_best (attempt 1) <==",
        "picking among 2 scores",
        "scores look odd: ['accuracy', 'n']",
        "==> pick_best (attempt 2) <==",
        "picking among 2 scores",
        "scores look odd: ['accuracy', 'n']",
    ]
    second = podium("logs", run_id, "pick_best", "--attempt", "2", cwd=project)
    assert second.stdout == "picking among 2 scores\nscores look odd: ['accuracy', 'n']\n"
    everything = podium("logs", run_id, cwd=project)
    assert everything.stdout == logs.stdout  # train wrote nothing
    shown = podium("show", run_id, "pick_best", cwd=project)
    assert shown.stdout.rstrip().endswith("picking among 2 scores\nscores look odd: ['accuracy', 'n']")
    # without the live display the run echoed what its tasks wrote, each line under its task
    assert "[pick_best] picking among 2 scores" in done.stdout
    assert "[pick_best] scores look odd" in done.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["logs", "r1", "nope"], "error: run 'r1' has no task 'nope'\n"),
        (
            ["logs", "r1", "pick_best", "--attempt", "3"],
            "error: task 'pick_best' of run 'r1' ran 2 attempt(s), not 3\n",
        ),
        (["logs", "r1", "--attempt", "1"], "error: --attempt needs a TASK\n"),
        (["logs", "r9"], "error: run 'r9' not found in store {project}/.podium/podium.db\n"),
    ],
)
def test_bad_logs_requests_are_one_line(failed_run: tuple, args: list[str], message: str) -> None:
    project, _, _ = failed_run
    done = podium(*args, cwd=project)
    message = message.replace("{project}", str(project.resolve()))
    assert done.returncode == 2 and done.stderr == message and done.stdout == ""


SLOW = textwrap.dedent(
    """
    import time
    import podium

    @podium.task
    def talk(n: int) -> int:
        for i in range(n):
            print(f"tick {i}", flush=True)
            time.sleep(0.4)
        return n

    @podium.flow(name="talker")
    def talker():
        talk(6)
    """
)


def test_follow_prints_output_while_the_run_goes_on(tmp_path: Path) -> None:
    (tmp_path / "flow.py").write_text(SLOW, encoding="utf-8")
    cmd = [sys.executable, "-m", "podium"]
    args = ["run", "flow.py", "--no-progress", "--no-echo-logs", "--run-id", "f1"]
    run = subprocess.Popen(
        [*cmd, *args], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    follow = None
    try:
        deadline = time.monotonic() + 60
        while podium("logs", "f1", cwd=tmp_path).returncode != 0 and time.monotonic() < deadline:
            time.sleep(0.1)  # until the run exists
        follow = subprocess.Popen(
            [*cmd, "logs", "f1", "--follow"], cwd=tmp_path, stdout=subprocess.PIPE, text=True
        )
        assert follow.stdout is not None
        seen = [follow.stdout.readline(), follow.stdout.readline()]
        assert seen[0] == "==> talk (attempt 1) <==\n" and seen[1].startswith("tick ")
        assert run.poll() is None  # it printed while the run was still going on
        out, _ = run.communicate(timeout=60)
        rest = follow.stdout.read()  # (communicate() would skip what readline() buffered)
        follow.stdout.close()
        follow.wait(timeout=30)
    finally:
        for p in (run, follow):
            if p is not None and p.poll() is None:
                p.kill()
    assert run.returncode == 0 and follow.returncode == 0
    assert "tick" not in out  # --no-echo-logs
    lines = seen + rest.splitlines(keepends=True)
    assert lines == ["==> talk (attempt 1) <==\n"] + [f"tick {i}\n" for i in range(6)]
