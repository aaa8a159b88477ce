"""Reading runs for the API and the web UI: the one module that knows how runs are stored.

Every route reads runs only through these functions, which return plain JSON values in the
shapes of the run read model (``RunSummary``, ``RunDetail``, ``TaskRow``, ``TaskDetail``;
schema ``podium.run/1``): ``list_runs``, ``run_summary``, ``run_detail``, ``task_detail``,
``events_after``, ``log_range`` and ``result_preview``. Until the store keeps a materialised
run summary they fold the event log, incrementally: a view per run is cached with the last
sequence number it has seen, so a live run costs only its new events per call and a finished
run is folded once. Invariants: nothing here writes to the store or executes anything read
from it; every value that leaves passes through ``redact``.
"""

from __future__ import annotations

import math
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from podium.errors import NotFoundError
from podium.model import states as st
from podium.model.events import Event, ResultRecord, RunRecord
from podium.runtime.owner import owner_gone, owner_pid
from podium.runtime.view import TaskView, recorded_deps, task_row
from podium.server.analysis import Attempt, critical_path, map_rows, track
from podium.server.index import RunIndex
from podium.server.redact import PREVIEW_MAX_BYTES, preview, redact

SCHEMA = "podium.run/1"
#: Views kept in memory (the most recently read runs).
CACHED_VIEWS = 64
#: Summaries of finished runs kept in memory (they never change until a resume).
CACHED_SUMMARIES = 100_000
#: Bytes of log text one call returns at most.
LOG_CHUNK = 256 * 1024
_ACTIVE = frozenset({st.RUN_CREATED_STATE, st.RUN_RUNNING})


@dataclass
class _Entry:
    view: Any  # RunView
    attempts: dict[str, list[Attempt]] = field(default_factory=dict)
    broken: str | None = None  # the log could not be folded past this point


class _Cache:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.views: OrderedDict[str, _Entry] = OrderedDict()
        self.finished: dict[str, tuple[float, dict[str, Any]]] = {}  # run_id -> (updated_at, summary)
        self.index = RunIndex()


_caches: weakref.WeakKeyDictionary[Any, _Cache] = weakref.WeakKeyDictionary()
_caches_lock = threading.Lock()


def _cache(store: Any) -> _Cache:
    with _caches_lock:
        c = _caches.get(store)
        if c is None:
            c = _caches[store] = _Cache()
        return c


def _entry(store: Any, run_id: str) -> _Entry:
    """The run's cached view, brought up to date with the events committed since."""
    from podium.model.states import IllegalTransition
    from podium.runtime.view import RunView

    cache = _cache(store)
    with cache.lock:
        entry = cache.views.get(run_id)
        if entry is None:
            entry = _Entry(RunView())
            cache.views[run_id] = entry
            while len(cache.views) > CACHED_VIEWS:
                cache.views.popitem(last=False)
        else:
            cache.views.move_to_end(run_id)
        if entry.broken is None:
            for e in store.events(run_id, entry.view.last_seq):
                try:
                    entry.view.apply(e)
                except IllegalTransition as err:
                    entry.broken = f"the event log cannot be read past seq {e.seq}: {err}"
                    break
                track(entry.attempts, e)
        return entry


def _record(store: Any, run_id: str) -> RunRecord:
    if not isinstance(run_id, str) or not run_id or len(run_id) > 200:
        raise NotFoundError(f"run {run_id!r} not found")
    return store.get_run(run_id)


def _summary(record: RunRecord, entry: _Entry) -> dict[str, Any]:
    from podium.model.cluster import Node
    from podium.model.resources import Resources
    from podium.model.workflow import Objective, Workflow
    from podium.runtime.summary import summarize

    view = entry.view
    obj = view.meta.get("objective") or {}
    alpha, beta = float(obj.get("alpha", 1.0)), float(obj.get("beta", 0.0))
    prices = view.meta.get("prices") or {}
    nodes = {n: Node(n, Resources(), p) for n, p in prices.items() if isinstance(p, dict)}
    s = summarize(view, Workflow(record.workflow, {}, objective=Objective(alpha, beta)), nodes)
    status = view.state or record.status
    attention = entry.broken
    if attention is None and status in _ACTIVE and record.owner and owner_gone(record.owner):
        attention = f"its orchestrator (process {owner_pid(record.owner)}) is gone; resume the run"
    start, end = view.started_at, (view.finished_at if status not in _ACTIVE else None)
    wall = None if start is None else max(0.0, (end if end is not None else time.time()) - start)
    counts = {k: v for k, v in view.counts().items() if v}
    return {
        "schema": SCHEMA,
        "run_id": record.run_id,
        "workflow": record.workflow,
        "status": status,
        "attention": attention,
        "params": redact(dict(record.params)),
        "created_at": record.created_at,
        "started_at": start,
        "finished_at": end,
        "updated_at": record.updated_at,
        "wall_time": wall,
        "T": _num(s.makespan),
        "R": _num(s.cost),
        "F": _num(s.objective),
        "alpha": alpha,
        "beta": beta,
        "counts": counts,
        "tasks_total": len(view.tasks),
        "owner": record.owner,
    }


