"""A run's view as bytes: ``encode(view)`` and ``decode(data)``, the run summary a store keeps.

Reading a run by folding its whole log costs time in proportion to every event it ever wrote
(a 100,000-task map writes 300,000). The engine therefore hands its store, at checkpoints and at
the run's end, a snapshot of the view it keeps anyway, stamped with the seq of the last event the
view has applied (``types.SnapshotStore``); a reader decodes the snapshot and folds only the
events after that seq (``runtime.reading.load_view``), and gets the view a full fold gives.

The format (``FORMAT``) is columnar JSON (UTF-8): the task ids in view order, one
column per ``TaskView`` field (strings and resource dicts interned; numbers as raw little-endian
doubles in base64, so no float is formatted or parsed; each attempt's measured usage as columns
of its own), sparse columns for the fields most tasks leave at their default, and the run's own
fields. A column whose values do not fit its compact form (a number that is not one, a usage
record of another shape) is kept as plain JSON instead. No pickle: a snapshot is read like an
event (data a store holds), never executed. ``columns(data)`` gives the decoded columns without
making a view (for readers that render every task, ``runtime.taskjson``).

Invariants:
- ``decode(encode(view))`` is a view equal to ``view`` field by field (numbers of the number
  columns read back as floats, 1 as 1.0; a float that is not a number reads back as None: the
  read model shows both as null); every ``TaskView`` field is in ``FIELDS`` (a test checks it).
- Pure: no clock, no I/O. Anything a decoder does not recognise (another format, damage, a type
  out of place) raises ``SnapshotError``; the reader then folds the log.
"""

from __future__ import annotations

import base64
import binascii
import gc
import json
import sys
from array import array
from operator import attrgetter, itemgetter
from typing import Any

from podium.runtime.view import RunView, TaskView

FORMAT = "podium.snapshot/1"
_NAN = float("nan")
_LITTLE = sys.byteorder == "little"
_NONE = type(None)
_NUMBER_TYPES = frozenset({float, int, _NONE})
_TASK_ID = attrgetter("task_id")

STRINGS = ("state", "node")  #: interned
INTEGERS = ("attempt", "failures", "lost", "ooms")
NUMBERS = ("queued_at", "started_at", "finished_at", "duration", "busy", "est")  #: doubles
SPARSE = ("memory", "error", "cached", "skip_reason", "children", "gpus", "ranks")  #: [i, value]
#: The keys of a usage record (``model.usage.Usage.as_dict``), kept as columns of their own.
USAGE = ("cpu_time", "peak_memory", "wall_time", "source")
FIELDS = ("task_id", *STRINGS, *INTEGERS, *NUMBERS, *SPARSE, "usage", "resources")
_RUN_FIELDS = ("state", "last_seq", "created_at", "started_at", "finished_at", "meta", "plan")
_RUN_TIMES = ("last_ts", "active", "span_start")


class SnapshotError(ValueError):
    """The bytes are not a snapshot this version reads."""


# -- encoding ---------------------------------------------------------------------------------
def encode(view: RunView) -> bytes:
    """The view as a snapshot (see the module docstring)."""
    tasks = list(view.tasks.values())
    doc: dict[str, Any] = {"format": FORMAT, "n": len(tasks), "ids": list(map(_TASK_ID, tasks))}
    run: dict[str, Any] = {f: getattr(view, f) for f in _RUN_FIELDS}
    run["times"] = [_NAN if x is None else float(x) for x in (view.last_ts, view.active, view.span_start)]
    doc["run"] = run
    for f in STRINGS:
        doc[f] = _interned(list(map(attrgetter(f), tasks)))
    for f in INTEGERS:
        doc[f] = list(map(attrgetter(f), tasks))
    for f in NUMBERS:
        doc[f] = _numbers(list(map(attrgetter(f), tasks)))
    for f in SPARSE:
        col, default = list(map(attrgetter(f), tasks)), getattr(TaskView, f)
        doc[f] = [[i, v] for i, v in enumerate(col) if v is not default and v != default]
    doc["usage"] = _usage(list(map(attrgetter("usage"), tasks)))
    resources = list(map(attrgetter("resources"), tasks))
    keys = list(map(id, resources))
    by_key = dict(zip(keys, resources))  # tasks of one spec share one dict: intern by identity
    distinct = list(by_key)
    code = dict(zip(distinct, range(len(distinct))))
    doc["resources"] = {"values": [by_key[k] for k in distinct], "codes": list(map(code.__getitem__, keys))}
    return json.dumps(doc, separators=(",", ":"), default=_unknown).encode()


