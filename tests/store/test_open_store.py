"""Choosing a backend from a URL, and the default store location."""

from __future__ import annotations

from pathlib import Path

import pytest

from podium.errors import UsageError
from podium.store import MemoryStore, SqliteStore, default_store_url, open_store
from podium.store.journal import JournaledStore


def test_memory_url() -> None:
    assert isinstance(open_store("memory:"), MemoryStore)


def test_plain_path_is_sqlite_and_creates_dirs(tmp_path: Path) -> None:
    s = open_store(str(tmp_path / "x" / "p.db"))
    assert isinstance(s, JournaledStore) and isinstance(s.inner, SqliteStore)
    assert (tmp_path / "x" / "p.db").exists()
    s.close()


def test_sqlite_url_three_slashes_is_relative(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    s = open_store("sqlite:///sub/rel.db")
    s.close()
    assert (tmp_path / "sub" / "rel.db").exists()


def test_sqlite_url_four_slashes_is_absolute(tmp_path: Path) -> None:
    s = open_store(f"sqlite:///{(tmp_path / 'abs.db').as_posix()}")
    s.close()
    assert (tmp_path / "abs.db").exists()


def test_sqlite_url_options(tmp_path: Path) -> None:
    s = open_store(f"sqlite:///{tmp_path.as_posix()}/p.db?synchronous=FULL")
    assert isinstance(s, JournaledStore) and isinstance(s.inner, SqliteStore)
    assert s.inner.synchronous == "FULL"
    assert (tmp_path / "p.db.podium-journal").is_dir()
    s.close()
    bare = open_store(f"sqlite:///{tmp_path.as_posix()}/p.db?journal=off")
    assert isinstance(bare, SqliteStore)
    bare.close()
    with pytest.raises(UsageError, match="unknown option"):
        open_store(f"sqlite:///{tmp_path.as_posix()}/p.db?jornal=off")
    with pytest.raises(UsageError, match="journal must be"):
        open_store(f"sqlite:///{tmp_path.as_posix()}/p.db?journal=maybe")


@pytest.mark.parametrize(
    "url", ["mysql://u:secret@h/db", "redis://h", "sqlite://host/x.db", "sqlite://", "  "]
)
def test_unsupported_urls_are_one_line_usage_errors(url: str) -> None:
    with pytest.raises(UsageError) as info:
        open_store(url)
    message = str(info.value)
    assert "\n" not in message and "secret" not in message


def test_default_store_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PODIUM_STORE", raising=False)
    url = default_store_url()
    assert url == f"sqlite:///{(tmp_path / '.podium' / 'podium.db').as_posix()}"
    s = open_store(url)
    s.close()
    assert (tmp_path / ".podium" / "podium.db").exists()
    monkeypatch.setenv("PODIUM_STORE", "memory:")
    assert default_store_url() == "memory:"


@pytest.mark.postgres
def test_postgresql_url_opens_postgres_store(pg_url: str) -> None:
    from podium.store.postgres import PostgresStore

    s = open_store(pg_url)
    assert isinstance(s, PostgresStore)
    s.close()


def test_unreachable_postgres_is_a_store_error_without_password() -> None:
    pytest.importorskip("psycopg")
    from podium.errors import StoreError

    with pytest.raises(StoreError) as info:
        open_store("postgresql://u:hunter2@127.0.0.1:1/db?connect_timeout=2")
    assert "hunter2" not in str(info.value) and "***" in str(info.value)
