"""Fixtures for the store tests: one ``store`` fixture parametrised over every backend.

``memory`` and ``sqlite`` always run; ``postgres`` runs against ``$DATABASE_URL`` or a private
server started once per test run (see ``tests/pg.py``), with a fresh database per test.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

import pg
from podium.store import MemoryStore, SqliteStore, open_store
from podium.types import Store

BACKENDS = ["memory", "sqlite", "journal", pytest.param("postgres", marks=pytest.mark.postgres)]

#: Opens another store object on the same database (a second process would do the same).
Opener = Callable[[], Store]


def podium(
    *args: str, cwd: Path | None = None, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the ``podium`` CLI in a process of its own, as a user would (``env`` adds variables)."""
    return subprocess.run(
        [sys.executable, "-m", "podium", *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """Admin URL of a real PostgreSQL server for the whole test run."""
    with pg.server_url_or_skip() as url:
        yield url


@pytest.fixture
def pg_url(pg_server_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """URL of an empty database of its own for one test; its key file is in the test's folder
    (processes the test starts inherit the setting)."""
    monkeypatch.setenv("PODIUM_STORE_KEY_FILE", str(tmp_path / "pg.podium-key"))
    with pg.fresh_database(pg_server_url) as url:
        yield url


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def open_same(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    """A function opening a new store object on this test's database; all are closed after.

    For ``memory`` there is only one database per object, so it returns the same instance."""
    opened: list[Store] = []
    if backend == "memory":
        shared = MemoryStore()
        opened.append(shared)

        def open_memory() -> Store:
            return shared

        yield open_memory
    else:
        if backend == "sqlite":
            path = tmp_path / "store" / "podium.db"

            def open_sqlite() -> Store:
                s = SqliteStore(path)
                opened.append(s)
                return s

            yield open_sqlite
        elif backend == "journal":
            path = tmp_path / "store" / "podium.db"

            def open_journaled() -> Store:
                s = open_store(str(path))
                opened.append(s)
                return s

            yield open_journaled
        else:
            url = request.getfixturevalue("pg_url")
            from podium.store.postgres import PostgresStore

            def open_pg() -> Store:
                s = PostgresStore(url)
                opened.append(s)
                return s

            yield open_pg
    for s in opened:
        s.close()


@pytest.fixture
def store(open_same: Opener) -> Store:
    return open_same()
