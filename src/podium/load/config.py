"""Project configuration: which Python modules specs may name as tasks.

Read from ``podium.toml`` (top-level ``allow_modules = [...]``, or a ``[podium]`` table) or
from ``[tool.podium]`` in ``pyproject.toml``, in the directory given (the current directory
for the CLI). Invariants: only this configuration or an explicit ``--allow-module`` can allow
a module; a spec can never allow one itself. A malformed file is a ``SpecError`` naming it.

``allow_images = [...]`` lists the container images specs may run, like modules (and
``--allow-image``): a spec can never allow an image itself.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from podium.errors import Problem, SpecError

CONFIG_KEYS = ("allow_modules", "allow_images")


@dataclass(frozen=True, slots=True)
class Config:
    allow_modules: tuple[str, ...] = ()
    path: str | None = None
    allow_images: tuple[str, ...] = ()


def load_config(cwd: str | Path | None = None) -> Config:
    """The configuration found in ``cwd`` (``podium.toml`` first, then ``pyproject.toml``)."""
    base = Path(cwd) if cwd is not None else Path.cwd()
    own, pyproject = base / "podium.toml", base / "pyproject.toml"
    if own.is_file():
        data = _read(own)
        table = data.get("podium", data) if isinstance(data.get("podium"), dict) else data
        return _config(table, own, "")
    if pyproject.is_file():
        data = _read(pyproject)
        tool = data.get("tool", {})
        table = tool.get("podium") if isinstance(tool, dict) else None
        if isinstance(table, dict):
            return _config(table, pyproject, "tool.podium.")
    return Config()


def _read(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise SpecError(f"{path.name}: cannot be read as TOML: {e}") from None
    except OSError as e:
        raise SpecError(f"{path.name}: cannot be read: {e.strerror}") from None


def _config(table: dict[str, Any], path: Path, prefix: str) -> Config:
    problems = []
    mods = table.get("allow_modules", [])
    if not isinstance(mods, list) or not all(isinstance(m, str) and m.strip() for m in mods):
        problems.append(Problem(f"{path.name}: {prefix}allow_modules", "expected a list of module names"))
        mods = []
    images = table.get("allow_images", [])
    if not isinstance(images, list) or not all(isinstance(m, str) and m.strip() for m in images):
        problems.append(Problem(f"{path.name}: {prefix}allow_images", "expected a list of image names"))
        images = []
    if problems:
        raise SpecError(problems)
    return Config(
        allow_modules=tuple(m.strip() for m in mods),
        path=str(path),
        allow_images=tuple(m.strip() for m in images),
    )
