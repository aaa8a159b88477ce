"""The project a command works in: the nearest folder up that the user can trust.

``find_project(start)`` walks from ``start`` up to its parents, like git looks for ``.git``,
to the first folder holding ``podium.toml`` or ``.podium/`` (the *markers*). That folder is the
project root: the store is found there (``podium.store.locate``) and so are the project's
settings (``podium.load.config``). There is one walk; both ask this module.

A ``podium.toml`` grants programs, modules and hosts to specs, so a marker counts only where
nobody but the user could have put it (``trust_problem``): the marker and the folder holding it
are owned by the user (or by root, who can do anything to the user anyway) and neither is
writable by everyone (``/tmp`` is). A marker that fails is skipped with one warning on stderr
naming it and why, and the walk goes on up. The walk stops after the user's home folder (a
start inside it never looks above it) and at a filesystem boundary (as git does).

Invariants: finding reads metadata only (never opens, creates or writes a file); the same
folder is warned about at most once per process; where ownership means nothing (no
``os.geteuid``), every marker is trusted.
"""

from __future__ import annotations

import os
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

#: What marks a folder as a project's: its settings file or its store folder.
MARKERS = ("podium.toml", ".podium")

_warned: set[Path] = set()


@dataclass(frozen=True)
class Project:
    """Where the walk from a folder ended: the project ``root`` (None if no trusted marker
    was found), the folders it ``looked_in`` in order, and the markers it ``ignored`` with
    the reason each was not trusted."""

    root: Path | None
    looked_in: tuple[Path, ...]
    ignored: tuple[tuple[Path, str], ...] = ()


def trust_problem(path: Path) -> str | None:
    """Why ``path`` (a marker or a settings file) and its folder cannot be trusted to grant
    anything, or None if they can."""
    if not hasattr(os, "geteuid"):
        return None
    me = os.geteuid()
    for p in (path, path.parent):
        try:
            st = p.stat()
        except OSError as e:
            return f"cannot be checked: {e.strerror}"
        what = "its folder" if p is not path else "it"
        if st.st_uid not in (me, 0):
            return f"{what} is owned by uid {st.st_uid}, not by you (uid {me}) or root"
        if st.st_mode & stat.S_IWOTH:
            return f"{what} is writable by everyone"
    return None


def find_project(start: Path | None = None) -> Project:
    """The project of ``start`` (default: the current folder); see the module docstring."""
    here = (start or Path.cwd()).resolve()
    home = _home()
    ceiling = home if home is not None and here.is_relative_to(home) else None
    device = _device(here)
    looked: list[Path] = []
    ignored: list[tuple[Path, str]] = []
    for folder in (here, *here.parents):
        if folder != here and device is not None and _device(folder) != device:
            break
        looked.append(folder)
        for name in MARKERS:
            marker = folder / name
            if not (marker.is_file() if name == "podium.toml" else marker.is_dir()):
                continue
            problem = trust_problem(marker)
            if problem is None:
                return Project(folder, tuple(looked), tuple(ignored))
            ignored.append((marker, problem))
            warn_ignored(marker, problem)
        if folder == ceiling:
            break
    return Project(None, tuple(looked), tuple(ignored))


def warn_ignored(path: Path, problem: str) -> None:
    """Say once per process that ``path`` is ignored and why."""
    if path in _warned:
        return
    _warned.add(path)
    sys.stderr.write(f"podium: warning: ignoring {path}: {problem}\n")
    sys.stderr.flush()


def _home() -> Path | None:
    try:
        return Path.home().resolve()
    except (RuntimeError, KeyError, OSError):
        return None


def _device(folder: Path) -> int | None:
    try:
        return folder.stat().st_dev
    except OSError:
        return None
