"""Which ``podium.toml`` grants a run: the one of the project root, found by walking up like
the store is, and only where nobody but the user could have written it.

Attacks: a ``podium.toml`` planted in a parent folder the user does not own, or in a folder
everyone may write to (``/tmp``), or itself writable by everyone, granting a spec any program;
a settings file above the user's home folder. The commands run in this process from the
folder a user would be in.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from inprocess_cli import cli
from podium import project
from podium.load.config import load_config
from podium.store.locate import locate

SPEC = "name: touchy\ntasks:\n  t: {argv: [touch, SENTINEL]}\n"
GRANT = 'allow_programs = ["touch"]\n'
STRANGER = 65534


@pytest.fixture(autouse=True)
def clean(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("PODIUM_STORE", raising=False)
    monkeypatch.setattr(project, "_warned", set())
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # the walks below stay out of it


def spec(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    sentinel = folder / "RAN"
    (folder / "s.yaml").write_text(SPEC.replace("SENTINEL", str(sentinel)))
    return sentinel


def run(folder: Path) -> tuple[int, str, str]:
    return cli(["run", "s.yaml", "--store", "memory:", "--no-progress"], folder)


def foreign(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``path`` another user's: really (as root), else as this process sees it."""
    if os.geteuid() == 0:
        os.chown(path, STRANGER, STRANGER)
    else:
        mine = os.geteuid()
        monkeypatch.setattr(project.os, "geteuid", lambda: mine + 1 if mine + 1 != 0 else 2)


def test_from_a_subfolder_the_projects_settings_apply(tmp_path: Path) -> None:
    root = tmp_path / "project"
    deep = root / "src" / "deep"
    sentinel = spec(deep)
    (root / "podium.toml").write_text(GRANT)
    code, _, err = cli(["validate", "s.yaml"], deep)
    assert code == 0, err
    code, _, err = run(deep)
    assert code == 0, err
    assert sentinel.exists() and "warning" not in err
    config = load_config(deep)
    assert config.root == str(root.resolve()) and config.path == str(root.resolve() / "podium.toml")
    # the settings and the store come from the same folder
    assert locate(None, cwd=deep, env={}).path == root.resolve() / ".podium" / "podium.db"


def test_a_podium_toml_in_a_parent_owned_by_someone_else_grants_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    theirs = tmp_path / "theirs"
    mine = theirs / "mine"
    sentinel = spec(mine)
    planted = theirs / "podium.toml"
    planted.write_text('allow_programs = ["*"]\n')
    foreign(planted, monkeypatch)
    foreign(theirs, monkeypatch)
    code, _, err = run(mine)
    assert code != 0 and not sentinel.exists()
    assert "touch" in err and "allow_programs in podium.toml" in err and "Traceback" not in err
    warning = [line for line in err.splitlines() if "warning" in line]
    assert len(warning) == 1 and f"ignoring {planted.resolve()}: " in warning[0]
    assert "not by you" in warning[0]
    # the store is not looked for there either
    assert locate(None, cwd=mine, env={}).origin == "default"


@pytest.mark.parametrize("where", ["folder", "file"])
def test_a_podium_toml_everyone_can_write_grants_nothing(tmp_path: Path, where: str) -> None:
    shared = tmp_path / "shared"  # like /tmp: anyone may put a podium.toml there
    work = shared / "work"
    sentinel = spec(work)
    planted = shared / "podium.toml"
    planted.write_text(GRANT)
    target = shared if where == "folder" else planted
    target.chmod(target.stat().st_mode | stat.S_IWOTH | (stat.S_ISVTX if where == "folder" else 0))
    code, _, err = run(work)
    assert code != 0 and not sentinel.exists()
    assert f"podium: warning: ignoring {planted.resolve()}: " in err
    assert "writable by everyone" in err
    assert load_config(work).policy.programs == ()


def test_the_nearest_trusted_project_wins_over_a_planted_one_below(tmp_path: Path) -> None:
    outer = tmp_path / "outer"
    shared = outer / "drop"
    work = shared / "work"
    sentinel = spec(work)
    (outer / "podium.toml").write_text(GRANT)
    (shared / "podium.toml").write_text('allow_programs = ["*"]\n')
    shared.chmod(0o1777)
    code, _, err = cli(["validate", "s.yaml"], work)
    assert code == 0, err
    code, _, more = run(work)
    assert code == 0 and sentinel.exists(), more
    # said once per process, however often the settings are read
    assert (err + more).count(f"podium: warning: ignoring {shared.resolve() / 'podium.toml'}") == 1
    found = project.find_project(work)
    assert found.root == outer.resolve()
    assert [p for p, _ in found.ignored] == [shared.resolve() / "podium.toml"]
    assert load_config(work).policy.programs == ("touch",)


def test_in_the_current_folder_too_only_a_trusted_file_counts(tmp_path: Path) -> None:
    here = tmp_path / "here"
    sentinel = spec(here)
    (here / "podium.toml").write_text(GRANT)
    here.chmod(0o777)
    code, _, err = run(here)
    assert code != 0 and not sentinel.exists() and "writable by everyone" in err
    here.chmod(0o755)
    code, _, err = run(here)
    assert code == 0 and sentinel.exists(), err


def test_the_search_stops_at_the_home_folder(tmp_path: Path) -> None:
    (tmp_path / "podium.toml").write_text(GRANT)  # above the home folder
    work = tmp_path / "home" / "proj"
    sentinel = spec(work)
    found = project.find_project(work)
    assert found.root is None and found.looked_in[-1] == (tmp_path / "home").resolve()
    code, _, err = run(work)
    assert code != 0 and not sentinel.exists(), err


def test_a_pyproject_in_a_folder_everyone_can_write_grants_nothing(tmp_path: Path) -> None:
    here = tmp_path / "py"
    here.mkdir()
    (here / "pyproject.toml").write_text('[tool.podium]\nallow_programs = ["touch"]\n')
    assert load_config(here).policy.programs == ("touch",)
    here.chmod(0o1777)
    assert load_config(here).policy.programs == ()
