"""Resuming after a fix: a failed run whose flow or spec was fixed goes on with the new code.

Every task appends its name to a side-effect file, so the tests count what really ran; the
store's event log says what the run recorded (``SourceChanged``, ``TaskCleared``). The
commands run as real processes, as a user runs them.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import pytest

from podium.model import events as ev
from podium.runtime.view import fold
from podium.store import open_store

FLOW = textwrap.dedent(
    """
    import os
    import podium

    LOG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ran.txt")

    def note(name):
        with open(LOG, "a", encoding="utf-8") as f:
            f.write(name + "\\n")

    @podium.task
    def load() -> int:
        note("load")
        return 2

    @podium.task
    def side() -> int:
        note("side")
        return 5

    @podium.task
    def train(x: int, y: int) -> int:
        note("train")
        BROKEN
        return x * 10

    @podium.task
    def score(m: int, s: int) -> int:
        note("score")
        return m + s

    @podium.task
    def report(v: int) -> str:
        note("report")
        return f"score {v}"

    @podium.flow(name="fixme")
    def fixme():
        a = load()
        s = side()
        m = train(x=a, y=s)
        v = score(m=m, s=s)
        report(v=v)
    """
)


def podium(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "podium", *args, "--store", "p.db", "--no-progress"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def ran(project: Path) -> Counter[str]:
    path = project / "ran.txt"
    return Counter(path.read_text().split()) if path.exists() else Counter()


def events(project: Path, run_id: str) -> list[ev.Event]:
    store = open_store(str(project / "p.db"))
    try:
        return list(store.events(run_id))
    finally:
        store.close()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "flow.py").write_text(FLOW)
    return tmp_path


def failed_run(project: Path) -> None:
    done = podium("run", "flow.py", "--run-id", "r1", cwd=project)
    assert done.returncode == 1, done.stderr
    assert "podium resume r1" in done.stderr
    assert ran(project) == Counter(load=1, side=1, train=1)


def test_a_fixed_flow_resumes_running_only_the_failed_task_and_its_dependents(project: Path) -> None:
    failed_run(project)
    flow = project / "flow.py"
    flow.write_text(FLOW.replace("    BROKEN\n", ""))
    done = podium("resume", "r1", cwd=project)
    assert done.returncode == 0, done.stdout + done.stderr
    # load and side kept their results; train (now fixed) and its dependents ran once more
    assert ran(project) == Counter(load=1, side=1, train=2, score=1, report=1)
    log = events(project, "r1")
    changed = [e for e in log if e.type == ev.SOURCE_CHANGED]
    assert len(changed) == 1 and changed[0].data["path"] == str(flow.resolve())
    assert changed[0].data["sha256"] == hashlib.sha256(flow.read_bytes()).hexdigest()
    assert fold(log).state == "succeeded"
    store = open_store(str(project / "p.db"))
    try:  # the run's header names the new version too (what the server and later resumes read)
        assert store.get_run("r1").source["sha256"] == changed[0].data["sha256"]
    finally:
        store.close()
    # the new version is the run's version now: resuming it again changes nothing, records nothing
    again = podium("resume", "r1", cwd=project)
    assert again.returncode == 0, again.stderr
    assert len(events(project, "r1")) == len(log)
    # `podium run FILE --run-id` continues the same way
    assert podium("run", "flow.py", "--run-id", "r1", cwd=project).returncode == 0
    assert ran(project)["train"] == 2


def test_from_runs_again_exactly_the_downstream_set(project: Path) -> None:
    (project / "flow.py").write_text(FLOW.replace("    BROKEN\n", ""))
    assert podium("run", "flow.py", "--run-id", "r1", cwd=project).returncode == 0
    assert ran(project) == Counter(load=1, side=1, train=1, score=1, report=1)
    done = podium("resume", "r1", "--from", "train", cwd=project)
    assert done.returncode == 0, done.stderr
    assert ran(project) == Counter(load=1, side=1, train=2, score=2, report=2)
    log = events(project, "r1")
    cleared = {e.task_id: e.data for e in log if e.type == ev.TASK_CLEARED}
    assert cleared == {t: {"from": "train", "was": "succeeded"} for t in ("train", "score", "report")}
    view = fold(log)
    assert view.state == "succeeded" and all(t.state == "succeeded" for t in view.tasks.values())
    store = open_store(str(project / "p.db"))
    try:
        assert sorted(store.results("r1")) == ["load", "report", "score", "side", "train"]
    finally:
        store.close()


def test_from_an_unknown_task_says_did_you_mean(project: Path) -> None:
    failed_run(project)
    done = podium("resume", "r1", "--from", "trian", cwd=project)
    assert done.returncode == 2 and "no task 'trian'" in done.stderr and "did you mean 'train'" in done.stderr
    assert "Traceback" not in done.stderr
    assert not any(e.type == ev.TASK_CLEARED for e in events(project, "r1"))


def test_a_shape_change_is_refused_listing_the_changes(project: Path) -> None:
    failed_run(project)
    before = len(events(project, "r1"))
    changed = FLOW.replace("    BROKEN\n", "").replace("v = score(m=m, s=s)", "v = score(m=m, s=a)")
    changed = changed.replace("    report(v=v)\n", "    report(v=v)\n    side.options(name='extra')()\n")
    (project / "flow.py").write_text(changed)
    done = podium("resume", "r1", cwd=project)
    assert done.returncode == 2, done.stderr
    err = done.stderr
    assert "the DAG's shape changed since run r1 started" in err
    assert "task 'extra' added" in err
    assert "task 'score': dependencies (side, train) -> (load, train)" in err
    assert "Traceback" not in err
    assert len(events(project, "r1")) == before  # nothing was written
    assert ran(project) == Counter(load=1, side=1, train=1)


SPEC = """
name: fixspec
tasks:
  a: {argv: [sh, -c, 'echo a >> ran.txt']}
  b: {argv: [sh, -c, 'echo b >> ran.txt; exit 3'], after: [a]}
  c: {argv: [sh, -c, 'echo c >> ran.txt'], after: [b]}
  d: {argv: [sh, -c, 'echo d >> ran.txt'], after: [a]}
