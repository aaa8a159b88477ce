"""`podium run --run-id ID` and `podium.run(..., run_id=ID)` check a run id and an existing run
of that id in one place (``podium.load.runid``): both refuse the same bad id, the same run
started with other parameter values and the same run started from another file, with the same
one-line message, and write nothing for it."""

from __future__ import annotations

from pathlib import Path

import pytest

import podium
from inprocess_cli import cli
from podium.errors import PodiumError
from podium.store import open_store

SPEC = """
name: ids
params: {n: {type: int, default: 1}}
tasks:
  a: {argv: [sh, -c, 'echo $0', "${params.n}"]}
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "podium.toml").write_text('allow_programs = ["sh"]\n')
    (tmp_path / "s.yaml").write_text(SPEC)
    (tmp_path / "t.yaml").write_text(SPEC)
    monkeypatch.chdir(tmp_path)  # the API finds the project's grants as the command does
    return tmp_path


def both(project: Path, file: str, run_id: str, n: int | None = None) -> tuple[str, str]:
    """What `podium run` writes on stderr and what ``podium.run`` raises, for the same request."""
    db = str(project / "p.db")
    args = ["run", file, "--store", db, "--run-id", run_id, "--no-progress"]
    code, out, err = cli([*args, *(["-p", f"n={n}"] if n is not None else [])], project)
    assert code == 2 and out == "", (code, out, err)
    with pytest.raises(PodiumError) as raised:
        podium.run(project / file, {"n": n} if n is not None else None, store=db, run_id=run_id)
    return err, str(raised.value)


def events(project: Path, run_id: str) -> list[str]:
    store = open_store(str(project / "p.db"))
    try:
        return [e.type for e in store.events(run_id)]
    finally:
        store.close()


@pytest.mark.parametrize("bad", ["a b", "x" * 65, "../up", "naïve;rm"])
def test_both_edges_refuse_a_bad_run_id_in_the_same_words(project: Path, bad: str) -> None:
    err, raised = both(project, "s.yaml", bad)
    assert err == f"error: {raised}\n"
    assert raised == f"--run-id {bad!r}: use 1-64 letters, digits, '-' or '_'"
    assert not (project / "p.db").exists()  # nothing was written for it


def test_both_edges_refuse_new_values_for_a_run_in_the_same_words(project: Path) -> None:
    assert (
        cli(["run", "s.yaml", "--store", "p.db", "--run-id", "r1", "--no-progress", "-p", "n=3"], project)[0]
        == 0
    )
    before = events(project, "r1")
    err, raised = both(project, "s.yaml", "r1", n=4)
    assert err == f"error: {raised}\n"
    assert raised == (
        "run r1 was started with n=3; -p n=4 differs: start a new run (another --run-id, or none) "
        "to use new values"
    )
    assert events(project, "r1") == before  # nothing ran or was written for it
    # the same values continue the run, from either edge, and nothing runs again
    assert (
        cli(["run", "s.yaml", "--store", "p.db", "--run-id", "r1", "--no-progress", "-p", "n=3"], project)[0]
        == 0
    )
    again = podium.run(project / "s.yaml", {"n": 3}, store=str(project / "p.db"), run_id="r1")
    assert again.ok and events(project, "r1").count("TaskStarted") == before.count("TaskStarted") == 1


def test_both_edges_refuse_another_file_for_a_run_in_the_same_words(project: Path) -> None:
    assert cli(["run", "s.yaml", "--store", "p.db", "--run-id", "r1", "--no-progress"], project)[0] == 0
    before = events(project, "r1")
    err, raised = both(project, "t.yaml", "r1")
    assert err == f"error: {raised}\n"
    assert raised.startswith("run 'r1' was started from file ") and "t.yaml" in raised
    assert events(project, "r1") == before


def test_a_secret_parameter_is_not_shown_in_the_refusal(project: Path) -> None:
    (project / "s.yaml").write_text(SPEC.replace("params: {n:", "params: {api_token: {type: str}, n:"))
    args = ["run", "s.yaml", "--store", "p.db", "--run-id", "r2", "--no-progress"]
    assert cli([*args, "-p", "api_token=hunter2-old"], project)[0] == 0
    code, _out, err = cli([*args, "-p", "api_token=hunter2-new"], project)
    assert code == 2 and "run r2 was started with api_token='***'; -p api_token=*** differs" in err
    assert "hunter2" not in err
