"""Runs whose results are artifacts, through the real ``podium`` CLI on SQLite and PostgreSQL:
the store keeps references only, resume and the cache read the artifact, a missing one makes its
task run again, a writer killed mid-write leaves nothing referenced, and ``artifacts``/``gc``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import podium

FLOW = textwrap.dedent(
    """
    import os
    import numpy as np
    import podium

    def log(what):
        with open(os.environ["PODIUM_TEST_LOG"], "a", encoding="utf-8") as f:
            f.write(what + "\\n")

    @podium.task
    def make(n: int) -> dict:
        log("make")
        return {"weights": np.full(n, 3.0), "tag": "v1"}

    @podium.task
    def use(model: dict, gate: str) -> float:
        if not os.path.exists(gate):
            raise RuntimeError("gate closed")
        total = float(model["weights"].sum())
        log(f"use {model['tag']} {total}")
        return total

    @podium.task(cache=True)
    def cached(n: int):
        log("cached")
        return np.ones(n)

    @podium.flow(name="big")
    def big(gate: str, n: int = 1 << 18):
        use(model=make(n=n), gate=gate)

    @podium.flow(name="cachedflow")
    def cachedflow(n: int = 1 << 18):
        cached(n=n)
    """
)
N = 1 << 18  # 2 MiB of float64: above the 1 MiB threshold


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "flow.py").write_text(FLOW, encoding="utf-8")
    monkeypatch.setenv("PODIUM_TEST_LOG", str(tmp_path / "calls.log"))
    monkeypatch.delenv("PODIUM_ARTIFACTS", raising=False)
    return tmp_path


def calls(project: Path) -> list[str]:
    log = project / "calls.log"
    return log.read_text(encoding="utf-8").splitlines() if log.exists() else []


def listed(project: Path, *where: str) -> list[dict]:
    out = podium("artifacts", "r1", *where, "--json", cwd=project)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


Where = Callable[[Path], list[str]]


def _sqlite(project: Path) -> list[str]:
    return ["--store", str(project / "state.db")]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def where(request: pytest.FixtureRequest) -> Where:
    if request.param == "sqlite":
        return _sqlite
    url = request.getfixturevalue("pg_url")
    return lambda project: ["--store", url, "--artifacts", str(project / "artifacts")]


def test_a_large_result_is_a_reference_in_the_store_and_resume_reads_it(project: Path, where: Where) -> None:
    args, gate = where(project), project / "gate"
    first = podium(
        "run", "flow.py:big", "-p", f"gate={gate}", "--run-id", "r1", *args, "--no-progress", cwd=project
    )
    assert first.returncode == 1, first.stderr  # use fails: make's result is committed
    [item] = listed(project, *args)
    assert item["task_id"] == "make" and item["present"] and item["authenticated"]
    assert item["size"] > N * 8 and Path(item["where"]).stat().st_size == item["size"]
    if args[1].endswith("state.db"):  # the database holds the reference, not the array
        db = sum(p.stat().st_size for p in project.glob("state.db*") if p.is_file())
        assert db < N * 8 / 4
    gate.touch()
    resumed = podium("resume", "r1", *args, "--no-progress", cwd=project)
    assert resumed.returncode == 0, resumed.stderr
    assert calls(project) == ["make", f"use v1 {3.0 * N}"]  # make did not run again


def test_a_missing_artifact_makes_its_task_run_again(project: Path, where: Where) -> None:
    args, gate = where(project), project / "gate"
    podium("run", "flow.py:big", "-p", f"gate={gate}", "--run-id", "r1", *args, "--no-progress", cwd=project)
    [item] = listed(project, *args)
    Path(item["where"]).unlink()
    assert not listed(project, *args)[0]["present"]
    gate.touch()
    resumed = podium("resume", "r1", *args, "--no-progress", cwd=project)
    assert resumed.returncode == 0, resumed.stderr
    assert calls(project) == ["make", "make", f"use v1 {3.0 * N}"]
    shown = podium("show", "r1", *args[:2], "--events", cwd=project)
    assert "TaskInvalidated" in shown.stdout and "is missing" not in shown.stderr
    assert listed(project, *args)[0]["present"]


def test_a_cached_artifact_is_served_and_a_lost_one_is_a_miss(project: Path) -> None:
    args = ["run", "flow.py:cachedflow", *_sqlite(project), "--no-progress"]
    assert podium(*args, cwd=project).returncode == 0
    assert podium(*args, cwd=project).returncode == 0
    assert calls(project) == ["cached"]
    objects = [p for p in (project / "state.db.podium-artifacts" / "objects").rglob("*") if p.is_file()]
    assert len(objects) == 1  # the cached run refers to the same object
    objects[0].unlink()
    assert podium(*args, cwd=project).returncode == 0
    assert calls(project) == ["cached", "cached"]


KILLED = textwrap.dedent(
    """
    import numpy as np
    import podium

    @podium.task
    def make(n: int):
        return np.full(n, 7, dtype=np.uint8)

    @podium.task
    def use(a) -> int:
        return int(a[-1])

    @podium.flow(name="killed")
    def killed(n: int = 256 << 20):
        use(a=make(n=n))
    """
)


def test_killed_mid_write_then_resumed_leaves_nothing_partial_referenced(project: Path) -> None:
    (project / "killed.py").write_text(KILLED, encoding="utf-8")
    args = [*_sqlite(project), "--no-progress"]
    tmp = project / "state.db.podium-artifacts" / "tmp"
    proc = subprocess.Popen(
        [sys.executable, "-m", "podium", "run", "killed.py", "--run-id", "r1", *args],
        cwd=project,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while not (tmp.is_dir() and any(tmp.iterdir())):
        assert proc.poll() is None and time.monotonic() < deadline, "the write was never seen"
        time.sleep(0.001)
    os.kill(proc.pid, signal.SIGSTOP)  # frozen mid-write, then killed
    objects = project / "state.db.podium-artifacts" / "objects"
    assert not objects.exists() or not [p for p in objects.rglob("*") if p.is_file()]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert podium("artifacts", "r1", *args[:2], "--json", cwd=project).stdout.strip() == "[]"
    resumed = podium("resume", "r1", *args, cwd=project)
    assert resumed.returncode == 0, resumed.stderr
    [item] = listed(project, *args[:2])
    assert item["present"] and item["size"] > 256 << 20
    gc = podium("gc", *args[:2], "--grace", "0", cwd=project)
    assert gc.returncode == 0 and "deleted 1 object(s)" in gc.stdout, (
        gc.stdout
    )  # the killed write's temporary
    assert listed(project, *args[:2])[0]["present"]  # the referenced object stays
    assert not any(tmp.iterdir())


def test_artifacts_command_errors_are_one_line(project: Path) -> None:
    args = _sqlite(project)
    podium("run", "flow.py:cachedflow", "--run-id", "r1", *args, "--no-progress", cwd=project)
    for argv, code, text in [
        (["artifacts", "nope", *args], 2, "nope"),
        (["artifacts", "r1", "ghost", *args], 2, "ghost"),
        (["artifacts", "r1", *args, "--artifacts", "ftp://x/y"], 2, "unsupported artifact store URL"),
    ]:
        out = podium(*argv, cwd=project)
        assert out.returncode == code and text in out.stderr and "Traceback" not in out.stderr, out.stderr
    out = podium("artifacts", "r1", *args, cwd=project)
    assert out.returncode == 0 and out.stdout.startswith("cached  2.0 MiB  blake3:")
