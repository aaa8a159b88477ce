"""`podium server` finds the ``[server]`` table of ``podium.toml`` as every command finds the
project (``podium.project.find_project``): from a subfolder it serves the project above, and a
``podium.toml`` someone else could have written is never read (a warning names it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from podium.server.config import load_server_config

from .conftest import ServerProcess, kill_workers, make_project

FLOW = "name: f\ntasks: {a: {kind: shell, argv: [true]}}\n"


def project(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "flows").mkdir()
    (root / "flows" / "f.yaml").write_text(FLOW)
    (root / "podium.toml").write_text('[server]\nmax_active_runs = 3\nworkflows = ["flows/f.yaml"]\n')
    (root / "src" / "deep").mkdir(parents=True)
    return root


def test_the_project_table_is_found_from_a_subfolder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = project(tmp_path / "proj")
    sub = root / "src" / "deep"
    for config in (load_server_config(cwd=sub), _from(sub, monkeypatch)):
        assert config.path == str(root / "podium.toml") and config.base_dir == root
        assert config.max_active_runs == 3
        assert [w.resolved for w in config.workflows] == [str(root / "flows" / "f.yaml")]


def _from(folder: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(folder)
    return load_server_config()


def test_an_untrusted_podium_toml_is_skipped_with_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = project(tmp_path / "proj")
    sub = root / "src"
    planted = sub / "podium.toml"
    planted.write_text('[server]\nallow_modules = ["evil"]\nmax_active_runs = 99\n')
    planted.chmod(0o666)  # anyone could have written it
    config = load_server_config(cwd=sub / "deep")
    assert config.path == str(root / "podium.toml") and config.allow_modules == ()  # the walk went on up
    assert config.max_active_runs == 3
    assert f"ignoring {planted}: it is writable by everyone" in capsys.readouterr().err
    # in the folder itself, with no trusted project above: nothing of it is read
    alone = tmp_path / "alone"
    alone.mkdir()
    (alone / "podium.toml").write_text('[server]\nallow_modules = ["evil"]\n')
    (alone / "podium.toml").chmod(0o666)
    config = load_server_config(cwd=alone)
    assert config.path is None and config.allow_modules == () and config.base_dir == alone


def test_an_explicit_config_is_still_relative_to_the_current_folder(tmp_path: Path) -> None:
    root = project(tmp_path / "proj")
    (root / "src" / "other.toml").write_text("[server]\nmax_active_runs = 5\n")
    assert load_server_config("other.toml", cwd=root / "src").max_active_runs == 5


def test_a_server_started_in_a_subfolder_serves_the_project(tmp_path: Path) -> None:
    root = make_project(tmp_path / "proj")
    sub = root / "notebooks" / "week1"
    sub.mkdir(parents=True)
    srv = ServerProcess(root, cwd=sub)
    try:
        assert "workflows: <b>xss</b>, fanout, quick, slow, steps" in "".join(srv.output)
        run_id = srv.start_run("quick")  # its shell steps are allowed by the project's podium.toml
        assert srv.wait_status(run_id, ("succeeded", "failed"))["status"] == "succeeded"
    finally:
        srv.stop()
        kill_workers(root)
