"""The server's own durable records, in a small SQLite file of its own (mode 0600).

Kept apart from the run store on purpose: the store belongs to the engine, and what the server
remembers is its own business: the runs its workers started (so a restarted server can adopt
or resume them), the schedule slots it fired (so no slot fires twice, even across restarts),
how far each schedule has been considered, and the notifications it sent. Invariants: a slot
is claimed by one ``INSERT`` that either adds it or finds it there (``claim_slot``), so two
claims of one slot cannot both succeed; every write is its own transaction.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS launched (
    run_id TEXT PRIMARY KEY, workflow TEXT NOT NULL, pid INTEGER, pid_started REAL,
    launched_at REAL NOT NULL, log_path TEXT NOT NULL, exit_code INTEGER, restarts INTEGER NOT NULL DEFAULT 0,
    note TEXT, done INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS fired (
    key TEXT NOT NULL, slot REAL NOT NULL, run_id TEXT, fired_at REAL NOT NULL, PRIMARY KEY (key, slot)
);
CREATE TABLE IF NOT EXISTS cursors (key TEXT PRIMARY KEY, until REAL NOT NULL);
CREATE TABLE IF NOT EXISTS notified (
    run_id TEXT NOT NULL, status TEXT NOT NULL, url TEXT NOT NULL, sent_at REAL NOT NULL, ok INTEGER,
    PRIMARY KEY (run_id, status, url)
);
"""


@dataclass(frozen=True)
class Launch:
    run_id: str
    workflow: str
    pid: int | None
    pid_started: float | None
    launched_at: float
    log_path: str
    exit_code: int | None
    restarts: int
    note: str | None
    done: bool


class ServerState:
    """The server's records in ``path`` (created 0600 on first use)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():
            os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.executescript(_SCHEMA)

    def _exec(self, sql: str, params: tuple[Any, ...] = ()) -> sqlite3.Cursor:
        with self._lock:
            return self._conn.execute(sql, params)

    def _rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    # -- runs the server's workers started -------------------------------------------------
    def record_launch(self, run_id: str, workflow: str, log_path: str) -> None:
        self._exec(
            "INSERT INTO launched (run_id, workflow, launched_at, log_path) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (run_id) DO UPDATE SET done = 0, exit_code = NULL, note = NULL",
            (run_id, workflow, time.time(), log_path),
        )

    def set_worker(self, run_id: str, pid: int, pid_started: float) -> None:
        self._exec(
            "UPDATE launched SET pid = ?, pid_started = ? WHERE run_id = ?", (pid, pid_started, run_id)
        )

    def count_restart(self, run_id: str) -> None:
        self._exec("UPDATE launched SET restarts = restarts + 1 WHERE run_id = ?", (run_id,))

    def finish(self, run_id: str, exit_code: int | None, note: str | None = None) -> None:
        self._exec(
            "UPDATE launched SET exit_code = ?, note = ?, done = 1 WHERE run_id = ?",
            (exit_code, note, run_id),
        )

    def launch(self, run_id: str) -> Launch | None:
        rows = self._rows(f"SELECT {_COLS} FROM launched WHERE run_id = ?", (run_id,))
        return _launch(rows[0]) if rows else None

    def unfinished(self) -> list[Launch]:
        rows = self._rows(f"SELECT {_COLS} FROM launched WHERE done = 0 ORDER BY launched_at")
        return [_launch(r) for r in rows]

    # -- schedules -------------------------------------------------------------------------
    def claim_slot(self, key: str, slot: float, now: float) -> bool:
        """Claim one slot of a schedule; False if it was claimed before (by anyone, ever)."""
        cur = self._exec(
            "INSERT OR IGNORE INTO fired (key, slot, fired_at) VALUES (?, ?, ?)", (key, slot, now)
        )
        return cur.rowcount == 1

    def slot_run(self, key: str, slot: float, outcome: str) -> None:
        """What a claimed slot started: its run id, or ``error: ...``."""
        self._exec("UPDATE fired SET run_id = ? WHERE key = ? AND slot = ?", (outcome, key, slot))

    def fired(self, key: str) -> list[tuple[float, str | None]]:
        return [
            (r[0], r[1])
            for r in self._rows("SELECT slot, run_id FROM fired WHERE key = ? ORDER BY slot", (key,))
        ]

    def cursor(self, key: str) -> float | None:
        rows = self._rows("SELECT until FROM cursors WHERE key = ?", (key,))
        return rows[0][0] if rows else None

    def set_cursor(self, key: str, until: float) -> None:
        self._exec(
            "INSERT INTO cursors (key, until) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET until = "
            "MAX(until, excluded.until)",
            (key, until),
        )

    # -- notifications ---------------------------------------------------------------------
    def claim_notification(self, run_id: str, status: str, url: str, now: float) -> bool:
        cur = self._exec(
            "INSERT OR IGNORE INTO notified (run_id, status, url, sent_at) VALUES (?, ?, ?, ?)",
            (run_id, status, url, now),
        )
        return cur.rowcount == 1

    def notification_sent(self, run_id: str, status: str, url: str, ok: bool) -> None:
        self._exec(
            "UPDATE notified SET ok = ? WHERE run_id = ? AND status = ? AND url = ?",
            (int(ok), run_id, status, url),
        )

    def notifications(self) -> list[tuple[str, str, str, int | None]]:
        return [tuple(r) for r in self._rows("SELECT run_id, status, url, ok FROM notified ORDER BY sent_at")]

    def close(self) -> None:
        with self._lock:
            self._conn.close()


_COLS = "run_id, workflow, pid, pid_started, launched_at, log_path, exit_code, restarts, note, done"


def _launch(row: tuple[Any, ...]) -> Launch:
    """A ``launched`` row read with ``_COLS`` (``done`` is stored as 0 or 1)."""
    fields = (*row[:-1], bool(row[-1]))
    return Launch(*fields)
