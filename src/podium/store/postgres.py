"""PostgresStore: the ``Store`` Protocol on PostgreSQL, for shared and multi-host deployments (the
PostgreSQL dialect of ``SqlStore``).

Invariants:
- psycopg 3 is imported only when a ``PostgresStore`` is created (the ``postgres`` extra).
- Autocommit is off; a transaction's statements go in one pipeline (one round trip). A broken
  connection fails one call with a (retryable) ``StoreError`` and is replaced on the next call.
- The key that tags results never lives in the database (whoever can write the database could
  read it there): it is the file named by ``$PODIUM_STORE_KEY_FILE``, else
  ``~/.config/podium/keys/postgresql-<host>-<port>-<database>.key`` (``$XDG_CONFIG_HOME``
  honoured), made 0600 on first use. Every host writing one database needs the same key file;
  once the database has recorded a key, a host without it is refused with a message saying so
  (it is never replaced silently, which would lock the other hosts out).
- The schema has the same shape as SQLite's (see ``migrations.py``).
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from podium.errors import StoreError, UsageError
from podium.store import codec
from podium.store.migrations import apply_postgres
from podium.store.sql import SqlStore
from podium.store.statements import Statements

#: Environment variable naming the key file of PostgreSQL stores.
KEY_ENV = "PODIUM_STORE_KEY_FILE"
_UNIQUE_PREFIXES = ("events", "results", "runs")


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError:
        raise UsageError("a postgresql:// store needs psycopg 3: pip install 'podium[postgres]'") from None
    return psycopg


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def key_file(host: str, port: int | str, dbname: str) -> Path:
    """Where the key of the database ``dbname`` on ``host:port`` is kept (see the module doc)."""
    named = os.environ.get(KEY_ENV, "").strip()
    if named:
        return Path(named)
    config = os.environ.get("XDG_CONFIG_HOME", "").strip() or str(Path.home() / ".config")
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{host}-{port}-{dbname}").strip("_")
    return Path(config) / "podium" / "keys" / f"postgresql-{slug}.key"


class PostgresStore(SqlStore):
    """The ``Store`` Protocol on a PostgreSQL database named by a ``postgresql://`` URL."""

    SQL = Statements.spelled("%s")
    _key_hint = f"${KEY_ENV} to its path"

    def __init__(
        self, url: str, *, connect_timeout: int = 10, key: str | os.PathLike[str] | None = None
    ) -> None:
        self._pg = _psycopg()
        super().__init__()
        self.url = url
        self._label = f"PostgreSQL store {codec.redact(url)}"
        self._errors = (self._pg.Error,)
        self._connect_timeout = connect_timeout
        self._conn: Any = self._connect()
        info = self._conn.info
        try:
            self._load_signer(Path(key) if key is not None else key_file(info.host, info.port, info.dbname))
        except BaseException:
            self._closed = True
            self._close_connection()
            raise

    def __repr__(self) -> str:
        return f"PostgresStore({codec.redact(self.url)!r})"

    def _connect(self) -> Any:
        pg = self._pg
        try:
            conn = pg.connect(self.url, autocommit=False, connect_timeout=self._connect_timeout)
        except pg.Error as e:
            raise StoreError(
                f"cannot connect to PostgreSQL at {codec.redact(self.url)}: {_first_line(e)}"
            ) from None
        try:
            apply_postgres(conn)
        except pg.Error as e:
            conn.close()
            raise StoreError(
                f"cannot migrate PostgreSQL store {codec.redact(self.url)}: {_first_line(e)}"
            ) from None
        return conn

    # -- dialect hooks ----------------------------------------------------------------------
    def _connection(self) -> Any:
        """The live connection; reconnects if the previous one broke. Caller holds the lock."""
        if self._closed:
            raise StoreError(f"{self._label} is closed")
        if self._conn is None or self._conn.closed or self._conn.broken:
            if self._conn is not None:
                self._conn.close()
            self._conn = None
            self._conn = self._connect()
        return self._conn

    def _rollback(self, conn: Any) -> None:
        with contextlib.suppress(Exception):
            if not conn.closed:
                conn.rollback()

    def _batch(self, conn: Any) -> contextlib.AbstractContextManager[Any]:
        return conn.pipeline()  # type: ignore[no-any-return]

    def _many(self, conn: Any, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with conn.cursor() as cur:
            cur.executemany(sql, rows)

    def _unique_table(self, err: BaseException) -> str | None:
        if not isinstance(err, self._pg.errors.UniqueViolation):
            return None
        constraint = getattr(getattr(err, "diag", None), "constraint_name", "") or ""
        return next((t for t in _UNIQUE_PREFIXES if constraint.startswith(t)), None)

    def _close_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
