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
import math
from collections import Counter
from collections.abc import Iterator, Mapping
from itertools import chain, repeat
from operator import add, mul, truediv
from typing import Any

from podium.fastjson import tokens
from podium.model import states as st
from podium.model.events import RunRecord
from podium.model.usage import SOURCES
from podium.runtime.readmodel import RunTotals, error_object, run_object, split_item
from podium.runtime.snapshot import SnapshotError, columns, run_view, stored
from podium.runtime.summary import per_hour, recorded_pricing, run_totals
from podium.types import Store

#: Task objects per chunk of ``task_chunks``.
CHUNK = 5000
_NONE = type(None)
_string = json.encoder.encode_basestring_ascii  # what json.dumps writes (ensure_ascii)


def read_columns(store: Store, run_id: str) -> dict[str, Any] | None:
    """The snapshot's columns of a run with no event after its snapshot, else None."""
    kept = stored(store, run_id)
    if kept is None or kept[2]:
        return None
    try:
        cols = columns(kept[1])
    except SnapshotError:
        return None
    return cols if cols["run"]["last_seq"] == kept[0] else None


def totals(cols: dict[str, Any]) -> RunTotals:
    """``reading.totals`` of the view the columns hold."""
    _, nodes = recorded_pricing(cols["run"]["meta"])
    res, nodes_of = cols["resources_values"], cols["node_values"]
    width = len(nodes_of)
    # tasks share a few (resources, node) pairs: price each pair once, by its codes
    pairs = list(map(add, map(mul, cols["resources_codes"], repeat(width)), cols["node_codes"]))
    rates = {p: per_hour(res[p // width], nodes.get(nodes_of[p % width] or "")) for p in set(pairs)}
    rate = list(map(rates.__getitem__, pairs))
    for i, ranks in cols["ranks"]:  # a gang: every worker holds the resources on its node
        held = res[cols["resources_codes"][i]]
        if ranks and held:
            rate[i] = sum(per_hour(held, nodes.get(str(n))) for n, _ in ranks)
    # summed in task order, as ``summary.summarize`` does (tasks that held nothing add 0.0)
    cost = sum(map(truediv, map(mul, rate, cols["busy"]), repeat(3600.0)), 0.0)
    return run_totals(run_view(cols), cost, _counts(cols), cols["n"])


def _counts(cols: dict[str, Any]) -> dict[str, int]:
    """``RunView.counts``: tasks per state, map items without an event yet counted pending."""
    out = dict.fromkeys(st.TASK_STATES, 0)
    names = cols["state_values"]
    for code, count in Counter(cols["state_codes"]).items():
        out[names[code]] = out.get(names[code], 0) + count
    ids = cols["ids"]
    parents = [(i, c) for i, c in cols["children"] if c]
    expected = sum(c for _, c in parents)
    seen = sum(map(str.endswith, ids, ["]"] * len(ids))) - sum(ids[i].endswith("]") for i, _ in parents)
    out[st.PENDING] += max(0, expected - seen)
    return out


def document_text(record: RunRecord, cols: dict[str, Any], extra: Mapping[str, Any]) -> Iterator[str]:
    """``run_document(...)`` with ``extra`` after its tasks, as compact JSON in pieces (see the
    module docstring)."""
    head = _json(run_object(record, totals(cols)))
    yield head[:-1] + ',"tasks":['
    first = True
    for chunk in task_chunks(cols):
        if not first:
            yield ","
        yield chunk
        first = False
    yield "]"
    for k, v in extra.items():
        yield f",{_json(k)}:{_json(v)}"
    yield "}"


#: A task object: the text before each field's value, and the field (``readmodel.task_object``).
_FIELDS = (
    ('{"task_id":', "task_id"),
    (',"name":', "name"),
    (',"map_index":', "map_index"),
    (',"status":', "status"),
    (',"attempts":', "attempts"),
    (',"node":', "node"),
    (',"queued_at":', "queued_at"),
    (',"started_at":', "started_at"),
    (',"finished_at":', "finished_at"),
    (',"duration":', "duration"),
    (',"estimate":', "estimate"),
    (',"resources":', "resources"),
    (',"usage":{"cpu_time":', "cpu_time"),
    (',"peak_memory":', "peak_memory"),
    (',"wall_time":', "duration"),
    (',"source":', "source"),
    ('},"cached":', "cached"),
    (',"skip_reason":', "skip_reason"),
    (',"children":', "children"),
    (',"error":', "error"),
)


def task_chunks(cols: dict[str, Any]) -> Iterator[str]:
    """The task objects of ``show --json`` as compact JSON text, at most ``CHUNK`` tasks a piece.

    Each field becomes a list of JSON texts for the chunk (numbers formatted in one call, see
    ``fastjson.tokens``), or one text when it is the same for every task of the chunk (then it
    joins the constant text around it); the tasks are then one ``join`` of the pieces. A chunk of
    one run of map items ``name[k]`` writes each id as its index between constant texts."""
    n = cols["n"]
    state = _coded(cols, "state", _string)
    node = _coded(cols, "node", _string)
    resources = _coded(
        cols, "resources", lambda r: _json({k: v for k, v in r.items() if isinstance(v, int | float)})
    )
    cpu, peak, source = _usage(cols, n)
    est = cols["est"]
    no_estimates = est.count(None) == n
    sparse = {f: dict(_sparse_tokens(f, cols[f])) for f in ("cached", "skip_reason", "children", "error")}
    for lo, hi, run in _segments(cols["id_runs"]):
        fields: dict[str, str | list[str]]
        if run is None:
            ids, names, indices = _id_tokens(cols["ids"][lo:hi])
            fields = {"task_id": ids, "name": names, "map_index": indices}
        else:
            name, k = run
            quoted = _string(name)
            index = list(map(str, range(k + lo, k + hi)))  # item ``name[k+i]``: its id's text is the
            fields = {"task_id": index, "name": quoted, "map_index": index}  # name's with [index]
        values: dict[str, str | list[str]] = {
            **fields,
            "status": state[lo:hi],
            "attempts": tokens(cols["attempt"][lo:hi]),
            "node": node[lo:hi],
            "queued_at": tokens(cols["queued_at"][lo:hi]),
            "started_at": tokens(cols["started_at"][lo:hi]),
            "finished_at": tokens(cols["finished_at"][lo:hi]),
            "duration": _rounded(cols["duration"][lo:hi]),
            "estimate": "null" if no_estimates else _rounded([_as_float(x) for x in est[lo:hi]]),
            "resources": resources[lo:hi],
            "cpu_time": cpu[lo:hi],
            "peak_memory": peak[lo:hi],
            "source": source[lo:hi],
            "cached": _plain(sparse["cached"], lo, hi, "false"),
            "skip_reason": _plain(sparse["skip_reason"], lo, hi, "null"),
            "children": _plain(sparse["children"], lo, hi, "null"),
            "error": _plain(sparse["error"], lo, hi, "null"),
        }
        yield _join(values, hi - lo, None if run is None else _string(run[0])[:-1] + "[")


def _segments(runs: list[Any]) -> Iterator[tuple[int, int, tuple[str, int] | None]]:
    """``(lo, hi, run)``: tasks ``lo`` to ``hi``, at most ``CHUNK`` of them, all of one run of map
    items (``run``: its name, and the index of the task at position ``p`` is ``run[1] + p``) or
    none of them in a run (``run`` None)."""
    at = 0
    loose = at  # start of ids not in a run, not yet given out
    for r in runs:
        if type(r) is str:
            at += 1
            if at - loose == CHUNK:
                yield loose, at, None
                loose = at
            continue
        if at > loose:
            yield loose, at, None
        name, k, m = r
        for lo in range(0, m, CHUNK):
            hi = min(m, lo + CHUNK)
            yield at + lo, at + hi, (name, k - at)
        at += m
        loose = at
    if at > loose:
        yield loose, at, None


def _amounts(resources: Mapping[str, Any]) -> str:
    """``readmodel.task_object``'s resources: the numeric amounts."""
    return _json({k: v for k, v in resources.items() if isinstance(v, int | float)})


def _coded(cols: dict[str, Any], f: str, text: Any) -> list[str]:
    """JSON text of each task's value of an interned column: one encoding per distinct value."""
    texts = ["null" if v is None else text(v) for v in cols[f + "_values"]]
    return list(map(texts.__getitem__, cols[f + "_codes"]))


def _join(values: dict[str, str | list[str]], m: int, item: str | None = None) -> str:
    """The chunk's task objects, separated by commas; with ``item`` (the JSON text of a map's
    name up to its ``[``), ``task_id`` holds indices, each written as ``item + index + ']"'``."""
    pieces: list[Any] = []
    text = ""
    for before, field in _FIELDS:
        v = values[field]
        if item is not None and field == "task_id":
            pieces += [repeat(text + before + item), v]
            text = ']"'
            continue
        if isinstance(v, list) and v.count(v[0]) == m:  # the same for every task: constant text
            v = v[0]
        if isinstance(v, str):
            text += before + v
            continue
        pieces += [repeat(text + before), v]
        text = ""
    pieces.append(repeat(text + "},"))
    if len(pieces) == 1:  # every field the same (one task): no list to end the zip
        return ",".join([text + "}"] * m)
    return "".join(chain.from_iterable(zip(*pieces, strict=False)))[:-1]  # repeat() never ends


def _sparse_tokens(field: str, pairs: list[list[Any]]) -> Iterator[tuple[int, str]]:
    for i, v in pairs:
        if field == "cached":
            yield i, "true" if v else "false"
        elif field == "error":
            yield i, _json(error_object(v) if isinstance(v, Mapping) else None)
        else:
            yield i, _json(v)


def _plain(tokens: dict[int, str], lo: int, hi: int, default: str) -> str | list[str]:
    """A sparse column's tokens for tasks ``lo`` to ``hi`` (one text when all are the default)."""
    if not tokens or not any(lo <= i < hi for i in tokens):
        return default
    return [tokens.get(i, default) for i in range(lo, hi)]


def _json(v: Any) -> str:
    return json.dumps(v, default=str, separators=(",", ":"))


def _id_tokens(ids: list[str]) -> tuple[list[str], list[str], list[str]]:
    """The ``task_id``, ``name`` and ``map_index`` texts of task ids (``readmodel.split_item``)."""
    out: tuple[list[str], list[str], list[str]] = ([], [], [])
    for tid in ids:
        name, index = split_item(tid)
        out[0].append(_string(tid))
        out[1].append(_string(name))
        out[2].append("null" if index is None else str(index))
    return out


def _rounded(col: list[Any]) -> list[str]:
    """``readmodel._num``: finite numbers rounded to 9 decimals, else null."""
    if None not in col and set(map(type, col)) <= {float, int} and all(map(math.isfinite, col)):
        return tokens(list(map(round, map(float, col), repeat(9))))
    return [
        "null"
        if x is None or isinstance(x, bool) or not isinstance(x, int | float) or not math.isfinite(x)
        else tokens([round(float(x), 9)])[0]
        for x in col
    ]


def _as_float(x: Any) -> float | None:
    return float(x) if isinstance(x, int | float) else None


def _usage(cols: dict[str, Any], n: int) -> tuple[list[str], list[str], list[str]]:
    """``model.usage.record_usage`` of each task's record, as the read model shows it."""
    cpu, peak, source = ["null"] * n, ["null"] * n, ["null"] * n
    parts = cols["usage_parts"]
    if parts is not None:
        has, c_col, p_col, _, s_col = parts
    else:  # records of another shape, kept as they were
        records = [(i, u) for i, u in enumerate(cols["usage"]) if isinstance(u, Mapping)]
        has = [i for i, _ in records]
        c_col, p_col, s_col = ([u.get(k) for _, u in records] for k in ("cpu_time", "peak_memory", "source"))
    c_col, memory = _measured(c_col), [int(x) if x else None for x in _measured(p_col)]  # 0: unknown
    kept = [k for k, (c, m) in enumerate(zip(c_col, memory, strict=True)) if c is not None or m is not None]
    c_tok = _rounded([c_col[k] for k in kept])
    m_tok = tokens([memory[k] for k in kept])
    names = {s: _string(s) for s in set(s_col) if isinstance(s, str) and s in SOURCES}
    for k, ct, mt in zip(kept, c_tok, m_tok, strict=True):
        i = has[k]
        src = s_col[k]
        cpu[i], peak[i], source[i] = ct, mt, names.get(src, "null") if isinstance(src, str) else "null"
    return cpu, peak, source


def _measured(col: list[Any]) -> list[float | None]:
    """``model.usage._number`` of each: a finite non-negative number as a float, else None."""
    if set(map(type, col)) <= {float, _NONE}:
        present = [x for x in col if x is not None]
        if not present or (min(present) >= 0.0 and math.isfinite(max(present))):
            return col
    return [_number(x) for x in col]


def _number(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, int | float) or not math.isfinite(x) or x < 0:
        return None
    return float(x)