def _unknown(o: Any) -> Any:
    if isinstance(o, tuple | set | frozenset):
        return list(o)
    raise TypeError(f"{type(o).__name__} in a run's view")


def _numbers(col: list[Any]) -> dict[str, Any]:
    kinds = set(map(type, col))
    if not kinds <= _NUMBER_TYPES:
        return {"json": col}
    a = array("d", [_NAN if x is None else x for x in col] if _NONE in kinds else col)
    if not _LITTLE:  # pragma: no cover - the format is little-endian everywhere
        a.byteswap()
    return {"d": base64.b64encode(a.tobytes()).decode("ascii")}


def _interned(col: list[Any]) -> dict[str, Any]:
    values = list(dict.fromkeys(col))
    code = dict(zip(values, range(len(values))))
    return {"values": values, "codes": list(map(code.__getitem__, col))}


def _usage(col: list[Any]) -> dict[str, Any]:
    """Usage records as columns when every one is ``Usage.as_dict()``-shaped, else as JSON."""
    has = [i for i, u in enumerate(col) if u is not None]
    records = [col[i] for i in has]
    plain = {"has": has, "json": records}
    if not set(map(type, records)) <= {dict} or not set(map(len, records)) <= {len(USAGE)}:
        return plain
    try:
        cpu, peak, wall, source = (list(map(itemgetter(k), records)) for k in USAGE)
    except KeyError:
        return plain
    out = {"has": has, "cpu_time": _numbers(cpu), "wall_time": _numbers(wall), "peak_memory": _numbers(peak)}
    if not set(map(type, peak)) <= {int, _NONE} or any("json" in c for c in out.values() if type(c) is dict):
        return plain
    out["source"] = _interned(source)
    return out


# -- decoding ---------------------------------------------------------------------------------
def columns(data: bytes) -> dict[str, Any]:
    """The snapshot's columns, checked: ``ids``, ``n``, ``run`` (the run's fields, ``times``
    as ``[last_ts, active, span_start]``), one list per task field (``usage``: the records,
    None where a task has none; sparse fields as ``[index, value]`` pairs), and
    ``usage_parts``: the usage records' own columns ``(indices, cpu_time, peak_memory,
    wall_time, source)`` when they were kept as columns, else None."""
    try:
        doc = json.loads(data)
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise SnapshotError(f"not a {FORMAT} snapshot")
        return _columns(doc)
    except SnapshotError:
        raise
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, binascii.Error) as e:
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
    n, ids = doc["n"], doc["ids"]
    if not isinstance(n, int) or not isinstance(ids, list) or len(ids) != n:
        raise SnapshotError("task ids do not match the task count")
    if not set(map(type, ids)) <= {str}:
        raise SnapshotError("a task id is not a string")
    out: dict[str, Any] = {"n": n, "ids": ids, "task_id": ids}
    run = doc["run"]
    if not isinstance(run, dict) or not isinstance(run["last_seq"], int) or not isinstance(run["meta"], dict):
        raise SnapshotError("the run's fields are damaged")
    times = run["times"]
    if not isinstance(times, list) or len(times) != 3 or not set(map(type, times)) <= {float, int}:
        raise SnapshotError("the run's times are damaged")
    out["run"] = run
    for f in STRINGS:
        out[f] = _uninterned(doc[f], n, str)
    for f in INTEGERS:
        col = doc[f]
        if not isinstance(col, list) or len(col) != n or not set(map(type, col)) <= {int}:
            raise SnapshotError(f"column {f!r} is not {n} integers")
        out[f] = col
    for f in NUMBERS:
        out[f] = _unnumbered(doc[f], n)
    for f in SPARSE:
        pairs = doc[f]
        if not isinstance(pairs, list) or any(
            type(p) is not list or len(p) != 2 or type(p[0]) is not int or not 0 <= p[0] < n for p in pairs
        ):
            raise SnapshotError(f"column {f!r} is damaged")
        out[f] = pairs
    out["usage"], out["usage_parts"] = _unusage(doc["usage"], n)
    res = doc["resources"]
    values, codes = res["values"], res["codes"]
    if not isinstance(values, list) or not all(isinstance(v, dict) for v in values):
        raise SnapshotError("column 'resources' is damaged")
    out["resources"] = _pick(values, codes, n)
    return out


