"""`podium resume` and `podium cancel`: continuing and stopping runs from the command line.

Invariants: ``resume`` continues a run from its recorded file as it is now (succeeded tasks
are not run again; a changed file must keep the DAG's shape, ``podium.runtime.rerun``), and
with ``--from TASK`` runs TASK and its downstream again; ``cancel`` only asks (the run's owner
stops its tasks and marks the run cancelled) and wakes the owner at once only when it is
provably that run's process.
"""

from __future__ import annotations

import contextlib
import os
import signal
from dataclasses import replace
from typing import Any

import click

from podium.cli import cli
from podium.cli.metrics import metrics_options
from podium.cli.run import _ECHO_HELP, _RAY_HELP, CLUSTER_HELP, _execute, artifacts_option
from podium.cli.stores import open_cli_store as _store
from podium.cli.stores import store_option
from podium.errors import ConflictError


@cli.command("resume")
@click.argument("run_id")
@store_option
@artifacts_option
@click.option(
    "--from",
    "rerun_from",
    metavar="TASK",
    help="Run TASK and everything downstream of it again (also on a finished run).",
)
@click.option("--cluster", type=click.Path(dir_okay=False), help=CLUSTER_HELP)
@click.option("--gantt", type=click.Path(dir_okay=False), help="Write the run's Gantt chart (HTML) here.")
@click.option("--no-progress", is_flag=True, help="No live progress display.")
@click.option("--echo-logs/--no-echo-logs", default=None, help=_ECHO_HELP)
@click.option("--ray", "ray_address", metavar="ADDRESS", help=_RAY_HELP)
@metrics_options
def resume_cmd(
    run_id: str,
    store_url: str | None,
    cluster: str | None,
    gantt: str | None,
    no_progress: bool,
    ray_address: str | None,
    metrics_port: int | None = None,
    metrics_host: str = "127.0.0.1",
    metrics_linger: float = 0.0,
    artifacts_url: str | None = None,
    echo_logs: bool | None = None,
    rerun_from: str | None = None,
) -> None:
    """Continue an interrupted, failed or cancelled run; tasks that succeeded are not run again.

    The run's file is loaded as it is now: after a fix, the tasks that did not succeed run the
    new code, as long as the tasks and their dependencies are the same."""
    from podium.load import reload_source

    store = _store(store_url, read_only=True)
    try:
        record = store.get_run(run_id)
        if record.status == "succeeded" and rerun_from is None and not gantt:
            return _nothing_to_do(store, record)
    finally:
        store.close()
    loaded = reload_source(record.source)
    workflow = loaded.workflow
    if record.source.get("keep_going"):  # `podium run --keep-going` holds for its resumes too
        workflow = replace(workflow, fail_fast=False)
    _execute(
        workflow,
        None,
        store_url=store_url,
        cluster=cluster,
        run_id=run_id,
        source=loaded.source,
        rerun_from=rerun_from,
        progress=not no_progress,
        resume=True,
        gantt=gantt,
        ray_address=ray_address,
        metrics=(metrics_port, metrics_host, metrics_linger),
        artifacts_url=artifacts_url,
        echo_logs=echo_logs,
    )


def _nothing_to_do(store: Any, record: Any) -> None:
    """A run that succeeded has nothing to resume: say so, with its T, R and F (read from its
    snapshot when it has one: a finished 100,000-task run answers without reading its log)."""
    from podium.cli.terminal import safe
    from podium.runtime.columns import read_columns, totals
    from podium.runtime.reading import read_run

    cols = read_columns(store, record.run_id)
    t = totals(cols) if cols is not None else read_run(store, record.run_id).totals
    click.echo(
        safe(
            f"run {record.run_id} already succeeded: nothing to resume "
            f"(podium resume {record.run_id} --from TASK runs TASK and what depends on it again)"
        )
    )
    click.echo(f"run {safe(record.run_id)} succeeded   T = {t.T:.3f} s   R = {t.R:.6f}   F = {t.F:.4f}")


@cli.command("cancel")
@click.argument("run_id")
@store_option
def cancel_cmd(run_id: str, store_url: str | None) -> None:
    """Ask a running run to stop; it ends as cancelled and can be resumed."""
    from podium.model import states as st
    from podium.runtime.owner import owner_process

    store = _store(store_url, read_only=True)
    try:
        record = store.get_run(run_id)
        if record.status in (st.RUN_SUCCEEDED, st.RUN_FAILED, st.RUN_CANCELLED):
            raise ConflictError(f"run {run_id} already finished ({record.status}): nothing to cancel")
        pid = owner_process(record.owner)
        if pid is None and _owner_gone(record.owner):
            raise ConflictError(
                f"run {run_id} is no longer running: its orchestrator ({record.owner}) has gone; "
                f"continue it with: podium resume {run_id}"
            )
        store.request_cancel(run_id)
    finally:
        store.close()
    if pid is not None:  # provably the run's owner (same PID and start time): wake it at once
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGINT)
    click.echo(f"cancel requested for run {run_id}")


def _owner_gone(owner: str) -> bool:
    """The owner was recorded with its start time on this host and no such process lives (an
    owner on another host, or recorded by an older Podium, sees the request in the store)."""
    import socket

    parts = owner.split(":")
    return len(parts) == 3 and parts[0] == socket.gethostname()
