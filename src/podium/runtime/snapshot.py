"""A run's view as bytes: ``encode(view)`` and ``decode(data)``, the run summary a store keeps.

Reading a run by folding its whole log costs time in proportion to every event it ever wrote
(a 100,000-task map writes 300,000). The engine therefore hands its store, at checkpoints and at
the run's end, a snapshot of the view it keeps anyway, stamped with the seq of the last event the
view has applied (``types.SnapshotStore``); a reader decodes the snapshot and folds only the
events after that seq (``runtime.reading.load_view``), and gets the view a full fold gives.

The format (``FORMAT``) is columnar JSON (``podium.fastjson``: orjson when installed): the task
ids in view order, one list per ``TaskView`` field (strings and resource dicts interned; each
attempt's measured usage as lists of its own), sparse lists for the fields most tasks leave at
their default, and the run's own fields. Columns are made with one C-level pass each over the
tasks and read back the same way, so a 100,000-task run is written and read in a fraction of a
second. No pickle: a snapshot is read like an event (data a store holds), never executed.
``columns(data)`` gives the checked columns without making a view (for readers that render every
task, ``runtime.columns``).

Invariants:
- ``decode(encode(view))`` is a view equal to ``view`` field by field (a float that is not a
  number may read back as None: the read model shows both as null); every ``TaskView`` field is
  in ``FIELDS`` (a test checks it).
- Pure: no clock, no I/O. Anything a decoder does not recognise (another format, damage, a type
  out of place) raises ``SnapshotError``; the reader then folds the log.
"""

from __future__ import annotations

import gc
import re
from collections.abc import Callable
from operator import attrgetter, itemgetter
from typing import Any

from podium.fastjson import dumps as json_dumps
from podium.fastjson import loads as json_loads
from podium.model.events import Event
from podium.runtime.view import RunView, TaskView
from podium.types import SnapshotStore, Store

FORMAT = "podium.snapshot/1"
_NONE = type(None)
_NUMBERS = frozenset({float, int, _NONE})
_SCALARS = frozenset({float, int, str, bool, _NONE})

STRINGS = ("state", "node")  #: interned
INTEGERS = ("attempt",)
NUMBERS = ("queued_at", "started_at", "finished_at", "duration", "busy")
#: As the events said (an estimate is whatever ``TaskStarted`` carried).
PLAIN = ("est",)
#: Kept as ``[index, value]`` for the tasks whose value is not the default.
SPARSE = ("failures", "lost", "ooms", "memory", "error", "cached", "skip_reason", "children", "gpus", "ranks")
#: The keys of a usage record (``model.usage.Usage.as_dict``), kept as lists of their own.
USAGE = ("cpu_time", "peak_memory", "wall_time", "source")
FIELDS = ("task_id", *STRINGS, *INTEGERS, *NUMBERS, *PLAIN, *SPARSE, "usage", "resources")
_DENSE = ("task_id", *STRINGS, *INTEGERS, *NUMBERS, *PLAIN, "usage", "resources")
#: A map item's id: its map's name (no brackets) and an index as ``int`` prints it.
_ITEM = re.compile(r"([^\[\]]+)\[(0|[1-9][0-9]*)\]")
_NAME = re.compile(r"[^\[\]]+")
_RUN_FIELDS = ("state", "last_seq", "created_at", "started_at", "finished_at", "meta", "plan")
_RUN_TIMES = ("last_ts", "active", "span_start")


class SnapshotError(ValueError):
    """The bytes are not a snapshot this version reads."""


def stored(store: Store, run_id: str) -> tuple[int, bytes, list[Event]] | None:
    """The run's snapshot as ``(seq, data, the events after it)``, if its store keeps one whose
    seq is an event of the run's log (a snapshot stamped past the log was not written by a
    store: it is passed over, so whatever it claims stays bounded by the log)."""
    if not isinstance(store, SnapshotStore):
        return None
    kept = store.snapshot(run_id)
    if kept is None or kept[0] < 1:
        return None
    seq, data = kept
    events = store.events(run_id, after_seq=seq - 1)
    if not events or events[0].seq != seq:
        return None
    return seq, data, events[1:]


