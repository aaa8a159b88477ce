"""A run read straight from its snapshot's columns: totals and ``show --json`` text, no view made.

``podium show RUN --json`` of a 100,000-task run prints 100,000 task objects. Made the general
way (a ``TaskView`` per task, then ``TaskFacts``, then a dict, then ``json.dumps``) that costs
several microseconds a task; here each field is turned into JSON text a column at a time (one
encoding per distinct string, resource dict and usage source) and each task is one ``%``
format of those texts.

``read_columns(store, run_id)`` gives the checked columns of a run whose snapshot holds its
whole log (no event after it), else None: the caller then reads the view (``reading.load_view``).

Invariants: ``totals(cols)`` is ``reading.totals`` of the view the snapshot holds, and
``document_text(record, cols, extra)`` is, byte for byte, ``json.dumps`` of
``readmodel.run_document`` of that view's facts with ``extra`` after its tasks (the tests check
both on random runs); read-only.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Mapping
from typing import Any

from podium.model import states as st
from podium.model.events import RunRecord
from podium.model.usage import SOURCES
from podium.runtime.readmodel import RunTotals, error_object, run_object, split_item
from podium.runtime.reading import recorded_pricing
from podium.runtime.snapshot import SnapshotError, columns
from podium.runtime.summary import per_hour
from podium.types import SnapshotStore, Store

#: Task objects per chunk of ``task_chunks``.
CHUNK = 5000
_string = json.encoder.encode_basestring_ascii  # what json.dumps writes (ensure_ascii)
_TASK = (
    '{"task_id": %s, "name": %s, "map_index": %s, "status": %s, "attempts": %d, "node": %s, '
    '"queued_at": %s, "started_at": %s, "finished_at": %s, "duration": %s, "estimate": %s, '
    '"resources": %s, "usage": {"cpu_time": %s, "peak_memory": %s, "wall_time": %s, "source": %s}, '
    '"cached": %s, "skip_reason": %s, "children": %s, "error": %s}'
)


def read_columns(store: Store, run_id: str) -> dict[str, Any] | None:
    """The snapshot's columns of a run with no event after its snapshot, else None."""
    if not isinstance(store, SnapshotStore):
        return None
    kept = store.snapshot(run_id)
    if kept is None or store.events(run_id, after_seq=kept[0]):
        return None
    try:
        cols = columns(kept[1])
    except SnapshotError:
        return None
    return cols if cols["run"]["last_seq"] == kept[0] else None


def totals(cols: dict[str, Any]) -> RunTotals:
    """``reading.totals`` of the view the columns hold."""
    run = cols["run"]
    last_ts, active, span_start = (None if x != x else float(x) for x in run["times"])
    makespan = (active or 0.0) + (
        max(0.0, last_ts - span_start) if span_start is not None and last_ts is not None else 0.0
    )
    objective, nodes = recorded_pricing(run["meta"])
    cost = 0.0
    rates: dict[tuple[int, str | None], float] = {}
    ranks = dict(cols["ranks"])
    for i, (busy, res, node) in enumerate(zip(cols["busy"], cols["resources"], cols["node"], strict=True)):
        if busy and res:
            key = (id(res), node)
            rate = rates.get(key)
            if rate is None:
                rate = rates[key] = per_hour(res, nodes.get(node or ""))
            if ranks.get(i):
                rate = sum(per_hour(res, nodes.get(str(n))) for n, _ in ranks[i])
            cost += rate * busy / 3600.0
    start, end = run["started_at"], run["finished_at"]
    end = end if end is not None else last_ts
    wall = None if start is None else max(0.0, (end if end is not None else start) - start)
    return RunTotals(
        run["state"],
        start,
        run["finished_at"],
        wall,
        makespan,
        cost,
        objective.alpha * makespan + objective.beta * cost,
        objective.alpha,
        objective.beta,
        _counts(cols),
        cols["n"],
    )


def _counts(cols: dict[str, Any]) -> dict[str, int]:
    """``RunView.counts``: tasks per state, map items without an event yet counted pending."""
    out = dict.fromkeys(st.TASK_STATES, 0)
    out.update(Counter(cols["state"]))
    ids = cols["ids"]
    parents = [(i, c) for i, c in cols["children"] if c]
    expected = sum(c for _, c in parents)
    seen = sum(map(str.endswith, ids, ["]"] * len(ids))) - sum(ids[i].endswith("]") for i, _ in parents)
    out[st.PENDING] += max(0, expected - seen)
    return out


