"""Which store (and artifact store) a Python API call uses: ``StoreChoice``.

``store`` is a URL (or a path), an open ``Store``, or None; None is the store the command line
would use (``$PODIUM_STORE``, else the project's, found by ``podium.store.locate``), opened by
``podium.cli.stores.open_cli_store``, the one place that choice is made. Large results are read
from the artifact store ``podium run`` would use with that store (the folder beside a SQLite
database, or ``$PODIUM_ARTIFACTS``), unless ``artifacts`` names one.

Invariants: a store the caller opened is never closed here; one this module opened is closed
by the ``with`` that opened it; reading (``open(read_only=True)``) never creates a store; a
wrong argument is a one-line ``UsageError`` before anything is opened.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from podium.errors import UsageError

_STORE_METHODS = ("get_run", "list_runs", "events", "results", "create_run", "append")


class StoreChoice:
    """A ``store`` argument, checked; ``open()`` yields the store, ``artifacts()`` its artifacts."""

    def __init__(self, store: Any, artifacts: str | None = None) -> None:
        if isinstance(store, Path):
            store = os.fspath(store)
        if store is not None and not isinstance(store, str) and not _is_store(store):
            raise UsageError(
                f"store: expected a URL (e.g. 'memory:', 'runs.db', 'postgresql://...'), an open "
                f"Store or None, got {type(store).__name__}"
            )
        if artifacts is not None and not isinstance(artifacts, str | Path):
            raise UsageError(f"artifacts: expected a folder or an s3:// URL, got {type(artifacts).__name__}")
        self.given = store
        self.artifacts_url = os.fspath(artifacts) if artifacts is not None else None

    @property
    def url(self) -> str | None:
        """The store's URL: the one given, else the project's (None for an open store)."""
        if self.is_open:
            return None
        from podium.cli.stores import cli_store_url

        return cli_store_url(self.given)

    @property
    def is_open(self) -> bool:
        """True if the caller gave an open store."""
        return self.given is not None and not isinstance(self.given, str)

    @contextmanager
    def open(self, read_only: bool = False) -> Iterator[Any]:
        """The store; ``read_only``: one that does not exist yet is a ``NotFoundError`` naming
        where it was looked for (and none is created). A run not found names the store."""
        if self.is_open:
            yield self.given
            return
        from podium.cli.stores import name_the_store, open_cli_store
        from podium.errors import NotFoundError

        store = open_cli_store(self.given, read_only=read_only)
        try:
            yield store
        except NotFoundError as e:
            raise NotFoundError(name_the_store(str(e))) from None
        finally:
            store.close()

    def artifacts(self) -> Any:
        """The artifact store results of this store are kept in (None: all inline)."""
        from podium.store.artifact_url import open_artifacts

        url = self.url
        if url is None:  # an open store: the folder beside its database file, if it has one
            inner = getattr(self.given, "inner", self.given)
            path = getattr(inner, "path", None)
            url = path if isinstance(path, str) else "memory:"
        return open_artifacts(self.artifacts_url, url)


def _is_store(value: Any) -> bool:
    return all(callable(getattr(value, m, None)) for m in _STORE_METHODS)