"""


@pytest.fixture
def spec_project(tmp_path: Path) -> Path:
    (tmp_path / "podium.toml").write_text('allow_programs = ["sh"]\n')
    (tmp_path / "s.yaml").write_text(SPEC)
    return tmp_path


def test_a_fixed_yaml_spec_resumes_and_a_shape_change_is_refused(spec_project: Path) -> None:
    p = spec_project
    done = podium("run", "s.yaml", "--run-id", "y1", "--keep-going", cwd=p)
    assert done.returncode == 1
    assert ran(p) == Counter(a=1, b=1, d=1)
    (p / "s.yaml").write_text(SPEC.replace("after: [b]", "after: [a]"))
    refused = podium("resume", "y1", cwd=p)
    assert refused.returncode == 2
    assert "task 'c': dependencies (b) -> (a)" in refused.stderr
    (p / "s.yaml").write_text(SPEC.replace("; exit 3", ""))
    done = podium("run", "s.yaml", "--run-id", "y1", cwd=p)
    assert done.returncode == 0, done.stderr
    assert ran(p) == Counter(a=1, b=2, c=1, d=1)
    again = podium("resume", "y1", "--from", "b", cwd=p)
    assert again.returncode == 0, again.stderr
    assert ran(p) == Counter(a=1, b=3, c=2, d=1)
    assert sum(e.type == ev.SOURCE_CHANGED for e in events(p, "y1")) == 1


MAP_FLOW = textwrap.dedent(
    """
    import os
    import podium

    LOG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ran.txt")

    def note(name):
        with open(LOG, "a", encoding="utf-8") as f:
            f.write(name + "\\n")

    @podium.task
    def items() -> list:
        note("items")
        return [1, 2, 3]

    @podium.task
    def square(x: int) -> int:
        note("square")
        return x * x

    @podium.task(cache=True)
    def total(xs: list) -> int:
        note("total")
        return sum(xs)

    @podium.flow(name="mapfix")
    def mapfix():
        total(xs=square(x=podium.each(items())))
    """
)


def total_of(project: Path, run_id: str) -> int:
    from podium.runtime import codec

    store = open_store(str(project / "p.db"))
    try:
        return int(codec.decode(store.results(run_id)["total"]))
    finally:
        store.close()


def test_from_a_map_in_the_same_process_runs_the_new_code_never_the_old_cache(tmp_path: Path) -> None:
    """In one process (as the Python API or a test does): the changed flow file is executed
    anew, and a cached result of the old code is never served for the new code."""
    from inprocess_cli import cli

    p = tmp_path
    (p / "mapflow_fix.py").write_text(MAP_FLOW)
    base = ["--store", "p.db", "--no-progress"]
    code, _, err = cli(["run", "mapflow_fix.py", "--run-id", "m1", *base], p)
    assert code == 0, err
    assert ran(p) == Counter(items=1, square=3, total=1) and total_of(p, "m1") == 14
    (p / "mapflow_fix.py").write_text(MAP_FLOW.replace("return sum(xs)", "return sum(xs) * 10"))
    code, _, err = cli(["resume", "m1", "--from", "square", *base], p)
    assert code == 0, err
    # total's inputs are as before, its code is not: it runs (a cached result of the old code
    # would give 14)
    assert ran(p) == Counter(items=1, square=6, total=2) and total_of(p, "m1") == 140
    log = events(p, "m1")
    cleared = sorted(e.task_id for e in log if e.type == ev.TASK_CLEARED)
    assert cleared == ["square", "square[0]", "square[1]", "square[2]", "total"]
    # the same code again: the cache serves total (it does not run)
    code, _, err = cli(["resume", "m1", "--from", "square", *base], p)
    assert code == 0, err
    assert ran(p) == Counter(items=1, square=9, total=2) and total_of(p, "m1") == 140
    view = fold(events(p, "m1"))
    assert view.tasks["total"].cached
    assert view.state == "succeeded" and view.counts()["pending"] == 0
