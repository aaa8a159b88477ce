"""The run read model (schema ``podium.run/1``, ``docs/json.md``): a run and its tasks as JSON.

One builder for every reader: ``podium show --json`` and ``podium runs --json``, the Python
API's ``RunResult`` and the server's run shapes. Its input is narrow on purpose, so that where
the facts come from (a fold of the event log today, ``runtime.reading``; a materialised summary
kept by the store) never changes what is printed:

- the run's header (``RunRecord``: id, workflow, status, params, created and updated times);
- its ``RunTotals`` (folded status, first start, end, wall time, T, R, F, task counts);
- one row per task instance (map items included): a ``TaskFacts``, or any object with its
  attributes (``TaskLike``; a store's task row, whose ``resources`` may be JSON text).

The JSON Schema of the output ships with the package (``podium/schemas/run.json``,
``json_schema()``). Invariants: pure (no clock, no I/O besides reading the schema file);
params and error messages pass through ``podium.secrets.redact_value``; every number is
finite; fields may be added to the shapes, never renamed or removed (a break is a new
``SCHEMA``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from functools import cache
from typing import Any, NamedTuple, Protocol

from podium.model.events import RunRecord
from podium.secrets import redact_value

SCHEMA = "podium.run/1"


class RunTotals(NamedTuple):
    """What the run's events say about the run as a whole."""

    status: str | None  #: the folded state (None: no event yet; the header's status is used)
    started_at: float | None  #: first start
    finished_at: float | None  #: its end, if it ended
    wall_time: float | None  #: first start to its end (or its last event), idle time included
    T: float
    R: float
    F: float
    alpha: float
    beta: float
    counts: Mapping[str, int]  #: tasks per state (map items without an event counted pending)
    tasks_total: int


class TaskFacts(NamedTuple):
    """What the run's events say about one task instance (the fields of a store's task row)."""

    task_id: str
    state: str
    attempt: int  #: attempts started
    node: str | None
    queued_at: float | None
    started_at: float | None  #: of its last attempt
    finished_at: float | None  #: of its last attempt
    duration: float | None  #: of its last successful attempt
    estimate: float | None  #: seconds the engine expected its last attempt to take
    resources: Mapping[str, float]  #: what its last attempt requested
    cpu_time: float | None  #: of its last measured attempt
    peak_memory: int | None  #: of its last measured attempt
    usage_source: str | None
    error: Mapping[str, Any] | None  #: its last failure: kind, type, message, frame
    cached: bool
    skip_reason: str | None
    children: int | None  #: a map: its number of items


class TaskLike(Protocol):
    """What ``task_object`` reads of a task row (``TaskFacts`` has exactly these)."""

    @property
    def task_id(self) -> str: ...
    @property
    def state(self) -> str: ...
    @property
    def attempt(self) -> int: ...
    @property
    def node(self) -> str | None: ...
    @property
    def queued_at(self) -> float | None: ...
    @property
    def started_at(self) -> float | None: ...
    @property
    def finished_at(self) -> float | None: ...
    @property
    def duration(self) -> float | None: ...
    @property
    def estimate(self) -> float | None: ...
    @property
    def resources(self) -> Mapping[str, float] | str: ...
    @property
    def cpu_time(self) -> float | None: ...
    @property
    def peak_memory(self) -> int | None: ...
    @property
    def usage_source(self) -> str | None: ...
    @property
    def error(self) -> Mapping[str, Any] | None: ...
    @property
    def cached(self) -> bool | int: ...
    @property
    def skip_reason(self) -> str | None: ...
    @property
    def children(self) -> int | None: ...


def _num(x: float | None) -> float | None:
    if x is None:
        return None
    x = float(x)
    return round(x, 9) if math.isfinite(x) else None


def run_object(record: RunRecord, totals: RunTotals) -> dict[str, Any]:
    """A run without its tasks (an element of ``podium runs --json``)."""
    return {
        "schema": SCHEMA,
        "run_id": record.run_id,
        "workflow": record.workflow,
        "status": totals.status or record.status,
        "params": redact_value(dict(record.params)),
        "created_at": record.created_at,
        "started_at": totals.started_at,
        "finished_at": totals.finished_at,
        "updated_at": record.updated_at,
        "wall_time": _num(totals.wall_time),
        "T": _num(totals.T) or 0.0,
        "R": _num(totals.R) or 0.0,
        "F": _num(totals.F) or 0.0,
        "alpha": totals.alpha,
        "beta": totals.beta,
        "counts": {k: v for k, v in totals.counts.items() if v},
        "tasks_total": totals.tasks_total,
    }


def split_item(task_id: str) -> tuple[str, int | None]:
    """``train[3]`` -> ``("train", 3)``; any other id -> ``(id, None)``."""
    if task_id.endswith("]") and "[" in task_id:
        name, _, rest = task_id.partition("[")
        return name, int(rest[:-1]) if rest[:-1].isdigit() else None
    return task_id, None


def error_object(err: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A failure as the read model shows it: kind, type, message, frame; secrets redacted."""
    if not err:
        return None
    out = {
        "kind": str(err.get("kind") or "user"),
        "type": str(err.get("type") or "Error"),
        "message": str(err.get("message") or ""),
        "frame": err.get("frame") if isinstance(err.get("frame"), str) else None,
    }
    redacted: dict[str, Any] = redact_value(out)
    return redacted


def task_object(t: TaskLike) -> dict[str, Any]:
    """One task of ``podium show --json`` (and ``RunResult.tasks``)."""
    name, index = split_item(t.task_id)
    res = t.resources
    resources: Mapping[str, Any] = json.loads(res) if isinstance(res, str) else (res or {})
    measured = t.cpu_time is not None or t.peak_memory is not None
    return {
        "task_id": t.task_id,
        "name": name,
        "map_index": index,
        "status": t.state,
        "attempts": t.attempt,
        "node": t.node,
        "queued_at": t.queued_at,
        "started_at": t.started_at,
        "finished_at": t.finished_at,
        "duration": _num(t.duration),
        "estimate": _num(t.estimate),
        "resources": {k: v for k, v in resources.items() if isinstance(v, int | float)},
        "usage": {
            "cpu_time": _num(t.cpu_time),
            "peak_memory": t.peak_memory,
            "wall_time": _num(t.duration),
            "source": t.usage_source if measured else None,
        },
        "cached": bool(t.cached),
        "skip_reason": t.skip_reason,
        "children": t.children,
        "error": error_object(t.error),
    }


def run_document(
    record: RunRecord,
    totals: RunTotals,
    tasks: Iterable[TaskLike],
    attention: Iterable[str] | None = None,
) -> dict[str, Any]:
    """A run with every task (``podium show --json``); with ``attention`` (the store's notes on
    why the run needs a person, ``Store.attention``), those notes, secrets redacted."""
    out = run_object(record, totals)
    out["tasks"] = [task_object(t) for t in tasks]
    if attention is not None:
        out["attention"] = attention_notes(attention)
    return out


def attention_notes(notes: Iterable[str]) -> list[str]:
    """The ``attention`` field: the store's notes on why a run needs a person, in the order
    they were noted, secrets redacted."""
    return [redact_value(str(note)) for note in notes]


@cache
def _schema_text() -> str:
    from importlib.resources import files

    return (files("podium") / "schemas" / "run.json").read_text(encoding="utf-8")


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the read model (a fresh copy): ``$defs`` ``run``, ``task``, ``show``
    (a run with its tasks) and ``runs`` (a list of runs)."""
    schema: dict[str, Any] = json.loads(_schema_text())
    return schema
