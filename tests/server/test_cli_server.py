"""`podium server` on the command line: bad setups are one line and exit 2, before listening."""

from __future__ import annotations

from pathlib import Path

import pytest

from podium.cli import main
from podium.cli.server import _is_loopback, absolute_store_url, state_dir_for


def _fails(args: list[str], capsys, words: str) -> None:
    with pytest.raises(SystemExit) as e:
        main(["server", *args])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and words in err and "Traceback" not in err, err


def test_bad_setups(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    _fails(["--store", "memory:"], capsys, "cannot be shared with the server's worker processes")
    _fails(["--config", "nope.toml", "--store", "x.db"], capsys, "nope.toml: no such configuration file")
    (tmp_path / "podium.toml").write_text('[server]\nworkflows = ["missing.yaml"]\n')
    _fails(["--store", "x.db"], capsys, "missing.yaml")
    (tmp_path / "podium.toml").write_text('[[server.workflows]]\npath = "bad.yaml"\n')
    (tmp_path / "bad.yaml").write_text("name: bad\ntasks: {a: {kind: shell, argv: [true], after: [zzz]}}\n")
    _fails(["--store", "x.db"], capsys, "server.workflows[0] (bad.yaml)")
    (tmp_path / "podium.toml").write_text("")
    token = tmp_path / ".podium" / "server.token"
    token.parent.mkdir()
    token.write_text("x" * 43)
    token.chmod(0o644)
    _fails(["--store", ".podium/p.db"], capsys, "readable by other users")
    token.chmod(0o600)
    token.write_text("short")
    _fails(["--store", ".podium/p.db"], capsys, "does not hold a valid token")


def test_paths_and_addresses(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert absolute_store_url("a/b.db") == str(tmp_path / "a" / "b.db")
    assert absolute_store_url("sqlite:///a.db?journal=off") == f"sqlite:///{tmp_path / 'a.db'}?journal=off"
    assert absolute_store_url("postgresql://u:p@h/db") == "postgresql://u:p@h/db"
    assert state_dir_for(f"sqlite:///{tmp_path / 'x' / 'p.db'}") == tmp_path / "x"
    assert state_dir_for("postgresql://h/db") == tmp_path / ".podium"
    assert _is_loopback("127.0.0.1") and _is_loopback("::1") and _is_loopback("localhost")
    assert not _is_loopback("0.0.0.0") and not _is_loopback("192.168.1.4")