def _num(x: float) -> float:
    return round(x, 9) if math.isfinite(x) else 0.0


def run_summary(store: Any, run_id: str) -> dict[str, Any]:
    """A run's ``RunSummary``; ``NotFoundError`` if there is no such run."""
    record = _record(store, run_id)
    cache = _cache(store)
    hit = cache.finished.get(run_id)
    if hit is not None and hit[0] == record.updated_at:
        return hit[1]
    out = _summary(record, _entry(store, run_id))
    if out["status"] in st.RUN_FINISHED and not record.owner:
        if len(cache.finished) >= CACHED_SUMMARIES:
            cache.finished.clear()
        cache.finished[run_id] = (record.updated_at, out)
    return out


#: Headers read again on every use of the runs index, and seconds between full re-reads.
NEWEST = 200
FULL_REFRESH = 30.0


def _headers(store: Any) -> list[RunRecord]:
    cache = _cache(store)
    index = cache.index
    if index.at == -math.inf:
        index.rebuild(store.list_runs(1 << 31))
        return index.listing()
    if not index.merge(store.list_runs(NEWEST)):  # more new runs than NEWEST since: read them all
        index.rebuild(store.list_runs(1 << 31))
    for run_id in index.live():
        try:
            index.merge([store.get_run(run_id)])
        except NotFoundError:
            pass
    if time.monotonic() - index.at > FULL_REFRESH and not index.refreshing:
        index.refreshing = True

        def refresh() -> None:
            try:
                index.rebuild(store.list_runs(1 << 31))
            except Exception:  # the next use tries again
                pass
            finally:
                index.refreshing = False

        threading.Thread(target=refresh, name="podium-runs-index", daemon=True).start()
    return index.listing()


def list_runs(
    store: Any,
    *,
    status: str | None = None,
    workflow: str | None = None,
    q: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[dict[str, Any]], int]:
    """One page of runs, newest first, filtered; and how many runs match in all."""
    records = _headers(store)
    if status:
        records = [r for r in records if r.status == status]
    if workflow:
        records = [r for r in records if r.workflow == workflow]
    if q:
        needle = q.lower()
        records = [r for r in records if needle in r.run_id.lower() or needle in r.workflow.lower()]
    page = records[offset : offset + limit]
    out = []
    for r in page:
        try:
            out.append(run_summary(store, r.run_id))
        except NotFoundError:  # deleted between the listing and now
            continue
    return out, len(records)


def _error(err: dict[str, Any] | None) -> dict[str, Any] | None:
    from podium.runtime.readmodel import error_object  # the read model's one failure shape

    return error_object(err)


def _task_row(tid: str, t: Any) -> dict[str, Any]:
    row = task_row(t)
    row["attempts"] = t.attempt
    row["usage"] = {"cpu_time": None, "peak_memory": None, "wall_time": t.duration, "source": None}
    row["error"] = _error(t.error)
    return row


