"""Reading a run's facts from a store for the read model (``runtime.readmodel``).

``read_run(store, run_id)`` returns the run's header, its ``RunTotals`` and one ``TaskFacts`` per
task instance; ``read_runs(store, limit)`` the newest runs' headers and totals. These are the one
place the read model's input is made: today by folding the event log (``runtime.view``) plus the
estimate and measured usage the events carry (``Collector``); a store that keeps a materialised
run summary can answer the same calls from its rows without changing any reader. A run that just
ended in this process needs no read at all: ``view_facts`` takes the engine's view and the
``Collector`` that was its hook.

Invariants: read-only; totals are priced at the prices and objective the run recorded when it
started (the workflow's spec is not needed and may be gone).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from podium.model import events as ev
from podium.model.cluster import Node
from podium.model.events import Event, RunRecord
from podium.model.resources import Resources
from podium.model.usage import USAGE_KEY, Usage, attempt_usage
from podium.model.workflow import Objective, Workflow
from podium.runtime.readmodel import RunTotals, TaskFacts
from podium.runtime.summary import Summary, summarize
from podium.runtime.view import RunView, TaskView, fold
from podium.types import Store


class RunFacts(NamedTuple):
    """What the read model is built from (and the folded view, for the terminal's table)."""

    record: RunRecord
    totals: RunTotals
    tasks: list[TaskFacts]
    view: RunView
    usage: dict[str, Usage]  #: task id -> its last measured attempt's usage


def read_run(store: Store, run_id: str) -> RunFacts:
    """The facts of run ``run_id``; ``NotFoundError`` if the store has no such run."""
    record = store.get_run(run_id)
    return facts(record, store.events(run_id))


def read_runs(store: Store, limit: int) -> list[tuple[RunRecord, RunTotals]]:
    """The newest ``limit`` runs (newest first): header and totals."""
    out = []
    for record in store.list_runs(limit):
        f = facts(record, store.events(record.run_id))
        out.append((record, f.totals))
    return out


def facts(record: RunRecord, events: Sequence[Event]) -> RunFacts:
    """The facts of a run from its header and its event log."""
    seen = Collector()
    seen(events, None)
    return view_facts(record, fold(events), seen)


def view_facts(record: RunRecord, view: RunView, seen: Collector) -> RunFacts:
    """The facts of a run from its folded view and what ``seen`` kept of its events."""
    est, usage = seen.estimates, seen.usage
    tasks = [_task(t, est.get(tid), usage.get(tid)) for tid, t in view.tasks.items()]
    return RunFacts(record, totals(view, seen.last_ts), tasks, view, usage)


class Collector:
    """What the read model needs of a run's events beyond its view: per task the estimate its
    last attempt started with and its last measured usage, and the time of the last event.
    Also an engine hook (``Engine(hooks=[...])``), so a run that just ended needs no second
    read of its log: ``complete`` says whether it saw every event after ``RunCreated``."""

    def __init__(self) -> None:
        self.estimates: dict[str, float | None] = {}
        self.usage: dict[str, Usage] = {}
        self.first_seq: int | None = None
        self.last_ts: float | None = None

    def __call__(self, events: Sequence[Event], view: object) -> None:
        if not events:
            return
        if self.first_seq is None:
            self.first_seq = events[0].seq
        started, estimates, usage = ev.TASK_STARTED, self.estimates, self.usage
        for e in events:
            if e.task_id is None:
                continue
            if e.type == started:
                est = e.data.get("est")
                estimates[e.task_id] = float(est) if isinstance(est, int | float) else None
            elif USAGE_KEY in e.data:
                u = attempt_usage(e.data)
                if u is not None:
                    usage[e.task_id] = u
        self.last_ts = events[-1].ts

    @property
    def complete(self) -> bool:
        return self.first_seq is not None and self.first_seq <= 2


def _task(t: TaskView, estimate: float | None, u: Usage | None) -> TaskFacts:
    return TaskFacts(
        t.task_id,
        t.state,
        t.attempt,
        t.node,
        t.queued_at,
        t.started_at,
        t.finished_at,
        t.duration,
        estimate,
        dict(t.resources or {}),
        u.cpu_time if u is not None else None,
        u.peak_memory if u is not None else None,
        u.source if u is not None else None,
        t.error,
        bool(t.cached),
        t.skip_reason,
        t.children,
    )


def totals(view: RunView, last_ts: float | None = None) -> RunTotals:
    """The run's totals from its folded view; ``last_ts``, the time of its last event, ends the
    wall time of a run that has not ended."""
    s = view_summary(view)
    start = view.started_at
    end = view.finished_at if view.finished_at is not None else last_ts
    wall = None if start is None else max(0.0, (end if end is not None else start) - start)
    counts = view.counts()
    return RunTotals(
        view.state,
        start,
        view.finished_at,
        wall,
        s.makespan,
        s.cost,
        s.objective,
        s.alpha,
        s.beta,
        counts,
        len(view.tasks),
    )


def view_summary(view: RunView) -> Summary:
    """T, R and F of a run read back from the store, at the prices and objective it recorded."""
    meta = view.meta or {}
    o = meta.get("objective") or {}
    objective = Objective(alpha=float(o.get("alpha", 1.0)), beta=float(o.get("beta", 0.0)))
    prices: Mapping[str, Any] = meta.get("prices") or {}
    nodes = {name: Node(name, Resources(), p) for name, p in prices.items() if isinstance(p, Mapping)}
    return summarize(view, Workflow("run", {}, objective=objective), nodes)


def last_usage(events: Iterable[Event]) -> dict[str, Usage]:
    """Task id -> the measured usage of its last measured attempt (``model.usage``)."""
    seen = Collector()
    seen(list(events), None)
    return seen.usage
