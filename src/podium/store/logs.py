"""Task logs in a store (``store.logs``, a ``types.LogStore``): one row per (run, task,
attempt) holding that attempt's ``LogRecord``; ``MemoryLogs`` in memory, ``SqlLogs`` in the
``logs`` table of SQLite and PostgreSQL.

Every backend keeps the same row: ``text`` (at most ``LOG_LIMIT`` bytes, the last ones written),
``cut`` (bytes dropped before them) and ``marks`` (stream and time tags, as JSON). Writing a
record for an attempt that has one replaces it: a running attempt's log is written now and then
as it grows and once more when it ends, and the last write is the whole (bounded) log.

Reading is by bytes of the *shown* text (``LogRecord.shown``: the note about cut output, then
the text), so a reader can page through a log or follow it with ``offset = next_offset``.
``attempt=None`` reads the task's latest attempt that has a log. ``log_index`` lists a run's
logs in the order their attempts first wrote. Invariants: a log row never
exceeds ``LOG_LIMIT`` bytes of text plus its note, and its text went through ``redact`` (the
secrets this process revealed, URL passwords); this module imports only model and leaves.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from typing import Any

from podium.errors import InvalidValueError
from podium.model.logs import LOG_LIMIT, LogRecord
from podium.secrets import redact
from podium.store.statements import Statements

#: What a read returns: the text of the byte range asked for and the shown log's total bytes.
LogSlice = tuple[str, int]


def checked(logs: Sequence[LogRecord]) -> list[LogRecord]:
    """``logs`` as plain records, each within the bound (a longer text keeps its end)."""
    out = []
    for log in logs:
        # masked again here, in the orchestrator, which remembers every secret it revealed;
        # PostgreSQL text holds no NUL
        text, cut = redact(str(log.text)).replace("\x00", "\ufffd"), int(log.cut)
        raw = text.encode("utf-8", "replace")
        if len(raw) > LOG_LIMIT:
            cut += len(raw) - LOG_LIMIT
            text = raw[-LOG_LIMIT:].decode("utf-8", "ignore")
        if not isinstance(log.attempt, int) or log.attempt < 0:
            raise InvalidValueError(f"log of task {log.task_id!r}: bad attempt {log.attempt!r}")
        out.append(LogRecord(str(log.task_id), log.attempt, text, cut, tuple(log.marks)))
    return out


def marks_json(log: LogRecord) -> str:
    return json.dumps([list(m) for m in log.marks], separators=(",", ":"))


def marks_from_json(text: str | None) -> tuple[tuple[int, str, float], ...]:
    try:
        raw = json.loads(text or "[]")
        return tuple((int(o), str(s), float(t)) for o, s, t in raw)
    except (ValueError, TypeError):  # a row altered by hand: the text is still worth showing
        return ()


def read(
    log: LogRecord | None, offset: int = 0, limit: int | None = None, tail: int | None = None
) -> LogSlice:
    """Bytes ``[offset, offset+limit)`` of the shown log (or its last ``tail`` bytes) as text,
    and its size in bytes; ``("", 0)`` for no log. A range cutting a character in two leaves
    that character out."""
    if log is None:
        return "", 0
    raw = log.shown().encode("utf-8", "replace")
    size = len(raw)
    if tail is not None:
        start = max(0, size - max(0, tail))
        end = size if limit is None else min(size, start + max(0, limit))
    else:
        start = min(max(0, offset), size)
        end = size if limit is None else min(size, start + max(0, limit))
    return raw[start:end].decode("utf-8", "ignore"), size


class _Reader:
    """``read`` for a log store that can ``get`` a record."""

    def get(self, run_id: str, task_id: str, attempt: int | None = None) -> LogRecord | None:
        raise NotImplementedError

    def read(
        self,
        run_id: str,
        task_id: str,
        attempt: int | None = None,
        offset: int = 0,
        limit: int | None = None,
        tail: int | None = None,
    ) -> LogSlice:
        return read(self.get(run_id, task_id, attempt), offset, limit, tail)


class MemoryLogs(_Reader):
    """The log rows of a store that lives in memory (``MemoryStore``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rows: dict[tuple[str, str, int], LogRecord] = {}

    def write(self, run_id: str, logs: Sequence[LogRecord]) -> None:
        rows = checked(logs)
        with self._lock:
            for log in rows:
                self._rows[(run_id, log.task_id, log.attempt)] = log

    def get(self, run_id: str, task_id: str, attempt: int | None = None) -> LogRecord | None:
        with self._lock:
            if attempt is not None:
                return self._rows.get((run_id, task_id, attempt))
            found = [k for k in self._rows if k[0] == run_id and k[1] == task_id]
            return self._rows[max(found)] if found else None

    def index(self, run_id: str) -> list[tuple[str, int, int]]:
        with self._lock:
            rows = [
                (first_ts(log), t, a, shown_size(log)) for (r, t, a), log in self._rows.items() if r == run_id
            ]
        return [(t, a, n) for _, t, a, n in sorted(rows)]


def shown_size(log: LogRecord) -> int:
    return len(log.shown().encode("utf-8", "replace"))


def first_ts(log: LogRecord) -> float:
    """When the attempt first wrote (0 if its record has no marks): logs are listed in this order."""
    return log.marks[0][2] if log.marks else 0.0


Query = Callable[[str, str, Sequence[Any]], list[Any]]
WriteMany = Callable[[str, str, list[Sequence[Any]]], None]


class SqlLogs(_Reader):
    """The ``logs`` table of a SQL store, through the store's own ``query`` (one read in its
    own transaction) and ``write_many`` (one statement over many rows, one transaction)."""

    def __init__(self, sql: Statements, query: Query, write_many: WriteMany) -> None:
        self._sql, self._query, self._write_many = sql, query, write_many

    def write(self, run_id: str, logs: Sequence[LogRecord]) -> None:
        rows: list[Sequence[Any]] = [
            (
                run_id,
                log.task_id,
                log.attempt,
                log.text,
                log.cut,
                marks_json(log),
                shown_size(log),
                first_ts(log),
            )
            for log in checked(logs)
        ]
        if rows:
            self._write_many(f"writing logs of run {run_id!r}", self._sql.upsert_log, rows)

    def get(self, run_id: str, task_id: str, attempt: int | None = None) -> LogRecord | None:
        what = f"reading the log of task {task_id!r} of run {run_id!r}"
        if attempt is None:
            rows = self._query(what, self._sql.select_last_log, (run_id, task_id))
        else:
            rows = self._query(what, self._sql.select_log, (run_id, task_id, attempt))
        if not rows:
            return None
        task, att, text, cut, marks = rows[0]
        return LogRecord(str(task), int(att), str(text), int(cut), marks_from_json(marks))

    def index(self, run_id: str) -> list[tuple[str, int, int]]:
        rows = self._query(f"listing the logs of run {run_id!r}", self._sql.log_index, (run_id,))
        return [(str(t), int(a), int(n)) for t, a, n in rows]