def run_detail(store: Any, run_id: str, graph: Sequence[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A run's ``RunDetail``: its summary, plan, nodes, every task (map items included), maps,
    per-attempt spans and, given the workflow's graph, the graph and the critical path."""
    record = _record(store, run_id)
    entry = _entry(store, run_id)
    out = _summary(record, entry)
    view = entry.view
    plan = view.plan
    out["plan"] = (
        None
        if plan is None
        else {k: plan.get(k) for k in ("T", "R", "F", "lower_bound", "gap", "method", "nodes")}
        | {"spans": plan.get("spans") or {}}
    )
    prices = view.meta.get("prices") or {}
    out["nodes"] = [{"name": n, "capacity": {}, "prices": p, "speed": 1.0} for n, p in prices.items()]
    tasks = view.tasks
    if not graph:  # not a registered workflow: the graph its RunCreated recorded, if any
        deps = recorded_deps(view)
        graph = (
            None
            if deps is None
            else [
                {"name": n, "deps": d, "kind": None, "map": n in tasks and tasks[n].children is not None}
                for n, d in deps.items()
            ]
        )
    rows = [_task_row(tid, t) for tid, t in tasks.items()]
    if graph:
        rows += [_task_row(g["name"], TaskView(g["name"])) for g in graph if g["name"] not in tasks]
    out["tasks"] = rows
    out["maps"] = map_rows(view)
    # compact per-attempt spans: [task_id, attempt, node, start, end or null, outcome or null]
    out["spans"] = [
        [tid, a.attempt, a.node, a.started_at, a.finished_at, a.outcome]
        for tid, runs in entry.attempts.items()
        for a in runs
    ]
    out["graph"] = list(graph) if graph else None
    out["critical_path"] = critical_path(view, graph)
    out["last_seq"] = view.last_seq
    return out


def task_detail(store: Any, run_id: str, task_id: str) -> dict[str, Any]:
    """A task's ``TaskDetail``: its row, every attempt, its log tail and its result preview."""
    _record(store, run_id)
    entry = _entry(store, run_id)
    t = entry.view.tasks.get(task_id) if isinstance(task_id, str) else None
    if t is None:
        raise NotFoundError(f"run {run_id!r} has no task {task_id!r}")
    out = _task_row(task_id, t)
    attempts = []
    for a in entry.attempts.get(task_id, []):
        err = a.error or None
        detail = _error(err)
        if detail is not None and err is not None:
            detail["traceback"] = redact(str(err.get("traceback") or ""))
        attempts.append(
            {
                "attempt": a.attempt,
                "node": a.node,
                "started_at": a.started_at,
                "finished_at": a.finished_at,
                "duration": None if a.finished_at is None else round(a.finished_at - a.started_at, 6),
                "outcome": a.outcome,
                "error": detail,
                "resources": a.resources,
                "usage": _usage(err),
                "log_bytes": log_range(store, run_id, task_id, a.attempt, limit=0)["size"],
            }
        )
    out["attempts_detail"] = attempts
    out["log_tail"] = log_range(store, run_id, task_id, None, tail=64 * 1024)["text"]
    out["result"] = result_preview(store, run_id, task_id) if t.state == st.SUCCEEDED else None
    return out


def _usage(err: dict[str, Any] | None) -> dict[str, Any]:
    """What an attempt used where it was measured (a worker's peak memory, in its error)."""
    peak = p if type(p := ((err or {}).get("extra") or {}).get("peak_rss")) is int and p > 0 else None
    return {"cpu_time": None, "peak_memory": peak, "wall_time": None, "source": "process" if peak else None}


def events_after(store: Any, run_id: str, seq: int, limit: int = 1000) -> list[dict[str, Any]]:
    """Up to ``limit`` events with a sequence number above ``seq``, as JSON objects."""
    _record(store, run_id)
    return [event_json(e) for e in store.events(run_id, max(0, seq))[:limit]]


def event_json(e: Event) -> dict[str, Any]:
    return {
        "seq": e.seq,
        "type": e.type,
        "task_id": e.task_id,
        "attempt": e.attempt,
        "ts": e.ts,
        "data": redact(e.data) if e.data else {},
    }


def last_seq(store: Any, run_id: str) -> int:
    """The highest sequence number committed for the run (0 if none)."""
    _record(store, run_id)
    return _entry(store, run_id).view.last_seq


def log_range(
    store: Any,
    run_id: str,
    task_id: str,
    attempt: int | None,
    offset: int = 0,
    limit: int = LOG_CHUNK,
    tail: int | None = None,
) -> dict[str, Any]:
    """Captured output of one task attempt (the last one if ``attempt`` is None): bytes
    ``[offset, offset+limit)``, or the last ``tail`` bytes. The one place logs are read."""
    logs = getattr(store, "logs", None)
    text, size = "", 0
    if logs is not None:
        text, size = logs.read(run_id, task_id, attempt, offset, min(limit, LOG_CHUNK), tail)
    start = max(0, size - tail) if tail is not None else offset
    return {
        "run_id": run_id,
        "task_id": task_id,
        "attempt": attempt,
        "offset": start,
        "next_offset": start + len(text.encode()),
        "size": size,
        "text": redact(text),
        "available": logs is not None,
    }


def result_preview(store: Any, run_id: str, task_id: str) -> dict[str, Any] | None:
    """A size-capped, redacted preview of a task's committed result (None if it has none)."""
    one = getattr(store, "result", None)
    rec = one(run_id, task_id) if one is not None else store.results(run_id).get(task_id)
    return None if rec is None else _preview(rec)


def _preview(rec: ResultRecord) -> dict[str, Any]:
    # A result the store could not authenticate (or whose bytes changed) is described, never
    # decoded: it is not what the task returned.
    if rec.encoding == "artifact" and rec.verify():
        return {
            "bytes": len(rec.data),
            "encoding": rec.encoding,
            "note": "not previewed: kept as an artifact",
        }
    if len(rec.data) <= PREVIEW_MAX_BYTES and not rec.verify():
        return {
            "bytes": len(rec.data),
            "encoding": rec.encoding,
            "note": "not previewed: the stored result fails its checksum or authentication",
        }
    return preview(rec.data, rec.encoding)


def active_run_ids(records: Iterable[RunRecord]) -> list[str]:
    return [r.run_id for r in records if r.status in _ACTIVE]


def check_task(store: Any, run_id: str, task_id: str) -> int:
    """How many attempts task ``task_id`` started; ``NotFoundError`` if the run has no such task."""
    _record(store, run_id)
    t = _entry(store, run_id).view.tasks.get(task_id) if isinstance(task_id, str) else None
    if t is None:
        raise NotFoundError(f"run {run_id!r} has no task {task_id!r}")
    return int(t.attempt)


def result_previews(store: Any, run_id: str, offset: int, limit: int) -> tuple[list[dict[str, Any]], int]:
    """Previews of a page of the run's committed results (by task id), and how many there are."""
    _record(store, run_id)
    results = store.results(run_id)
    ids = sorted(results)
    page = [{"task_id": tid, "preview": _preview(results[tid])} for tid in ids[offset : offset + limit]]
    return page, len(ids)
