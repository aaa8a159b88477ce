"""Reading a run's facts from a store for the read model (``runtime.readmodel``).

``read_run(store, run_id)`` returns the run's header, its ``RunTotals`` and one ``TaskFacts`` per
task instance; ``read_runs(store, limit)`` the newest runs' headers and totals. These are the one
place the read model's input is made: from the run's view (``runtime.view``), which carries the
estimate and the measured usage of each task's last attempt too. ``load_view`` makes that view
from the store's snapshot of it (``runtime.snapshot``) and the events written after it, and
folds the whole log only for a run without one. A run that just ended in this process needs no
read at all: ``view_facts`` takes the engine's own view.

Invariants: read-only; ``load_view`` gives the view a fold of the whole log gives; totals are
priced at the prices and objective the run recorded when it started (the workflow's spec is not
needed and may be gone).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from podium.model.events import Event, RunRecord
from podium.model.usage import Usage, record_usage
from podium.model.workflow import Workflow
from podium.runtime import columns
from podium.runtime.columns import read_columns
from podium.runtime.readmodel import RunTotals, TaskFacts
from podium.runtime.snapshot import SnapshotError, decode, stored
from podium.runtime.summary import Summary, recorded_pricing, run_totals, summarize
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
    return view_facts(record, load_view(store, run_id))


def read_runs(store: Store, limit: int) -> list[tuple[RunRecord, RunTotals]]:
    """The newest ``limit`` runs (newest first): header and totals (of a run whose snapshot holds
    its whole log, from the snapshot's columns without making its view)."""
    out = []
    for record in store.list_runs(limit):
        cols = read_columns(store, record.run_id)
        out.append(
            (record, columns.totals(cols) if cols is not None else totals(load_view(store, record.run_id)))
        )
    return out


def load_view(store: Store, run_id: str) -> RunView:
    """The run's view: its store's snapshot (``runtime.snapshot``) with the events written after
    it applied, or, without a snapshot this version can read, a fold of the whole log."""
    kept = stored(store, run_id)
    if kept is not None:
        seq, data, after = kept
        try:
            view = decode(data)
        except SnapshotError:
            view = None
        if view is not None and view.last_seq == seq:
            for e in after:
                view.apply(e)
            return view
    return fold(store.events(run_id))


def facts(record: RunRecord, events: Sequence[Event]) -> RunFacts:
    """The facts of a run from its header and its event log."""
    return view_facts(record, fold(events))


def view_facts(record: RunRecord, view: RunView) -> RunFacts:
    """The facts of a run from its view (a fold of its log, or the engine's own view)."""
    usage: dict[str, Usage] = {}
    tasks = []
    for tid, t in view.tasks.items():
        u = record_usage(t.usage) if t.usage is not None else None
        if u is not None:
            usage[tid] = u
        tasks.append(_task(t, u))
    return RunFacts(record, totals(view), tasks, view, usage)


def _task(t: TaskView, u: Usage | None) -> TaskFacts:
    est = t.est
    return TaskFacts(
        t.task_id,
        t.state,
        t.attempt,
        t.node,
        t.queued_at,
        t.started_at,
        t.finished_at,
        t.duration,
        float(est) if isinstance(est, int | float) else None,
        dict(t.resources or {}),
        u.cpu_time if u is not None else None,
        u.peak_memory if u is not None else None,
        u.source if u is not None else None,
        t.error,
        bool(t.cached),
        t.skip_reason,
        t.children,
    )


def totals(view: RunView) -> RunTotals:
    """The run's totals from its view (R priced as ``view_summary`` prices it)."""
    return run_totals(view, view_summary(view).cost, view.counts(), len(view.tasks))


def view_summary(view: RunView) -> Summary:
    """T, R and F of a run read back from the store, at the prices and objective it recorded."""
    objective, nodes = recorded_pricing(view.meta)
    return summarize(view, Workflow("run", {}, objective=objective), nodes)