# -- encoding ---------------------------------------------------------------------------------
def encode(view: RunView) -> bytes:
    """The view as a snapshot (see the module docstring); ``TypeError`` if the view holds a
    value JSON cannot (its events could not have)."""
    tasks = list(view.tasks.values())
    n = len(tasks)
    columns = {f: list(map(attrgetter(f), tasks)) for f in FIELDS}
    doc: dict[str, Any] = {"format": FORMAT, "n": n, "ids": _runs(columns["task_id"])}
    run: dict[str, Any] = {f: getattr(view, f) for f in (*_RUN_FIELDS, *_RUN_TIMES)}
    doc["run"] = run
    for f in STRINGS:
        doc[f] = _interned(columns[f])
    for f in (*INTEGERS, *NUMBERS, *PLAIN):
        doc[f] = _same(columns[f])
    for f in SPARSE:
        col, default = columns[f], getattr(TaskView, f)
        if col.count(default) == n:  # the usual case: no task has it
            doc[f] = []
        else:
            doc[f] = [[i, v] for i, v in enumerate(col) if v is not default and v != default]
    doc["usage"] = _usage(columns["usage"])
    doc["resources"] = _interned(columns["resources"], id)  # tasks of one spec share one dict
    return json_dumps(doc, default=_unknown)


def _same(col: list[Any]) -> Any:
    """A column, or ``{"all": value}`` when every task has the same one (``_unsame``)."""
    if col and col.count(col[0]) == len(col) and type(col[0]) in _SCALARS and len(set(map(type, col))) == 1:
        return {"all": col[0]}
    return col


def _runs(ids: list[str]) -> list[Any]:
    """Task ids with each run of consecutive map items ``name[k]`` ... ``name[k+m-1]`` (m > 1)
    written ``[name, k, m]``: a 100,000-item map is one entry."""
    out: list[Any] = []
    i, n = 0, len(ids)
    while i < n:
        tid = ids[i]
        item = _ITEM.fullmatch(tid)
        if item is None:
            out.append(tid)
            i += 1
            continue
        name, k = item.group(1), int(item.group(2))
        fmt = name.replace("%", "%%") + "[%d]"
        m = 1
        step = 1
        while i + m < n:  # grow by doubling blocks while they match, then halve
            b = min(step, n - i - m)
            if ids[i + m : i + m + b] == list(map(fmt.__mod__, range(k + m, k + m + b))):
                m += b
                step *= 2
            elif b > 1:
                step = b // 2
            else:
                break
        out.append(tid if m == 1 else [name, k, m])
        i += m
    return out


def _unruns(runs: Any, n: int) -> list[str]:
    if not isinstance(runs, list):
        raise SnapshotError("task ids are damaged")
    ids: list[str] = []
    for r in runs:
        if type(r) is str:
            ids.append(r)
        elif (
            type(r) is list
            and len(r) == 3
            and type(r[0]) is str
            and _NAME.fullmatch(r[0])
            and type(r[1]) is int
            and type(r[2]) is int
            and r[1] >= 0
            and 1 < r[2] <= n
        ):
            fmt = r[0].replace("%", "%%") + "[%d]"
            ids += map(fmt.__mod__, range(r[1], r[1] + r[2]))
        else:
            raise SnapshotError("task ids are damaged")
        if len(ids) > n:
            raise SnapshotError("task ids do not match the task count")
    return ids


def _unknown(o: Any) -> Any:
    if isinstance(o, tuple | set | frozenset):
        return list(o)
    raise TypeError(f"{type(o).__name__} in a run's view")


def _interned(col: list[Any], key: Callable[[Any], Any] | None = None) -> dict[str, Any]:
    """Each distinct value once (by ``key``: by identity for dicts), and each task's code."""
    keys = col if key is None else list(map(key, col))
    first = dict(zip(keys, col, strict=True))  # distinct keys in order of first use
    code = dict(zip(first, range(len(first)), strict=True))
    return {"values": list(first.values()), "codes": _same(list(map(code.__getitem__, keys)))}


