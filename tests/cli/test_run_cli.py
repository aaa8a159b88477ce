"""`podium run / resume / cancel / runs / show` as a user runs them: real processes, real signals.

The side-effect log counts how often each task body ran; the store says which tasks had
committed results. Together they show that no committed task ever runs again.
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from podium.runtime.view import fold
from podium.store import open_store

FLOW = textwrap.dedent(
    """
    import time
    import podium

    @podium.task(cpu=1)
    def work(i: int, log: str, delay: float) -> int:
        time.sleep(delay)
        with open(log, "a", encoding="utf-8") as f:
            f.write(f"w{i}\\n")
        return i

    @podium.flow(name="layers")
    def layers(log: str, delay: float = 0.08):
        prev = []
        for i in range(24):  # six layers of four; each layer waits for the one before
            h = work.options(name=f"w{i}", after=prev[-4:] if i % 4 == 0 else [])(
                i=i, log=log, delay=delay
            )
            prev.append(h)
    """
)


def podium_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "podium", *args]


def run(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(podium_cmd(*args), cwd=cwd, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "flow.py").write_text(FLOW, encoding="utf-8")
    return tmp_path


def _wait_lines(path: Path, n: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"podium exited early ({proc.returncode}): {proc.communicate()}")
        if path.exists() and len(path.read_text(encoding="utf-8").splitlines()) >= n:
            return
        time.sleep(0.02)
    raise AssertionError(f"{path} never reached {n} lines")


def _committed(db: Path, run_id: str) -> set[str]:
    store = open_store(str(db))
    try:
        return set(store.results(run_id))
    finally:
        store.close()


def _state(db: Path, run_id: str) -> str | None:
    store = open_store(str(db))
    try:
        return fold(store.events(run_id)).state
    finally:
        store.close()


def test_kill_9_then_resume_runs_no_committed_task_again(project: Path) -> None:
    log, db = project / "effects.log", project / "state.db"
    args = ["flow.py", "-p", f"log={log}", "--run-id", "crash1", "--store", str(db), "--no-progress"]
    proc = subprocess.Popen(
        podium_cmd("run", *args), cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    _wait_lines(log, 8, proc)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    before = _committed(db, "crash1")
    assert 0 < len(before) < 24, "the kill should land mid-run"
    assert _state(db, "crash1") == "running"

    done = run("resume", "crash1", "--store", str(db), "--no-progress", cwd=project)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert _state(db, "crash1") == "succeeded"
    counts = collections.Counter(log.read_text(encoding="utf-8").split())
    assert set(counts) == {f"w{i}" for i in range(24)}
    for task in before:
        assert counts[task] == 1, f"{task} had committed before the kill but ran {counts[task]} times"

    # running the same id again is idempotent: nothing re-runs
    again = run("run", *args, cwd=project)
    assert again.returncode == 0, again.stderr
    assert collections.Counter(log.read_text(encoding="utf-8").split()) == counts


def test_ctrl_c_cancels_cleanly_and_the_run_resumes(project: Path) -> None:
    log, db = project / "effects.log", project / "state.db"
    proc = subprocess.Popen(
        podium_cmd(  # 0.3 s tasks: the run is still going when Ctrl-C lands, even on a busy machine
            "run",
            "flow.py",
            "-p",
            f"log={log}",
            "-p",
            "delay=0.3",
            "--run-id",
            "int1",
            "--store",
            str(db),
            "--no-progress",
        ),
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _wait_lines(log, 4, proc)
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert "podium resume int1" in err and "Traceback" not in err
    assert _state(db, "int1") == "cancelled"
    done = run("resume", "int1", "--store", str(db), "--no-progress", cwd=project)
    assert done.returncode == 0, done.stderr
    assert _state(db, "int1") == "succeeded"


def test_cancel_from_another_process(project: Path) -> None:
    log, db = project / "effects.log", project / "state.db"
    proc = subprocess.Popen(
        podium_cmd(
            "run",
            "flow.py",
            "-p",
            f"log={log}",
            "-p",
            "delay=0.3",
            "--run-id",
            "c1",
            "--store",
            str(db),
            "--no-progress",
        ),
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _wait_lines(log, 2, proc)
    out = run("cancel", "c1", "--store", str(db), cwd=project)
    assert out.returncode == 0 and "cancel requested" in out.stdout
    proc.communicate(timeout=30)
    assert proc.returncode != 0
    assert _state(db, "c1") == "cancelled"
    shown = run("show", "c1", "--store", str(db), cwd=project)
    assert shown.returncode == 0 and "cancelled" in shown.stdout
    listed = run("runs", "--store", str(db), cwd=project)
    assert "c1" in listed.stdout and "layers" in listed.stdout
    done = run("resume", "c1", "--store", str(db), "--no-progress", cwd=project)  # the old request is gone
    assert done.returncode == 0, done.stderr
    assert _state(db, "c1") == "succeeded"


def test_run_prints_summary_with_t_r_f(project: Path) -> None:
    log, db = project / "effects.log", project / "state.db"
    out = run(
        "run",
        "flow.py",
        "-p",
        f"log={log}",
        "-p",
        "delay=0",
        "--run-id",
        "s1",
        "--store",
        str(db),
        cwd=project,
    )
    assert out.returncode == 0, out.stderr
    assert "T = " in out.stdout and "R = " in out.stdout and "F = " in out.stdout
    assert "succeeded" in out.stdout
    # `podium show` recomputes R from the log with the prices the run recorded: the same figure
    shown = run("show", "s1", "--store", str(db), cwd=project)
    r_run = out.stdout.split("R = ")[1].split()[0]
    r_show = shown.stdout.split("R = ")[1].split()[0]
    assert r_run == r_show and float(r_run) > 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "flow.py", "-p", "nokey"], "NAME=VALUE"),
        (["run", "flow.py", "-p", "log=x", "-p", "bogus=1"], "unknown parameter"),
        (["run", "flow.py", "-p", "log=x", "-p", "delay=abc"], "expected float"),
        (["run", "flow.py"], "required parameter"),
        (["run", "missing.yaml"], "missing.yaml"),
        (["run", "flow.py", "-p", "log=x", "--run-id", "bad id!"], "--run-id"),
        (["resume", "nosuchrun"], "no Podium store at"),
        (["show", "nosuchrun"], "no Podium store at"),
        (["run", "flow.py", "-p", "log=x", "--store", "ftp://x"], "store URL"),
    ],
)
def test_bad_cli_input_is_one_line_and_creates_no_run(project: Path, args: list[str], message: str) -> None:
    db = project / "state.db"
    if "--store" not in args:
        args = [*args, "--store", str(db)]
    out = run(*args, cwd=project)
    assert out.returncode == 2, (out.returncode, out.stderr)
    assert message in out.stderr
    assert "Traceback" not in out.stderr
    if db.exists():
        store = open_store(str(db))
        try:
            assert store.list_runs() == []
        finally:
            store.close()


def test_env_has_no_stray_podium_processes() -> None:
    """Guard for the tests above: none of their `podium run` processes is left behind."""
    import psutil

    me = psutil.Process(os.getpid())
    stray = [p for p in me.children(recursive=True) if "podium" in " ".join(p.cmdline())]
    assert stray == []
