"""``podium history FLOW [TASK]`` and ``podium advise FILE``: what Podium learned from past runs.

``history`` shows a workflow's task profiles (read from the event logs of its newest runs,
``runtime.profiles``): per task the measured attempts, duration quantiles at speed 1, peak
memory, CPU used, and whether its duration follows its input size; with TASK, every sample.
``advise`` compares each task's declared requests with what it used and what ``--right-size``
would request, and the cost R the suggestions would have saved on the workflow's last run
(each attempt of that run re-priced with the suggested requests at its node's prices).

Invariants: read-only; an unknown workflow or task is one line and exit 2; ``--json`` prints
one JSON document and nothing else.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import click

from podium.cli import cli
from podium.cli.grants import grant_options
from podium.cli.stores import store_option
from podium.errors import NotFoundError


def _profiles(store_url: str | None, workflow: str) -> tuple[Any, dict[str, list[Any]]]:
    from podium.cli.stores import open_cli_store
    from podium.runtime.profiles import profiles

    store = open_cli_store(store_url, read_only=True)
    try:
        return store, profiles(store, workflow)
    except BaseException:
        store.close()
        raise


def task_profile(name: str, samples: Sequence[Any]) -> dict[str, Any]:
    """One task's profile as plain data (what ``history --json`` prints per task)."""
    from podium.learn import fit
    from podium.learn.fit import quantile

    ok = [s for s in samples if s.ok]
    model = fit(samples)
    peaks = [s.peak_memory for s in ok if s.peak_memory]
    cores = [s.cpu_time / s.duration for s in ok if s.cpu_time is not None and s.duration > 0]
    typical = model.predict(None) if model is not None else None
    return {
        "task": name,
        "attempts": len(samples),
        "succeeded": len(ok),
        "duration_p50": typical.p50 if typical else None,
        "duration_p95": typical.p95 if typical else None,
        "size_exponent": model.slope if model is not None and model.slope else None,
        "peak_memory_p95": int(quantile(peaks, 0.95)) if peaks else None,
        "cpu_p50": quantile(cores, 0.5) if cores else None,
    }


@cli.command("history")
@click.argument("workflow")
@click.argument("task", required=False)
@store_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def history_cmd(workflow: str, task: str | None, store_url: str | None, as_json: bool) -> None:
    """Show what WORKFLOW's past runs measured per task (or every attempt of TASK)."""
    from rich.console import Console
    from rich.table import Table

    store, profs = _profiles(store_url, workflow)
    store.close()
    if not profs:
        raise NotFoundError(f"no measured attempts of workflow {workflow!r} in this store")
    if task is not None:
        if task not in profs:
            raise NotFoundError(f"workflow {workflow!r} has no measured attempts of task {task!r}")
        rows = [
            {
                "duration": s.duration,
                "node": s.node,
                "speed": s.speed,
                "size": s.size,
                "estimate": s.estimate,
                "cpu_time": s.cpu_time,
                "peak_memory": s.peak_memory,
                "outcome": s.outcome,
            }
            for s in profs[task]
        ]
        if as_json:
            click.echo(json.dumps({"workflow": workflow, "task": task, "samples": rows}))
            return
        table = Table(*rows[0].keys(), title=f"{workflow} / {task}: {len(rows)} attempts, oldest first")
        for r in rows:
            table.add_row(
                *("-" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v) for v in r.values())
            )
        Console().print(table)
        return
    out = [task_profile(name, samples) for name, samples in profs.items()]
    if as_json:
        click.echo(json.dumps({"workflow": workflow, "tasks": out}))
        return
    table = Table(*out[0].keys(), title=f"{workflow}: task profiles")
    for r in out:
        table.add_row(*_cells(r))
    Console().print(table)


def _cells(row: Mapping[str, Any]) -> list[str]:
    from podium.model.resources import format_size

    cells = []
    for k, v in row.items():
        if v is None:
            cells.append("-")
        elif "memory" in k:
            cells.append(format_size(v))
        elif isinstance(v, float):
            cells.append(f"{v:.4g}")
        else:
            cells.append(str(v))
    return cells


@cli.command("advise")
@click.argument("file", type=click.Path(dir_okay=False))
@store_option
@click.option(
    "--margin", type=click.FloatRange(min=1.0), default=1.2, show_default=True, help="Memory margin."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@grant_options
def advise_cmd(
    file: str, grants: Mapping[str, Any], store_url: str | None, margin: float, as_json: bool
) -> None:
    """Per task of FILE: declared vs used (p50/p95) vs suggested requests, and the cost R the
    suggestions would have saved on the workflow's last run."""
    from podium.learn import suggest
    from podium.load import load_workflow

    workflow = load_workflow(file, **grants).workflow
    store, profs = _profiles(store_url, workflow.name)
    try:
        last = next((r.run_id for r in store.list_runs(1000) if r.workflow == workflow.name), None)
        events = store.events(last) if last is not None else []
    finally:
        store.close()
    rows, suggested = [], {}
    for name, spec in workflow.tasks.items():
        s = suggest(profs.get(name, ()), margin)
        res = spec.resources
        new = {
            "cpu": s.cpu if s.cpu is not None else res.cpu,
            "memory": s.memory if s.memory is not None else res.memory,
        }
        suggested[name] = new
        rows.append(
            {
                "task": name,
                "declared_cpu": res.cpu,
                "used_cpu_p50": s.cpu_p50,
                "suggested_cpu": s.cpu,
                "declared_memory": res.memory or None,
                "peak_memory_p50": s.peak_p50,
                "peak_memory_p95": s.peak_p95,
                "suggested_memory": s.memory,
                "samples": s.samples,
            }
        )
    before, after = repriced(events, suggested)
    doc = {"workflow": workflow.name, "last_run": last, "tasks": rows, "R_last": before, "R_suggested": after}
    if as_json:
        click.echo(json.dumps(doc))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(
        *rows[0].keys(), title=f"{workflow.name}: declared vs used vs suggested (margin {margin:g})"
    )
    for r in rows:
        table.add_row(*_cells(r))
    Console().print(table)
    if last is None:
        click.echo("no run of this workflow in the store yet: nothing to re-price")
    else:
        saved = before - after
        pct = f" ({saved / before * 100:.0f}%)" if before > 0 else ""
        click.echo(
            f"last run {last}: R = {before:.6f}; with the suggestions R = {after:.6f}; saves {saved:.6f}{pct}"
        )


def repriced(events: Sequence[Any], suggested: Mapping[str, Mapping[str, float]]) -> tuple[float, float]:
    """(R of a run's attempts as they ran, R of the same attempts holding the suggested cpu and
    memory instead), each at its node's prices."""
    from podium.model import events as ev
    from podium.model.cluster import DEFAULT_PRICES, price_per_second
    from podium.runtime.view import base_name

    prices: Mapping[str, Any] = {}
    held: dict[str, tuple[str, Mapping[str, float]]] = {}
    before = after = 0.0
    for e in events:
        if e.type == ev.RUN_STARTED:
            prices = e.data.get("prices") or {}
        elif e.type == ev.TASK_STARTED and e.task_id is not None:
            held[e.task_id] = (str(e.data.get("node") or ""), e.data.get("res") or {})
        elif e.task_id is not None and isinstance(e.data.get("duration"), int | float) and e.task_id in held:
            node, res = held.pop(e.task_id)
            p = prices.get(node) or DEFAULT_PRICES
            d = float(e.data["duration"])
            before += price_per_second(res, p) * d
            new = dict(res, **suggested.get(base_name(e.task_id), {}))
            after += price_per_second(new, p) * d
    return before, after
