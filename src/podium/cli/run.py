"""`podium run`: running workflows from the command line (``resume``/``cancel`` in ``cli.resume``).

Invariants: a spec, parameter or capacity problem is reported before any run is written (the
spec's problems, its tasks that fit no node and the cluster file's problems together); a
run shows live progress (done / running / failed / pending, elapsed, ETA) and ends with a
summary table and T, R, F; Ctrl-C or SIGTERM cancels cleanly (running tasks stopped, the run
marked cancelled, resumable) and exits 130.
"""

from __future__ import annotations

import contextlib
import signal
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import click

from podium.cli import RunInterrupted, RunNotSucceeded, cli
from podium.cli.gantt import write_gantt
from podium.cli.grants import grant_options
from podium.cli.metrics import metrics_options, start_exporter
from podium.cli.numbers import SECONDS, Finite
from podium.cli.stores import open_cli_store as _store
from podium.cli.stores import store_option
from podium.cli.terminal import safe
from podium.errors import UsageError


# --- Ray (``--ray ADDRESS``): the run's tasks go to a Ray cluster instead of local pools --------
def _executor(cluster: str | None, ray_address: str | None, nodes: list[Any] | None = None) -> Any:
    """The run's executor: ``RayExecutor`` with ``--ray`` (``local`` starts a local Ray; a cluster
    file then only prices the Ray nodes), else the local executor on the cluster file's nodes
    (``nodes``, when the caller already read them)."""
    if ray_address:
        from podium.executors.ray import RayExecutor
        from podium.load.cluster import load_cluster

        return RayExecutor(ray_address, cluster=load_cluster(cluster) if cluster else None)
    from podium.executors.local import LocalExecutor

    return LocalExecutor(nodes if nodes is not None else _nodes(cluster))


#: ``--artifacts URL`` of the commands that run tasks (``run``, ``resume``).
artifacts_option = click.option(
    "--artifacts",
    "artifacts_url",
    metavar="URL",
    help="Keep large results here: a folder, file:///folder or s3://bucket/prefix (default: beside it).",
)
_RAY_HELP = "Run on the Ray cluster at ADDRESS (host:port, ray://..., auto) or 'local' to start one."
_ECHO_HELP = "Also print what tasks write (default: only without live progress); podium logs has it."
CLUSTER_HELP = (
    "Cluster file (docs/cluster.md): nodes with capacities and prices. Without --ray they are not "
    "separate machines: every node's tasks run on this machine, sharing it; with --ray it prices Ray's nodes."
)
# ------------------------------------------------------------------------------------------------


def shared_machine(cluster: str, count: int) -> str:
    """The summary's line saying that a cluster file's nodes are not machines of their own."""
    if count == 1:
        return f"the node of {cluster} is this machine (the local executor runs its tasks here)"
    return (
        f"the {count} nodes of {cluster} share this machine (the local executor runs every node's tasks here)"
    )


