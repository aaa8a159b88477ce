"""Where the store is: found like git finds ``.git``; ``--store`` beats ``PODIUM_STORE`` beats
the search; read-only commands never create a store.

The commands run in this process from the folder a user would be in (``inprocess_cli``);
``PODIUM_STORE`` is set or removed per test.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from inprocess_cli import cli
from podium.store import open_store
from podium.store.locate import locate, sqlite_path

SPEC = "name: here\ntasks:\n  a: {argv: [echo, hi]}\n"


@pytest.fixture(autouse=True)
def no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PODIUM_STORE", raising=False)


def files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def start(folder: Path, run_id: str, *extra: str) -> None:
    (folder / "podium.toml").write_text('allow_programs = ["echo"]\n')
    (folder / "s.yaml").write_text(SPEC)
    code, _, err = cli(["run", "s.yaml", "--run-id", run_id, "--no-progress", *extra], folder)
    assert code == 0, err


def run_ids(url: str) -> list[str]:
    store = open_store(url)
    try:
        return [r.run_id for r in store.list_runs(100)]
    finally:
        store.close()


def test_from_a_subfolder_runs_finds_the_parent_projects_store(tmp_path: Path) -> None:
    project = tmp_path / "project"
    deep = project / "src" / "deep"
    deep.mkdir(parents=True)
    start(project, "top-1")
    assert (project / ".podium" / "podium.db").is_file()
    code, out, err = cli(["runs"], deep)
    assert code == 0, err
    assert "top-1" in out
    assert err.splitlines()[0] == f"store: {project.resolve() / '.podium' / 'podium.db'}"
    code, out, err = cli(["show", "top-1"], deep)
    assert code == 0 and "succeeded" in out, err
    assert not (deep / ".podium").exists() and not (project / "src" / ".podium").exists()
    code, _, err = cli(["show", "nope"], deep)  # a run not there says which store was read
    assert code == 2 and f"run 'nope' not found in store {project.resolve()}/.podium/podium.db" in err
    # a run started from the subfolder lands in the same store
    (deep / "s.yaml").write_text(SPEC)
    code, _, err = cli(
        ["run", "s.yaml", "--run-id", "deep-1", "--no-progress", "--allow-program", "echo"], deep
    )
    assert code == 0, err
    assert sorted(run_ids(str(project / ".podium" / "podium.db"))) == ["deep-1", "top-1"]
    assert not (deep / ".podium").exists()


def test_a_podium_toml_alone_marks_the_project_folder(tmp_path: Path) -> None:
    (tmp_path / "podium.toml").write_text("")
    sub = tmp_path / "a" / "b"
    sub.mkdir(parents=True)
    found = locate(None, cwd=sub, env={})
    assert found.origin == "found" and found.path == tmp_path.resolve() / ".podium" / "podium.db"
    assert found.looked_in == (sub.resolve(), (tmp_path / "a").resolve(), tmp_path.resolve())


@pytest.mark.parametrize(
    "args",
    [["runs"], ["show", "r1"], ["logs", "r1"], ["artifacts", "r1"], ["report", "r1", "-o", "r.html"]],
)
def test_a_read_only_command_in_an_empty_folder_creates_nothing(tmp_path: Path, args: list[str]) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    code, out, err = cli(args, empty)
    assert code != 0 and out == ""
    line = err.strip()
    assert line.startswith("error: no Podium store found (looked in: ")
    assert str(empty.resolve()) in line and "run `podium run` first or pass --store" in line
    assert len(line.splitlines()) == 1 and "Traceback" not in err
    assert files(empty) == []


def test_a_read_only_command_with_a_missing_store_file_creates_nothing(tmp_path: Path) -> None:
    code, _, err = cli(["runs", "--store", "nothere/p.db"], tmp_path)
    assert code != 0
    assert f"no Podium store at {tmp_path.resolve() / 'nothere' / 'p.db'} (from --store)" in err
    assert files(tmp_path) == []
    code, _, err = cli(["resume", "r1", "--store", "p.db"], tmp_path)
    assert code != 0 and "no Podium store at" in err
    assert files(tmp_path) == []


def test_store_option_beats_the_environment_which_beats_the_search(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    start(project, "found-1")
    env_db = tmp_path / "env.db"
    monkeypatch.setenv("PODIUM_STORE", str(env_db))
    start(project, "env-1")
    assert run_ids(str(env_db)) == ["env-1"]
    code, out, err = cli(["runs"], project)
    assert "env-1" in out and "found-1" not in out and err.startswith(f"store: {env_db}")
    start(project, "opt-1", "--store", "sqlite:///opt.db")  # relative to the current folder
    assert run_ids(str(project / "opt.db")) == ["opt-1"]
    code, out, err = cli(["runs", "--store", f"sqlite:///{project / 'opt.db'}"], tmp_path)
    assert code == 0 and "opt-1" in out and "env-1" not in out
    monkeypatch.delenv("PODIUM_STORE")
    code, out, err = cli(["runs"], project)
    assert "found-1" in out and "env-1" not in out and "opt-1" not in out


def test_store_urls_name_their_files(tmp_path: Path) -> None:
    assert sqlite_path("sqlite:///rel/p.db", tmp_path) == tmp_path / "rel" / "p.db"
    assert sqlite_path("sqlite:////abs/p.db", tmp_path) == Path("/abs/p.db")
    assert sqlite_path("p.db", tmp_path) == tmp_path / "p.db"
    assert sqlite_path("/abs/p.db", tmp_path) == Path("/abs/p.db")
    assert sqlite_path("memory:", tmp_path) is None
    assert sqlite_path("postgresql://u:pw@db/podium", tmp_path) is None
    pg = locate("postgresql://u:secret@db/podium", cwd=tmp_path, env={})
    assert pg.exists() and "secret" not in pg.shown and pg.origin == "--store"
    env = locate(None, cwd=tmp_path, env={"PODIUM_STORE": "x.db"})
    assert env.origin == "PODIUM_STORE" and env.path == tmp_path.resolve() / "x.db"
    assert os.path.isabs(locate(None, cwd=tmp_path, env={}).url.removeprefix("sqlite:///"))