def _usage(col: list[Any]) -> dict[str, Any]:
    """Usage records as lists of their fields when every one is ``Usage.as_dict()``-shaped,
    else as they are."""
    has = [i for i, u in enumerate(col) if u is not None]
    records = [col[i] for i in has]
    plain = {"has": has, "records": records}
    if not set(map(type, records)) <= {dict} or not set(map(len, records)) <= {len(USAGE)}:
        return plain
    try:
        fields = {k: _same(list(map(itemgetter(k), records))) for k in USAGE}
    except KeyError:
        return plain
    every = has == list(range(len(has)))  # (the usual case: every task has one)
    return {"has": len(has) if every else has, **fields}


# -- decoding ---------------------------------------------------------------------------------
def columns(data: bytes) -> dict[str, Any]:
    """The snapshot's columns, checked: ``n``, ``ids`` (and ``id_runs``: the ids with runs of map
    items as ``[name, first index, count]``), ``run`` (the run's fields), the interned columns
    as ``<field>_codes`` and ``<field>_values`` (``picked`` makes the plain list), one list per
    task field (sparse fields as ``[index, value]`` pairs), and the usage records: ``usage``, one
    per task (None where a task has none), or, when they were kept as lists, ``usage`` None and
    ``usage_parts``: ``(indices, cpu_time, peak_memory, wall_time, source)``."""
    try:
        doc = json_loads(data)
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise SnapshotError(f"not a {FORMAT} snapshot")
        return _columns(doc)
    except SnapshotError:
        raise
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as e:
        raise SnapshotError(f"damaged snapshot: {type(e).__name__}: {e}") from None


def decode(data: bytes) -> RunView:
    """The view a snapshot holds; ``SnapshotError`` if it is not one this version reads."""
    cols = columns(data)
    collecting = gc.isenabled()
    gc.disable()  # 100,000 new objects that hold no cycles: collections would only cost time
    try:
        return _view(cols)
    except (ValueError, TypeError, IndexError) as e:
        raise SnapshotError(f"damaged snapshot: {type(e).__name__}: {e}") from None
    finally:
        if collecting:
            gc.enable()


def _columns(doc: dict[str, Any]) -> dict[str, Any]:
    n, run = doc["n"], doc["run"]
    if type(n) is not int or n < 0:
        raise SnapshotError("the task count is damaged")
    if not isinstance(run, dict) or type(run["last_seq"]) is not int or not isinstance(run["meta"], dict):
        raise SnapshotError("the run's fields are damaged")
    if not {type(run[f]) for f in _RUN_TIMES} <= _NUMBERS or not isinstance(run["active"], int | float):
        raise SnapshotError("the run's times are damaged")
    # every task of a view had an event: a snapshot claiming more is not one (checked before
    # anything is made per task, so what it claims stays bounded by the log ``stored`` checked)
    if n > run["last_seq"]:
        raise SnapshotError("more tasks than events")
    ids = _unruns(doc["ids"], n)
    if len(ids) != n:
        raise SnapshotError("task ids do not match the task count")
    out: dict[str, Any] = {"n": n, "ids": ids, "task_id": ids, "id_runs": doc["ids"], "run": run}
    for f in STRINGS:
        _uninterned(out, f, doc[f], n, (str, _NONE))
    for f in (*INTEGERS, *NUMBERS, *PLAIN):
        col = _unsame(doc[f], n)
        if not isinstance(col, list) or len(col) != n:
            raise SnapshotError(f"column {f!r} does not have {n} values")
        kinds = set(map(type, col))
        if (f in INTEGERS and not kinds <= {int}) or (f in NUMBERS and not kinds <= _NUMBERS):
            raise SnapshotError(f"column {f!r} holds a value of another type")
        out[f] = col
    for f in SPARSE:
        pairs = doc[f]
        if not isinstance(pairs, list) or any(
            type(p) is not list or len(p) != 2 or type(p[0]) is not int or not 0 <= p[0] < n for p in pairs
        ):
            raise SnapshotError(f"column {f!r} is damaged")
        out[f] = pairs
    out["usage"], out["usage_parts"] = _unusage(doc["usage"], n)
    _uninterned(out, "resources", doc["resources"], n, (dict,))
    return out


