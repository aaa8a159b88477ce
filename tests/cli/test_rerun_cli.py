"""`podium run FILE --run-id OLD` continues run OLD only with the same spec file, DAG shape and
parameters.

Before, a changed spec or new ``-p`` values were silently ignored and the old results reused.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from inprocess_cli import cli
from podium.store import open_store

SPEC = """
name: rerun
params: {n: {type: int, default: 1}}
tasks:
  a: {argv: [sh, -c, 'echo $0', "${params.n}"]}
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "podium.toml").write_text('allow_programs = ["sh"]\n')
    (tmp_path / "s.yaml").write_text(SPEC)
    return tmp_path


def run(project: Path, *extra: str) -> tuple[int, str, str]:
    db = str(project / "p.db")
    return cli(["run", "s.yaml", "--store", db, "--run-id", "r1", "--no-progress", *extra], project)


def starts(project: Path) -> int:
    store = open_store(str(project / "p.db"))
    try:
        return sum(e.type == "TaskStarted" for e in store.events("r1"))
    finally:
        store.close()


def test_the_same_spec_continues_the_run(project: Path) -> None:
    assert run(project, "-p", "n=3")[0] == 0
    code, _out, err = run(project)
    assert code == 0, err
    code, _out, err = run(project, "-p", "n=3")
    assert code == 0, err
    assert starts(project) == 1  # nothing ran again


def test_a_changed_spec_continues_the_run_only_with_the_same_shape(project: Path) -> None:
    assert run(project)[0] == 0
    (project / "s.yaml").write_text(SPEC.replace("echo $0", "echo changed $0"))
    code, _out, err = run(project)
    assert code == 0, err
    assert starts(project) == 1  # `a` succeeded: it keeps its result
    (project / "s.yaml").write_text(SPEC + "  b: {argv: [sh, -c, 'echo b'], after: [a]}\n")
    code, out, err = run(project)
    assert code == 2 and out == ""
    assert "s.yaml: the DAG's shape changed since run r1 started" in err and "start a new run" in err
    assert "  task 'b' added" in err
    assert starts(project) == 1


def test_new_parameter_values_are_refused(project: Path) -> None:
    assert run(project, "-p", "n=3")[0] == 0
    code, _out, err = run(project, "-p", "n=4")
    assert code == 2
    assert "run r1 was started with n=3; -p n=4 differs" in err and "new run" in err
    assert starts(project) == 1


def test_another_file_is_refused(project: Path) -> None:
    assert run(project)[0] == 0
    (project / "t.yaml").write_text(SPEC)
    code, _out, err = cli(
        ["run", "t.yaml", "--store", str(project / "p.db"), "--run-id", "r1", "--no-progress"], project
    )
    assert code == 2 and "run 'r1' was started from file" in err