def _nodes(cluster: str | None) -> list[Any]:
    if cluster:
        from podium.load.cluster import load_cluster

        return list(load_cluster(cluster).nodes)
    from podium.executors.local import detect_node

    return [detect_node()]


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def _execute(
    workflow: Any,
    params: dict[str, Any] | None,
    *,
    store_url: str | None,
    cluster: str | None,
    run_id: str | None,
    source: dict[str, Any] | None,
    progress: bool,
    resume: bool = False,
    dispatch: str = "critical_path",
    gantt: str | None = None,
    ray_address: str | None = None,
    engine_options: dict[str, Any] | None = None,
    metrics: tuple[int | None, str, float] | None = None,
    artifacts_url: str | None = None,
    echo_logs: bool | None = None,
    rerun_from: str | None = None,
    nodes: list[Any] | None = None,
) -> None:
    from podium.cli.progress import Progress, print_summary
    from podium.cli.stores import cli_store_url
    from podium.executors.capture import set_echo
    from podium.runtime.engine import Engine, new_run_id
    from podium.store.artifact_url import open_artifacts

    artifacts = open_artifacts(artifacts_url, cli_store_url(store_url))
    exporter = start_exporter(metrics)  # before the store: a port in use fails before any run
    store = _store(store_url)
    try:
        executor = _executor(cluster, ray_address, nodes)
    except BaseException:
        store.close()
        raise
    run_id = run_id or new_run_id()
    show = progress and sys.stderr.isatty()
    set_echo(not show if echo_logs is None else echo_logs, safe)  # task output is stored either way
    prog = Progress(workflow, run_id, live=show)
    hooks = [prog.hook]
    if exporter is not None:  # --metrics-port: timed store and executor, and the run's hook
        store, executor = exporter.wrap(store, executor)
        hooks.append(exporter.track(run_id, workflow))
    options = dict(engine_options or {}, artifacts=artifacts)
    engine = Engine(store, executor, hooks=hooks, dispatch=dispatch, **options)
    try:
        with _sigterm_as_interrupt(), prog:
            if resume:
                result = engine.resume(run_id, workflow, source=source, rerun_from=rerun_from)
            else:
                result = engine.run(workflow, params, run_id=run_id, source=source)
        if gantt:
            write_gantt(store, run_id, gantt)
    except KeyboardInterrupt:
        if gantt:
            write_gantt(store, run_id, gantt)
        raise RunInterrupted(f"run {run_id} cancelled; continue it with: podium resume {run_id}") from None
    finally:
        executor.shutdown(wait=False)
        store.close()
    print_summary(result)
    if cluster and not ray_address:
        click.echo(safe(shared_machine(cluster, len(nodes if nodes is not None else executor.nodes()))))
    if gantt:
        click.echo(f"gantt chart: {gantt}")
    if not result.ok:
        raise RunNotSucceeded(f"run {run_id} {result.status}; continue it with: podium resume {run_id}")


@cli.command("run")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("-p", "--param", "params", multiple=True, metavar="KEY=VALUE", help="Run parameter.")
@store_option
@artifacts_option
@click.option("--cluster", type=click.Path(dir_okay=False), help=CLUSTER_HELP)
@click.option("--run-id", metavar="ID", help="Run id; an existing id resumes that run (idempotent).")
@click.option("--fifo", is_flag=True, help="Dispatch ready tasks first-in first-out (for comparison).")
@click.option("--gantt", type=click.Path(dir_okay=False), help="Write the run's Gantt chart (HTML) here.")
@click.option("--keep-going", is_flag=True, help="On a failure keep running independent branches.")
@click.option(
    "--oom-growth",
    type=Finite(1.0, 1000.0),
    default=2.0,
    show_default=True,
    help="After an out-of-memory, the next attempt gets this many times the memory.",
)
@click.option("--oom-cap", metavar="SIZE", help="Never grow a task's memory beyond SIZE (e.g. 16GiB).")
@click.option(
    "--plan-time",
    type=SECONDS,
    default=0.0,
    show_default=True,
    help="Seconds the planner may spend improving the plan (several nodes only).",
)
@click.option("--no-progress", is_flag=True, help="No live progress display.")
@click.option("--echo-logs/--no-echo-logs", default=None, help=_ECHO_HELP)
@click.option("--ray", "ray_address", metavar="ADDRESS", help=_RAY_HELP)
@grant_options
@click.option(
    "--no-learn", is_flag=True, help="Plan with declared estimates only (do not learn from past runs)."
)
@click.option(
    "--right-size", is_flag=True, help="Request cpu and memory from what past runs used (podium advise)."
)
@metrics_options
def run_cmd(
    file: str,
    params: Sequence[str],
    grants: Mapping[str, Any],
    store_url: str | None,
    cluster: str | None,
    run_id: str | None,
    fifo: bool,
    no_progress: bool,
    gantt: str | None,
    ray_address: str | None,
    keep_going: bool = False,
    oom_growth: float = 2.0,
    oom_cap: str | None = None,
    plan_time: float = 0.0,
    no_learn: bool = False,
    right_size: bool = False,
    metrics_port: int | None = None,
    metrics_host: str = "127.0.0.1",
    metrics_linger: float = 0.0,
    artifacts_url: str | None = None,
    echo_logs: bool | None = None,
) -> None:
    """Run the workflow in FILE (.yaml, .yml, .json or .py) to the end."""
    from podium.load import parse_params
    from podium.load.runid import check_run_id

    if run_id is not None:
        check_run_id(run_id)
    from podium.model.resources import parse_size

    try:
        cap = parse_size(oom_cap) if oom_cap is not None else None
    except ValueError as e:
        raise UsageError(f"--oom-cap: {e}") from None
    given = parse_params(list(params))
    nodes, loaded = _load_checked(file, grants, cluster, ray_address, given)
    if run_id is not None:
        _same_run(store_url, run_id, loaded, given)
    workflow = replace(loaded.workflow, fail_fast=False) if keep_going else loaded.workflow
    source = dict(loaded.source, keep_going=True) if keep_going else loaded.source
    _execute(
        workflow,
        given,
        store_url=store_url,
        cluster=cluster,
        run_id=run_id,
        source=source,
        progress=not no_progress,
        engine_options={
            "oom_growth": oom_growth,
            "oom_cap": cap,
            "plan_time_limit": plan_time,
            "learn": not no_learn,
            "right_size": right_size,
        },
        dispatch="fifo" if fifo else "critical_path",
        gantt=gantt,
        ray_address=ray_address,
        metrics=(metrics_port, metrics_host, metrics_linger),
        artifacts_url=artifacts_url,
        echo_logs=echo_logs,
        nodes=nodes,
    )


