"""SqliteStore: the default, zero-infrastructure ``Store`` on one SQLite file (the SQLite dialect
of ``SqlStore``).

Invariants:
- A write transaction is ``BEGIN IMMEDIATE ... COMMIT``, so a second writer waits for the lock
  (``busy_timeout``) instead of failing; the journal is WAL, so readers in other processes
  (``podium runs`` during a run) never block the writer.
- A new database file appears whole: it is made and migrated under a temporary name, mode 0600,
  and linked into place (of two processes creating it at once, one wins). So an existing empty
  (0-byte) file was not made by Podium (a failed copy, a truncation): it is refused, never taken
  for a new store. The connection opens the file read-write without creating it.
- An existing file is checked before anything is written to it: one that is not SQLite, or a
  SQLite database without Podium's ``schema_migrations`` (another application's), is refused
  with a one-line ``UsageError``, its bytes and mode left as found.
- The database, its ``-wal``/``-shm`` files and its key (``<file>.podium-key``) are 0600, the
  directories the store creates (and a ``.podium`` directory) 0700, whatever the umask.
- Many rows go in as a few multi-row INSERTs; the WAL is checkpointed every
  ``CHECKPOINT_PAGES`` pages and on ``close``, not every 1,000 pages (SQLite's default), since a
  checkpoint syncs the database file.

Durability trade-off: the default ``synchronous="NORMAL"`` in WAL mode never corrupts the
database and loses nothing when a *process* crashes or is killed (a committed append is in the
WAL file, which the OS holds); after a *power loss or OS crash* the last few transactions
before the failure may be rolled back (the file stays consistent, the run resumes from a
slightly earlier prefix of its log). ``SqliteStore(path, synchronous="FULL")`` fsyncs the WAL on
every commit and keeps them too, at a large cost per append on most disks.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
from collections.abc import Sequence
from itertools import chain
from pathlib import Path
from typing import Any
from urllib.parse import quote

from podium.errors import StoreError, UsageError
from podium.store.files import create_private, narrow, private_dir
from podium.store.migrations import apply_sqlite
from podium.store.sql import SqlStore
from podium.store.statements import Statements

SYNCHRONOUS_MODES = ("NORMAL", "FULL", "EXTRA")
#: WAL pages between automatic checkpoints (4 KiB pages: 64 MiB).
CHECKPOINT_PAGES = 16384
#: The key file of a database file ``X`` is ``X`` + this.
KEY_SUFFIX = ".podium-key"
_UNIQUE_TABLES = frozenset({"events", "results", "runs"})
#: The first 16 bytes of every SQLite 3 database file.
_SQLITE_MAGIC = b"SQLite format 3\x00"


class SqliteStore(SqlStore):
    """The ``Store`` Protocol on a SQLite database file (or ``":memory:"``)."""

    SQL = Statements.spelled("?")
    _errors = (sqlite3.Error,)
    _may_replace_key = True  # the key lives beside the file: a lost one can only be replaced

    def __init__(
        self, path: str | os.PathLike[str], *, synchronous: str = "NORMAL", busy_timeout: float = 30.0
    ) -> None:
        sync = synchronous.upper()
        if sync not in SYNCHRONOUS_MODES:
            raise UsageError(
                f"sqlite synchronous={synchronous!r}: expected one of {', '.join(SYNCHRONOUS_MODES)}"
            )
        super().__init__()
        self.path = os.fspath(path)
        self.synchronous = sync
        self._label = f"sqlite store {self.path!r}"
        self._conn: sqlite3.Connection | None = None
        on_disk = self.path != ":memory:" and not self.path.startswith("file:")
        try:
            target = self.path
            if on_disk:
                _prepare(Path(self.path), self._label)
                target = "file:" + quote(os.path.abspath(self.path)) + "?mode=rw"  # never creates it
            conn = sqlite3.connect(
                target,
                timeout=busy_timeout,
                isolation_level=None,  # we issue BEGIN/COMMIT ourselves
                check_same_thread=False,
                cached_statements=64,
                uri=on_disk or self.path.startswith("file:"),
            )
        except (OSError, sqlite3.Error) as e:
            raise StoreError(f"cannot open sqlite store {self.path!r}: {e}") from None
        try:
            if on_disk:
                _check_identity(conn, self._label)  # before anything is written to the file
                narrow(Path(self.path))
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={sync}")
            conn.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
            conn.execute(f"PRAGMA wal_autocheckpoint={CHECKPOINT_PAGES}")
            apply_sqlite(conn)
        except sqlite3.Error as e:
            conn.close()
            raise StoreError(f"cannot open sqlite store {self.path!r}: {e}") from None
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        if on_disk:
            for suffix in ("-wal", "-shm"):  # made by an older version, or by SQLite before our file
                narrow(Path(self.path + suffix))
            try:
                self._load_signer(Path(self.path + KEY_SUFFIX))
            except BaseException:
                self._closed = True
                self._close_connection()
                raise

    def __repr__(self) -> str:
        return f"SqliteStore({self.path!r}, synchronous={self.synchronous!r})"

    # -- dialect hooks ----------------------------------------------------------------------
    def _connection(self) -> sqlite3.Connection:
        if self._conn is None or self._closed:
            raise StoreError(f"sqlite store {self.path!r} is closed")
        return self._conn

    def _begin(self, conn: Any) -> None:
        conn.execute("BEGIN IMMEDIATE")

    def _commit(self, conn: Any) -> None:
        if conn.in_transaction:
            conn.execute("COMMIT")

    def _rollback(self, conn: Any) -> None:
        if conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")

    def _many(self, conn: Any, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if sql.startswith("INSERT"):
            _insert_many(conn, sql, len(rows[0]), rows)
        else:
            conn.executemany(sql, rows)

    def _unique_table(self, err: BaseException) -> str | None:
        # "UNIQUE constraint failed: events.run_id, events.seq"
        if isinstance(err, sqlite3.IntegrityError) and "UNIQUE" in str(err):
            table = str(err).partition(": ")[2].partition(".")[0]
            return table if table in _UNIQUE_TABLES else None
        return None

    def _close_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            conn.close()


def _prepare(path: Path, label: str) -> None:
    """Make sure ``path`` may be a Podium database file: create it whole if it does not exist,
    refuse an empty one or one that is not SQLite (narrowing ``.podium`` directories on the way)."""
    private_dir(path.parent)
    if not path.exists():
        create_private(path, _new_database)
    st = path.stat()
    if not stat.S_ISREG(st.st_mode):
        raise StoreError(f"cannot open {label}: not a regular file")
    if st.st_size == 0:
        raise UsageError(
            f"{label} is an empty file (0 bytes), not a Podium store (a failed copy or a truncation?): "
            "restore it from a backup, or delete it to start a new store"
        )
    with open(path, "rb") as f:
        head = f.read(len(_SQLITE_MAGIC))
    if head != _SQLITE_MAGIC:
        raise UsageError(
            f"{label} is not a SQLite database (it does not start with the SQLite header), "
            "not a Podium store: check the --store path"
        )


def _check_identity(conn: sqlite3.Connection, label: str) -> None:
    """Refuse a SQLite database that Podium did not make (it lacks ``schema_migrations``): its
    schema would otherwise be added to another application's file."""
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    except sqlite3.DatabaseError as e:
        raise UsageError(f"{label} is not a readable SQLite database ({e}), not a Podium store") from None
    if "schema_migrations" not in tables:
        shown = ", ".join(sorted(tables)[:5]) + (", ..." if len(tables) > 5 else "")
        what = "an empty SQLite database"
        if tables:
            what = f"the database of another application (tables: {shown})"
        raise UsageError(f"{label} is {what}, not a Podium store: check the --store path")


def _new_database(path: Path) -> None:
    """Give the empty file ``path`` the store's schema (WAL mode is recorded in the file)."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        apply_sqlite(conn)
    finally:
        conn.close()


#: Rows per multi-row INSERT: chunks of 128, 64, ..., 1 keep few distinct statements (the
#: statement cache holds them all) and stay under SQLite's oldest limit of 999 variables.
_CHUNKS = (128, 64, 32, 16, 8, 4, 2, 1)
_MULTI: dict[tuple[str, int], str] = {}
_chain = chain.from_iterable


def _insert_many(conn: sqlite3.Connection, sql: str, width: int, rows: Sequence[Sequence[Any]]) -> None:
    """``executemany(sql, rows)`` as a few multi-row INSERTs: one statement step per chunk
    instead of one per row (SQLite does the same work; Python and the step calls cost less)."""
    n, i = len(rows), 0
    for size in _CHUNKS:
        while n - i >= size:
            text = _MULTI.get((sql, size))
            if text is None:
                one = "(" + ", ".join("?" * width) + ")"
                text = _MULTI[(sql, size)] = sql.replace(
                    f" VALUES {one}", " VALUES " + ", ".join([one] * size)
                )
            conn.execute(text, list(_chain(rows[i : i + size])))
            i += size
