"""The ``podium`` command run in the test's own process, from a given folder (tests only)."""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path
from typing import Any

from podium.cli import main


def cli(args: list[str], cwd: Path) -> tuple[int, str, str]:
    """``podium ARGS`` in this process, from ``cwd``: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    code: Any = 0
    old = Path.cwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main(args)
            except SystemExit as e:
                code = e.code
    finally:
        os.chdir(old)
    return int(code or 0), out.getvalue(), err.getvalue()