def _view(cols: dict[str, Any]) -> RunView:
    view = RunView()
    run = cols["run"]
    for f in _RUN_FIELDS:
        setattr(view, f, run[f])
    last_ts, active, span_start = (None if x != x else float(x) for x in run["times"])
    view.last_ts, view.active, view.span_start = last_ts, active or 0.0, span_start
    new = TaskView.__new__
    dense = ("task_id", *STRINGS, *INTEGERS, *NUMBERS, "usage", "resources")
    made = []
    for row in zip(*(cols[f] for f in dense), strict=True):
        t = new(TaskView)
        t.__dict__ = dict(zip(dense, row))
        made.append(t)
    for f in SPARSE:
        for i, v in cols[f]:
            setattr(made[i], f, v)
    view.tasks = dict(zip(cols["ids"], made))
    if len(view.tasks) != len(made):
        raise SnapshotError("a task id appears twice")
    return view


def _pick(values: list[Any], codes: Any, n: int) -> list[Any]:
    if not isinstance(codes, list) or len(codes) != n or not set(map(type, codes)) <= {int}:
        raise SnapshotError("an interned column is damaged")
    if codes and not 0 <= min(codes) <= max(codes) < len(values):
        raise SnapshotError("an interned column is damaged")
    return [values[c] for c in codes]


def _uninterned(doc: Any, n: int, kind: type) -> list[Any]:
    values = doc["values"]
    if not isinstance(values, list) or not set(map(type, values)) <= {kind, type(None)}:
        raise SnapshotError("an interned column holds a value of another type")
    return _pick(values, doc["codes"], n)


def _unnumbered(doc: Any, n: int) -> list[Any]:
    if "json" in doc:
        col = doc["json"]
        if not isinstance(col, list) or len(col) != n:
            raise SnapshotError("a column of numbers is damaged")
        return col
    a = array("d")
    a.frombytes(base64.b64decode(doc["d"], validate=True))
    if len(a) != n:
        raise SnapshotError(f"a column of numbers has {len(a)} values, not {n}")
    if not _LITTLE:  # pragma: no cover
        a.byteswap()
    return [None if x != x else x for x in a]


def _unusage(doc: Any, n: int) -> tuple[list[Any], Any]:
    has = doc["has"]
    if not isinstance(has, list) or not set(map(type, has)) <= {int} or (has and not 0 <= min(has) <= max(has) < n):
        raise SnapshotError("column 'usage' is damaged")
    col: list[Any] = [None] * n
    if "json" in doc:
        records = doc["json"]
        if not isinstance(records, list) or len(records) != len(has):
            raise SnapshotError("column 'usage' is damaged")
        parts = None
    else:
        m = len(has)
        cpu, wall = _unnumbered(doc["cpu_time"], m), _unnumbered(doc["wall_time"], m)
        peak = [None if x is None else int(x) for x in _unnumbered(doc["peak_memory"], m)]
        source = _uninterned(doc["source"], m, str)
        parts = (has, cpu, peak, wall, source)
        records = [
            {"cpu_time": c, "peak_memory": p, "wall_time": w, "source": s}
            for c, p, w, s in zip(cpu, peak, wall, source, strict=True)
        ]
    for i, r in zip(has, records, strict=True):
        col[i] = r
    return col, parts
