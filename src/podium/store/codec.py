"""Turning events, runs and history into rows and back: the one codec every backend shares.

Invariants:
- Event ``data`` and run ``params``/``source`` are stored as compact JSON text; what a store
  hands back is what a JSON round trip gives (tuples come back as lists), the same for every
  backend, so the in-memory store behaves like the durable ones.
- A value that is not JSON-serialisable is rejected with a ``UsageError`` naming the event,
  before anything is written.
- History rows are derived from ``TaskSucceeded`` events carrying a numeric ``data["duration"]``;
  the task name is the task id without its trailing map index (``train[3]`` -> ``train``).
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from podium.errors import UsageError
from podium.model.events import DROPS_RESULT, TASK_SUCCEEDED, Event, ResultRecord, RunRecord

#: Header fields ``update_run`` may set.
RUN_FIELDS = ("status", "owner", "updated_at", "params", "source", "cancel_requested")
_JSON_FIELDS = frozenset({"params", "source"})

_encoder = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
_decode = json.JSONDecoder().decode


def _no_default(o: Any) -> Any:
    raise TypeError(f"Object of type {type(o).__name__} is not JSON serializable")


def _make_c_encode() -> Any:
    """The C encoder built once, without the circular-reference map: 2-3x faster than
    ``JSONEncoder.encode`` on the small dicts events carry (a cycle ends in RecursionError).
    Called as ``"".join(_c_encode(value, 0))``."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # pragma: no cover - CPython always has it
        return lambda value, _indent: (_encoder.encode(value),)
    return make(None, _no_default, json.encoder.encode_basestring, None, ":", ",", False, False, True)


_c_encode = _make_c_encode()
#: The C encoder for callers that inline ``encode_data``: ``"".join(c_encode(value, 0))``.
c_encode = _c_encode


def encode_data(data: Any) -> str:
    """Compact JSON of one event's data (the C encoder); raises TypeError/ValueError."""
    return "".join(_c_encode(data, 0))


_MAP_INDEX = re.compile(r"(?:\[\d+\])+$")

#: An event row: (run_id, seq, type, task_id, attempt, ts, data_json).
EventRow = tuple[str, int, str, "str | None", int, float, str]
#: A history row: (workflow, task, ts, run_id, seq, duration, max_rss); the first five are its key.
HistoryRow = tuple[str, str, float, str, int, float, "float | None"]
#: A result row as written: (run_id, task_id, attempt, data, checksum, encoding, tag); the tag
#: authenticates it (see ``keys``). Rows written before results had tags read back with no tag.
ResultRow = tuple[str, str, int, bytes, str, str, bytes]


def encode_json(value: Any, where: str) -> str:
    """Compact JSON text of ``value``; ``UsageError`` naming ``where`` if it cannot be encoded."""
    if isinstance(value, dict) and not value:
        return "{}"
    try:
        return _encoder.encode(value)
    except (TypeError, ValueError) as e:
        raise UsageError(f"{where}: not JSON-serialisable: {e}") from None


def decode_json(text: str | None) -> Any:
    if not text or text == "{}":
        return {}
    return _decode(text)


def event_rows(run_id: str, events: Sequence[Event]) -> list[EventRow]:
    """Rows for ``events``; ``UsageError`` naming the event if its data is not JSON-serialisable."""
    enc, join = _c_encode, "".join
    try:
        # One comprehension, no call per event but the encoder's: this is the hot path of every append.
        return [
            (run_id, e.seq, e.type, e.task_id, e.attempt, e.ts, join(enc(e.data, 0)) if e.data else "{}")
            for e in events
        ]
    except (TypeError, ValueError, RecursionError):
        pass
    for e in events:
        try:
            _encoder.encode(e.data)
        except (TypeError, ValueError) as err:
            raise UsageError(
                f"run {run_id!r}: event seq {e.seq} ({e.type}): data is not JSON-serialisable: {err}"
            ) from None
    raise AssertionError("unreachable")  # pragma: no cover


def row_to_event(row: Sequence[Any]) -> Event:
    """An ``Event`` from ``(seq, type, task_id, attempt, ts, data_json)``; ``ValueError`` if the
    data is not a JSON object (a database altered behind the store's back)."""
    seq, type_, task_id, attempt, ts, data = row
    value = decode_json(data)
    if type(value) is not dict:
        raise ValueError(f"event seq {seq}: data is not a JSON object")
    return Event(seq, type_, task_id, attempt, ts, value)


