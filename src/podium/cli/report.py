"""``podium report RUN -o report.html``: the run report as one self-contained HTML file.

Invariants: an unknown run or an unwritable output is one line and exit 2, nothing written;
the tasks' dependencies (for the critical path) come from the run's spec (checked against its
recorded digest) or, when it cannot be loaded any more, from the graph the run recorded when it
was created; a run with neither loses the critical path, not the report.
"""

from __future__ import annotations

from typing import Any

import click

from podium.cli import cli
from podium.cli.stores import store_option
from podium.errors import PodiumError, UsageError


def _workflow(record: Any) -> tuple[Any, str | None]:
    from podium.load import load_source

    try:
        return load_source(record.source), None
    except PodiumError as e:
        return None, str(e).splitlines()[0]


def _recorded(store: Any, run_id: str) -> bool:
    """Whether the run recorded its task graph (then the spec is not needed)."""
    from podium.runtime.view import fold, recorded_deps

    return recorded_deps(fold(store.events(run_id)[:1])) is not None


@cli.command("report")
@click.argument("run_id")
@click.option("-o", "--output", "output", required=True, type=click.Path(dir_okay=False), help="HTML file.")
@store_option
def report_cmd(run_id: str, output: str, store_url: str | None) -> None:
    """Write a self-contained HTML report of a run: T, R, F and the plan, Gantt, usage, cost,
    failures, slowest tasks and the critical path."""
    from podium.cli.stores import open_cli_store
    from podium.report import write_report

    store = open_cli_store(store_url, read_only=True)
    try:
        record = store.get_run(run_id)
        workflow, problem = _workflow(record)
        recorded = workflow is None and _recorded(store, run_id)
        try:
            path = write_report(store, run_id, output, workflow)
        except OSError as e:
            raise UsageError(f"{output}: cannot write the report: {e.strerror or e}") from None
    finally:
        store.close()
    if problem and not recorded:
        click.echo(f"note: no critical path: the run's spec cannot be loaded ({problem})", err=True)
    click.echo(f"report: {path}")