def _load_checked(
    file: str, grants: Mapping[str, Any], cluster: str | None, ray_address: str | None, given: dict[str, Any]
) -> tuple[list[Any] | None, Any]:
    """The run's local nodes (None on Ray: they are known once connected) and its workflow,
    checked against them: every problem of the spec, of its tasks' resources on these nodes, of
    the cluster file and of the ``-p`` values is reported together, one line each, before
    anything is written."""
    from podium.errors import SpecError
    from podium.load import load_workflow

    nodes, problems = None, []
    if not ray_address:
        try:
            nodes = _nodes(cluster)
        except SpecError as e:
            problems = _sourced(e)
    try:
        loaded = load_workflow(file, **grants, nodes=nodes)
    except SpecError as e:
        problems += _sourced(e)
        loaded = None
    if problems:
        sound = loaded
        if sound is None and nodes is not None:  # the spec may be sound but for its resources
            with contextlib.suppress(SpecError):
                sound = load_workflow(file, **grants)
        if sound is not None:  # then its -p values are checked too
            try:
                sound.workflow.resolve_params(given)
            except SpecError as e:
                problems += _sourced(e)
        raise SpecError(problems)
    return nodes, loaded


def _sourced(err: Any) -> list[Any]:
    """The problems of a ``SpecError``, each naming the file it was found in."""
    from podium.errors import Problem

    if not err.source:
        return list(err.problems)
    return [Problem(f"{err.source}: {p.where}" if p.where else err.source, p.message) for p in err.problems]


def _same_run(store_url: str | None, run_id: str, loaded: Any, given: dict[str, Any]) -> None:
    """An existing run ``run_id`` is continued only as ``podium.load.runid`` allows (the same
    spec file and flow, the same parameter values); a store that does not exist yet is not
    created for asking."""
    from podium.cli.stores import locate_cli_store
    from podium.load.runid import check_same_run

    if not locate_cli_store(store_url).exists():
        return  # no store yet: a new run
    store = _store(store_url)
    try:
        check_same_run(store, run_id, loaded.source, loaded.workflow, given)
    finally:
        store.close()