def document_text(record: RunRecord, cols: dict[str, Any], extra: Mapping[str, Any]) -> Iterator[str]:
    """``json.dumps(run_document(...) | extra, default=str)`` in pieces (see the module docstring)."""
    head = json.dumps(run_object(record, totals(cols)), default=str)
    yield head[:-1] + ', "tasks": ['
    first = True
    for chunk in task_chunks(cols):
        yield chunk if first else ", " + chunk
        first = False
    yield "]"
    for k, v in extra.items():
        yield f", {json.dumps(k)}: {json.dumps(v, default=str)}"
    yield "}"


def task_chunks(cols: dict[str, Any]) -> Iterator[str]:
    """The task objects of ``show --json`` as text, ``CHUNK`` tasks a piece."""
    n, ids = cols["n"], cols["ids"]
    state = _tokens(cols["state"])
    node = _tokens(cols["node"])
    queued, started, finished = (_times(cols[f]) for f in ("queued_at", "started_at", "finished_at"))
    duration = _rounded(cols["duration"])
    estimate = _rounded([_as_float(x) for x in cols["est"]])
    resources = _resources(cols["resources"])
    cpu, peak, source = _usage(cols, n)
    cached, skip, children, error = (["false"] * n, ["null"] * n, ["null"] * n, ["null"] * n)
    for i, v in cols["cached"]:
        cached[i] = "true" if v else "false"
    for i, v in cols["skip_reason"]:
        skip[i] = _json(v)
    for i, v in cols["children"]:
        children[i] = _json(v)
    for i, v in cols["error"]:
        error[i] = _json(error_object(v) if isinstance(v, Mapping) else None)
    attempts = cols["attempt"]
    for lo in range(0, n, CHUNK):
        hi = min(n, lo + CHUNK)
        yield ", ".join(
            _TASK % (_string(tid), *_name(tid), *row)
            for tid, row in zip(
                ids[lo:hi],
                zip(
                    state[lo:hi],
                    attempts[lo:hi],
                    node[lo:hi],
                    queued[lo:hi],
                    started[lo:hi],
                    finished[lo:hi],
                    duration[lo:hi],
                    estimate[lo:hi],
                    resources[lo:hi],
                    cpu[lo:hi],
                    peak[lo:hi],
                    duration[lo:hi],
                    source[lo:hi],
                    cached[lo:hi],
                    skip[lo:hi],
                    children[lo:hi],
                    error[lo:hi],
                    strict=True,
                ),
                strict=True,
            )
        )


def _json(v: Any) -> str:
    return json.dumps(v, default=str)


def _name(tid: str) -> tuple[str, str]:
    name, index = split_item(tid)
    return _string(name), "null" if index is None else str(index)


def _tokens(col: list[Any]) -> list[str]:
    """JSON text of a column of few distinct strings (None as null): one encoding each."""
    memo: dict[Any, str] = {}
    return [memo.get(v) or memo.setdefault(v, "null" if v is None else _string(v)) for v in col]


def _times(col: list[float | None]) -> list[str]:
    return ["null" if x is None else repr(x) for x in col]


def _rounded(col: list[float | None]) -> list[str]:
    """``readmodel._num``: finite numbers rounded to 9 decimals, else null."""
    return ["null" if x is None or x - x != 0 else repr(round(float(x), 9)) for x in col]


def _as_float(x: Any) -> float | None:
    return float(x) if isinstance(x, int | float) else None


def _resources(col: list[Any]) -> list[str]:
    memo: dict[int, str] = {}
    out = []
    for r in col:
        text = memo.get(id(r))
        if text is None:
            text = memo[id(r)] = _json({k: v for k, v in (r or {}).items() if isinstance(v, int | float)})
        out.append(text)
    return out


def _usage(cols: dict[str, Any], n: int) -> tuple[list[str], list[str], list[str]]:
    """``model.usage.record_usage`` of each task's record, as the read model shows it."""
    cpu, peak, source = ["null"] * n, ["null"] * n, ["null"] * n
    parts = cols["usage_parts"]
    if parts is not None:
        rows: Any = zip(parts[0], parts[1], parts[2], parts[4], strict=True)
    else:
        rows = (
            (i, u.get("cpu_time"), u.get("peak_memory"), u.get("source"))
            for i, u in enumerate(cols["usage"])
            if isinstance(u, Mapping)
        )
    for i, c, p, s in rows:
        c, p = _measured(c), _measured(p)
        memory = int(p) if p else None  # 0: the executor could not tell
        if c is None and memory is None:
            continue
        cpu[i] = "null" if c is None else repr(round(c, 9))
        peak[i] = "null" if memory is None else str(memory)
        source[i] = _string(s) if isinstance(s, str) and s in SOURCES else "null"
    return cpu, peak, source


def _measured(x: Any) -> float | None:
    """``model.usage._number``: a finite non-negative number, else None."""
    if isinstance(x, bool) or not isinstance(x, int | float):
        return None
    x = float(x)
    return x if x - x == 0 and x >= 0.0 else None