def run_row(run: RunRecord) -> tuple[str, str, str, float, float, str, str, str]:
    """``(run_id, workflow, status, created_at, updated_at, params, source, owner)``."""
    where = f"run {run.run_id!r}"
    return (
        run.run_id,
        run.workflow,
        run.status,
        run.created_at,
        run.updated_at,
        encode_json(run.params, f"{where}: params"),
        encode_json(run.source, f"{where}: source"),
        run.owner,
    )


def row_to_run(row: Sequence[Any]) -> RunRecord:
    """A ``RunRecord`` from the columns in ``run_row`` order."""
    run_id, workflow, status, created_at, updated_at, params, source, owner = row
    return RunRecord(
        run_id, workflow, status, created_at, updated_at, decode_json(params), decode_json(source), owner
    )


def run_updates(run_id: str, fields: dict[str, Any]) -> list[tuple[str, Any]]:
    """``(column, value)`` pairs for ``update_run``; ``UsageError`` for an unknown field."""
    unknown = sorted(set(fields) - set(RUN_FIELDS))
    if unknown:
        raise UsageError(
            f"update_run({run_id!r}): unknown field(s) {', '.join(unknown)}; allowed: {', '.join(RUN_FIELDS)}"
        )
    out: list[tuple[str, Any]] = []
    for name in RUN_FIELDS:  # fixed order keeps the SQL text stable (statement cache)
        if name in fields:
            value = fields[name]
            if name in _JSON_FIELDS:
                value = encode_json(value or {}, f"run {run_id!r}: {name}")
            out.append((name, value))
    return out


@functools.lru_cache(maxsize=4096)
def task_name(task_id: str) -> str:
    """The spec name of a task instance: ``train[3]`` -> ``train``."""
    return _MAP_INDEX.sub("", task_id) if task_id.endswith("]") else task_id


def _number(value: Any) -> float | None:
    """``value`` as a finite float, or None if it is not a real number (bools are not)."""
    t = type(value)
    if t is float:
        return value if math.isfinite(value) else None
    if t is int:
        return float(value)
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return _number(float(value))


def history_rows(workflow: str, run_id: str, events: Iterable[Event]) -> list[HistoryRow]:
    """History rows for every ``TaskSucceeded`` among ``events`` with a numeric duration."""
    rows: list[HistoryRow] = []
    for e in [e for e in events if e.type == TASK_SUCCEEDED]:
        data = e.data
        duration = _number(data.get("duration"))
        if duration is not None and e.task_id is not None:
            rss = data.get("max_rss")
            rss = None if rss is None else _number(rss)
            rows.append((workflow, task_name(e.task_id), e.ts, run_id, e.seq, duration, rss))
    return rows


def duplicates(values: Iterable[Any]) -> list[Any]:
    """Values appearing more than once (seqs or task ids within one batch), sorted."""
    return sorted(v for v, n in Counter(values).items() if n > 1)


def duplicate_seqs(events: Sequence[Event]) -> list[int]:
    """Seqs appearing more than once within one batch."""
    return duplicates(e.seq for e in events)


def duplicate_tasks(results: Sequence[ResultRecord]) -> list[str]:
    """Task ids with more than one result within one batch."""
    return duplicates(r.task_id for r in results)


def seq_conflict_message(run_id: str, seqs: Sequence[int]) -> str:
    shown = ", ".join(str(s) for s in seqs[:5]) + (" ..." if len(seqs) > 5 else "")
    return (
        f"run {run_id!r}: event seq {shown or '(of this batch)'} already written "
        "(is another orchestrator writing this run?); nothing of this append was committed"
    )


def result_conflict_message(run_id: str, task_ids: Sequence[str]) -> str:
    shown = ", ".join(repr(t) for t in task_ids[:5]) + (" ..." if len(task_ids) > 5 else "")
    shown = shown or "(of this batch)"
    return (
        f"run {run_id!r}: a result for task {shown} is already committed and is never replaced; "
        "nothing of this append was committed"
    )


def redact(url: str) -> str:
    """``url`` with any password replaced by ``***``, for error messages."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = netloc[0].split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[1]}"))


def group_durations(rows: Iterable[Sequence[Any]]) -> dict[str, list[float]]:
    """``{task: [duration, ...]}`` from ``(task, duration)`` rows already in order."""
    out: dict[str, list[float]] = {}
    for task, duration in rows:
        out.setdefault(task, []).append(float(duration))
    return out


def invalidated(run_id: str, rows: Sequence[Sequence[Any]]) -> list[tuple[str, str]]:
    """``(run_id, task_id)`` of every ``TaskInvalidated`` or ``TaskCleared`` among encoded event
    rows: the store deletes those tasks' results in the same transaction."""
    return [(run_id, r[3]) for r in rows if r[2] in DROPS_RESULT]
