"""The README documents every command of the `podium` CLI (a new command fails this test until
it is in the README's command table)."""

from __future__ import annotations

from pathlib import Path

from podium.cli import cli, main  # noqa: F401  (main registers the commands lazily)

README = Path(__file__).resolve().parents[1] / "README.md"


def test_every_command_is_in_the_readme() -> None:
    from podium.cli import artifacts, learn, logs, plan, report, resume, run, server, show, spec  # noqa: F401  (registers commands)

    text = README.read_text(encoding="utf-8")
    commands = sorted(cli.commands)
    assert len(commands) >= 9
    missing = [c for c in commands if f"`podium {c}" not in text]
    assert not missing, f"commands missing from README.md: {', '.join(missing)}"
