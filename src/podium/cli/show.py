"""`podium runs` and `podium show`: reading runs from the command line.

Invariants: read-only (they never change a run); every string that came from a spec or a task is
made terminal-safe before it is printed; ``--json`` prints one JSON document and nothing else.
"""

from __future__ import annotations

import json
import time
from typing import Any

import click

from podium.cli import cli
from podium.cli.stores import open_cli_store as _store
from podium.cli.stores import store_option
from podium.cli.terminal import safe


@cli.command("runs")
@store_option
@click.option("-n", "--limit", default=20, show_default=True, type=click.IntRange(1, 10_000))
@click.option(
    "--json", "as_json", is_flag=True, help="Print the runs as JSON (schema podium.run/1, docs/json.md)."
)
def runs_cmd(store_url: str | None, limit: int, as_json: bool = False) -> None:
    """List recent runs, newest first."""
    from rich.console import Console
    from rich.table import Table

    store = _store(store_url, read_only=True)
    # which store was read, on stderr: stdout stays the table
    click.echo(f"store: {safe(_located(store_url))}", err=True)
    try:
        if as_json:
            from podium.runtime.reading import read_runs
            from podium.runtime.readmodel import run_object

            click.echo(_dumps([run_object(r, t) for r, t in read_runs(store, limit)]))
            return
        records = store.list_runs(limit)
        notes = store.attention()
    finally:
        store.close()
    from rich.text import Text

    table = Table("run id", "workflow", "status", "created", "updated")
    for r in records:
        status = f"{r.status} (!)" if r.run_id in notes else r.status
        row = (r.run_id, r.workflow, status, _ts(r.created_at), _ts(r.updated_at))
        table.add_row(*(Text(safe(x)) for x in row))
    Console().print(table)
    for r in records:
        if r.run_id in notes:
            click.echo(safe(f"(!) run {r.run_id} needs attention: podium show {r.run_id}"))


@cli.command("show")
@click.argument("run_id")
@click.argument("task", required=False)
@store_option
@click.option("--events", "with_events", is_flag=True, help="Also print the event log.")
@click.option("--gantt", type=click.Path(dir_okay=False), help="Write the run's Gantt chart (HTML) here.")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the run as JSON (schema podium.run/1, docs/json.md; per task: estimate and measured use).",
)
def show_cmd(
    run_id: str, task: str | None, store_url: str | None, with_events: bool, gantt: str | None, as_json: bool
) -> None:
    """Show a run: its tasks, states, attempts, durations and T, R, F; with TASK, that task's detail."""
    store = _store(store_url, read_only=True)
    if task is not None:
        from podium.cli.detail import show_task

        return show_task(store, run_id, task)
    if as_json and not (with_events or gantt) and _json_from_snapshot(store, run_id):
        return
    from podium.cli.progress import print_view
    from podium.runtime.reading import read_run
    from podium.runtime.readmodel import run_document

    try:
        facts = read_run(store, run_id)
        kept = store.results(run_id, artifacts_only=True) if as_json else {}
        events = store.events(run_id) if with_events else []
        notes = store.attention(run_id).get(run_id, [])
        if gantt:
            from podium.cli.gantt import write_gantt

            write_gantt(store, run_id, gantt)
    finally:
        store.close()
    if as_json:
        from podium.runtime.lineage import artifact_objects

        doc = run_document(facts.record, facts.totals, facts.tasks, attention=notes)
        doc["artifacts"] = artifact_objects(kept)  # which task and inputs made each (lineage)
        click.echo(_dumps(doc))
        return
    print_view(facts.record, facts.view, facts.usage)
    for note in notes:
        click.echo(f"needs attention: {safe(note)}")
    if with_events:
        for e in events:
            click.echo(safe(f"{e.seq:6d} {_ts(e.ts)} {e.type:14s} {e.task_id or '-'} {e.attempt} {e.data}"))


def _json_from_snapshot(store: Any, run_id: str) -> bool:
    """Print ``show --json`` from the run's snapshot when it holds the whole run (a finished run,
    as a rule), without making its view: True if it did (the store is then closed)."""
    from podium.runtime.columns import document_text, read_columns
    from podium.runtime.readmodel import attention_notes

    try:
        record = store.get_run(run_id)
        cols = read_columns(store, run_id)
        if cols is None:
            return False
        kept = store.results(run_id, artifacts_only=True)
        notes = attention_notes(store.attention(run_id).get(run_id, []))
    except BaseException:
        store.close()
        raise
    store.close()
    artifacts: list[Any] = []
    if kept:  # (lineage imports the value codec: only when there is something to show)
        from podium.runtime.lineage import artifact_objects

        artifacts = artifact_objects(kept)
    for piece in document_text(record, cols, {"attention": notes, "artifacts": artifacts}):  # their order
        click.echo(piece, nl=False)
    click.echo()
    return True


def _dumps(doc: object) -> str:
    # compact, as from a snapshot; a param value JSON cannot hold (a run started from Python)
    # is shown as its text
    return json.dumps(doc, default=str, separators=(",", ":"))


def _located(store_url: str | None) -> str:
    from podium.cli.stores import locate_cli_store

    return str(locate_cli_store(store_url).shown)


def _ts(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))