def run_view(cols: dict[str, Any]) -> RunView:
    """A view holding the run's own fields of ``columns(data)`` and none of its tasks."""
    view = RunView()
    run = cols["run"]
    for f in (*_RUN_FIELDS, *_RUN_TIMES):
        setattr(view, f, run[f])
    return view


def _view(cols: dict[str, Any]) -> RunView:
    if cols["usage"] is None:
        has, *fields = cols["usage_parts"]
        usage: list[Any] = [None] * cols["n"]
        for i, r in zip(has, zip(*fields, strict=True), strict=True):
            usage[i] = dict(zip(USAGE, r, strict=True))
        cols = {**cols, "usage": usage}
    cols = {**cols, **{f: picked(cols, f) for f in (*STRINGS, "resources")}}
    view = run_view(cols)
    new = TaskView.__new__
    made = []
    for row in zip(*(cols[f] for f in _DENSE), strict=True):
        t = new(TaskView)
        t.__dict__ = dict(zip(_DENSE, row, strict=True))
        made.append(t)
    for f in SPARSE:
        for i, v in cols[f]:
            setattr(made[i], f, v)
    view.tasks = dict(zip(cols["ids"], made, strict=True))
    if len(view.tasks) != len(made):
        raise SnapshotError("a task id appears twice")
    return view


def _unsame(col: Any, n: int) -> Any:
    if type(col) is dict and col.keys() == {"all"} and type(col["all"]) in _SCALARS:
        return [col["all"]] * n
    return col


def picked(cols: dict[str, Any], f: str) -> list[Any]:
    """Each task's value of an interned column (``state``, ``node``, ``resources``)."""
    return list(map(cols[f + "_values"].__getitem__, cols[f + "_codes"]))


def _codes(values: list[Any], codes: Any, n: int) -> list[int]:
    codes = _unsame(codes, n)
    if not isinstance(codes, list) or len(codes) != n or not set(map(type, codes)) <= {int}:
        raise SnapshotError("an interned column is damaged")
    if codes and not 0 <= min(codes) <= max(codes) < len(values):
        raise SnapshotError("an interned column is damaged")
    return codes


def _uninterned(out: dict[str, Any], f: str, doc: Any, n: int, kind: tuple[type, ...]) -> None:
    """``out[f + "_codes"]`` and ``out[f + "_values"]``: the column as interned (``picked``)."""
    values = doc["values"]
    if not isinstance(values, list) or not all(type(v) in kind for v in values):
        raise SnapshotError(f"column {f!r} holds a value of another type")
    out[f + "_codes"] = _codes(values, doc["codes"], n)
    out[f + "_values"] = values


def _unusage(doc: Any, n: int) -> tuple[list[Any] | None, Any]:
    has = doc["has"]
    if type(has) is int and 0 <= has <= n:
        has = list(range(has))
    if not isinstance(has, list) or not set(map(type, has)) <= {int}:
        raise SnapshotError("column 'usage' is damaged")
    if has and not 0 <= min(has) <= max(has) < n:
        raise SnapshotError("column 'usage' is damaged")
    m = len(has)
    if "records" in doc:
        records, parts = doc["records"], None
        if not isinstance(records, list) or len(records) != m:
            raise SnapshotError("column 'usage' is damaged")
    else:
        fields = [_unsame(doc[k], m) for k in USAGE]
        if not all(isinstance(c, list) and len(c) == m for c in fields):
            raise SnapshotError("column 'usage' is damaged")
        return None, (has, *fields)  # records made only for a view (``_view``)
    col: list[Any] = [None] * n
    for i, r in zip(has, records, strict=True):
        col[i] = r
    return col, parts
