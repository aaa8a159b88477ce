"""The CLI imports a command's module only when that command is asked for (``cli.COMMANDS``).

Every command is listed (a command missing from the map would be unknown until ``--help``), and a
reading command does not import what running a workflow needs (the loader, the engine).
"""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

from podium.cli import COMMANDS, cli


def test_every_command_is_listed_with_its_module() -> None:
    for module in sorted(set(COMMANDS.values())):
        importlib.import_module(f"podium.cli.{module}")
    assert set(cli.commands) == set(COMMANDS)
    for name, command in cli.commands.items():
        assert command.callback is not None
        assert command.callback.__module__ == f"podium.cli.{COMMANDS[name]}", name


def test_podium_runs_imports_neither_the_loader_nor_the_engine(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from podium.cli import main\n"
        "try:\n"
        f"    main(['runs', '--store', {str(tmp_path / 'none.db')!r}])\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = ('podium.load', 'podium.runtime.engine', 'podium.cli.run')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout + out.stderr
