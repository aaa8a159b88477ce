"""The store layer: the durable event log, results, cache and run history behind ``Store``.

Invariants: ``open_store(url)`` is the one way the edges pick a backend from a URL;
``memory:`` is process-local, a file path or ``sqlite:///path.db`` is the embedded default, and
``postgresql://`` needs the ``postgres`` extra (psycopg is imported only when such a URL is
opened). Every backend passes the same conformance suite. This package imports only the model
and the leaves.

A SQLite file opened by URL or path is wrapped in a ``JournaledStore`` (journal directory
beside the database, ``<file>.podium-journal``): appends become durable with one memory copy
and reach SQLite in group commits. ``?journal=off`` opens the bare ``SqliteStore``, where every
append is its own SQLite transaction.

Nothing the store reads back runs code: events, runs and journal records are JSON and plain
binary, never pickles; results (pickled user values) are handed back only under a valid tag made
with the store's secret key (``keys``). The layout on disk and the threat model: docs/store.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlsplit

from podium.errors import UsageError
from podium.store.codec import redact
from podium.store.locate import STORE_ENV, STORE_PATH, locate
from podium.store.memory import MemoryStore
from podium.store.sqlite import SqliteStore

if TYPE_CHECKING:
    from podium.types import Store

__all__ = [
    "DEFAULT_STORE_PATH",
    "STORE_ENV",
    "MemoryStore",
    "SqliteStore",
    "default_store_url",
    "open_store",
]

#: Where a project keeps its store, relative to its folder (``store.locate`` finds that folder).
DEFAULT_STORE_PATH = STORE_PATH

_HINT = "use memory:, a file path, sqlite:///relative.db, sqlite:////absolute.db or postgresql://..."


def default_store_url() -> str:
    """``$PODIUM_STORE`` if set, else the project's SQLite file ``.podium/podium.db``: in the
    nearest folder up from the current one holding ``podium.toml`` or ``.podium/``, else in the
    current folder (``podium.store.locate``)."""
    return locate().url


def open_store(url: str) -> Store:
    """Open the store named by ``url``: ``memory:``; a file path or ``sqlite:///relative.db`` /
    ``sqlite:////absolute.db`` (optionally ``?synchronous=FULL``); ``postgresql://...``.
    Anything else is a ``UsageError`` with a one-line message."""
    url = url.strip()
    if not url:
        raise UsageError(f"empty store URL: {_HINT}")
    if url in ("memory:", "memory://"):
        return MemoryStore()
    if "://" not in url:
        return journaled(SqliteStore(url), url)
    scheme = url.split("://", 1)[0].lower()
    if scheme in ("postgresql", "postgres"):
        from podium.store.postgres import PostgresStore

        return PostgresStore(url)
    if scheme == "sqlite":
        return _open_sqlite(url)
    raise UsageError(f"unsupported store URL {redact(url)!r}: {_HINT}")


def _open_sqlite(url: str) -> Store:
    parts = urlsplit(url)
    if parts.netloc:
        raise UsageError(f"store URL {url!r}: a sqlite URL has no host; {_HINT}")
    path = parts.path[1:] if parts.path.startswith("/") else parts.path
    if not path:
        raise UsageError(f"store URL {url!r} names no database file; {_HINT}")
    options = dict(parse_qsl(parts.query, keep_blank_values=True))
    unknown = sorted(set(options) - {"synchronous", "journal"})
    if unknown:
        raise UsageError(
            f"store URL {url!r}: unknown option(s) {', '.join(unknown)}; known: synchronous, journal"
        )
    journal = options.get("journal", "on")
    if journal not in ("on", "off"):
        raise UsageError(f"store URL {url!r}: journal must be 'on' or 'off', not {journal!r}")
    store = SqliteStore(path, synchronous=options.get("synchronous", "NORMAL"))
    return journaled(store, path) if journal == "on" else store


def journaled(store: SqliteStore, path: str) -> Store:
    """``store`` behind a journal kept beside its database file (none for ``:memory:``)."""
    if path == ":memory:" or path.startswith("file:"):
        return store
    from podium.store.journal import JournaledStore

    try:
        return JournaledStore(store, f"{path}.podium-journal")
    except BaseException:
        store.close()
        raise
