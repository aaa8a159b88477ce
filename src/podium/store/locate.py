"""Where the project's store is: found like git finds ``.git``.

``locate(url)``: an explicit URL (``--store``) wins, then ``$PODIUM_STORE``; else the project
root ``podium.project.find_project`` finds (the nearest trusted folder up holding
``podium.toml`` or ``.podium/``, the same root the project's settings are read from) and
``.podium/podium.db`` there; with no such folder, ``.podium/podium.db`` in the current folder.
``Located`` says which store that is, how it was chosen, where the search looked and, for a
SQLite file, its path (so a read-only command can tell that it does not exist yet without
creating it).

Invariants: locating never creates, opens or writes anything; a relative SQLite path (a plain
path, ``sqlite:///rel.db``) is relative to the current folder, ``sqlite:////abs.db`` absolute.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from podium.project import find_project

#: Environment variable naming the store (after ``--store``, before the search).
STORE_ENV = "PODIUM_STORE"
#: The store's place under the project's folder.
STORE_PATH = Path(".podium") / "podium.db"


@dataclass(frozen=True)
class Located:
    """A store chosen for a command: its ``url``, how it was chosen (``origin``: ``--store``,
    ``PODIUM_STORE``, ``found`` or ``default``), the folders the search ``looked_in`` (empty
    when a URL was given) and its SQLite ``path`` (None for ``memory:`` and PostgreSQL)."""

    url: str
    origin: str
    looked_in: tuple[Path, ...] = ()
    path: Path | None = None

    @property
    def shown(self) -> str:
        """The store as messages show it: its file, else its URL without a password."""
        if self.path is not None:
            return str(self.path)
        from podium.store.codec import redact

        return redact(self.url)

    def exists(self) -> bool:
        """Whether there is a store to read: the SQLite file exists (``memory:`` and server
        databases are taken as existing: only opening them tells)."""
        return self.path is None or self.path.is_file()


def project_folder(start: Path) -> tuple[Path | None, tuple[Path, ...]]:
    """The project root of ``start`` (``podium.project.find_project``; None if there is none)
    and the folders looked in, in order."""
    found = find_project(start)
    return found.root, found.looked_in


def locate(url: str | None = None, cwd: Path | None = None, env: Mapping[str, str] | None = None) -> Located:
    """The store a command uses (see the module docstring)."""
    here = (cwd or Path.cwd()).resolve()
    given = (url or "").strip()
    if given:
        return Located(given, "--store", (), sqlite_path(given, here))
    named = (os.environ if env is None else env).get(STORE_ENV, "").strip()
    if named:
        return Located(named, STORE_ENV, (), sqlite_path(named, here))
    root, looked = project_folder(here)
    path = (root or here) / STORE_PATH
    return Located(f"sqlite:///{path.as_posix()}", "found" if root else "default", looked, path)


def sqlite_path(url: str, cwd: Path) -> Path | None:
    """The database file a store URL names (absolute), or None for ``memory:``, a server
    database or an in-memory SQLite database."""
    url = url.strip()
    if url in ("memory:", "memory://"):
        return None
    if "://" not in url:
        return None if url == ":memory:" else cwd / url
    if not url.lower().startswith("sqlite://"):
        return None
    path = urlsplit(url).path
    path = path[1:] if path.startswith("/") else path
    if not path or path == ":memory:" or path.startswith("file:"):
        return None
    return cwd / path
