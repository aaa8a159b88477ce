"""`podium plan FILE`: plan a workflow on a cluster and show the schedule.

FILE is an STG graph (``.stg``), a WfCommons instance (WfFormat ``.json``) or a Podium workflow
spec (read with ``podium.load.load_workflow``; durations from each task's ``expected_duration``,
else 1 s, and the output says which). The cluster is ``--cluster FILE`` (YAML), or
``--processors P`` (P identical unit-price nodes with one cpu each; every task then takes one
cpu, so each node runs one task at a time), or this machine as one node.

Prints a terminal Gantt chart (one row per node, each task's name in its bar, made terminal-safe
and cut with an ellipsis where the bar is too short) with T, R, F, lower bound and gap; a spec's
tasks that fit no node are reported with its other problems; ``--json`` prints exactly
``{"makespan", "cost", "objective", "lower_bound", "tasks": [{"id", "node", "start", "end"}]}``;
``--html OUT`` writes a self-contained Gantt page (inline SVG, no external assets).
Invariant: bad arguments give one error line and exit code 2.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from podium.cli import cli
from podium.cli.grants import grant_options
from podium.cli.numbers import SECONDS, WEIGHT
from podium.cli.terminal import safe
from podium.errors import SpecError, UsageError
from podium.load import options
from podium.model.cluster import Cluster, Node
from podium.model.problem import PlanRequest, PlanTask
from podium.model.resources import Resources
from podium.model.workflow import Objective
from podium.planner.plan import Plan, plan


@cli.command("plan")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--cluster", "cluster_file", type=click.Path(dir_okay=False), help="cluster YAML file")
@click.option(
    "--processors", type=click.IntRange(1, 1024), help="P identical unit-price single-cpu nodes (1-1024)"
)
@click.option("--alpha", type=WEIGHT, help="weight of the makespan T in F")
@click.option("--beta", type=WEIGHT, help="weight of the cost R in F")
@click.option("--deadline", help="minimise R subject to T <= DEADLINE (e.g. 90s, 10m)")
@click.option("--budget", type=WEIGHT, help="minimise T subject to R <= BUDGET")
@click.option(
    "--time-limit", type=SECONDS, default=0.0, show_default=True, help="seconds to improve the plan"
)
@click.option("--json", "as_json", is_flag=True, help="print the plan as JSON")
@click.option("--html", "html_out", type=click.Path(dir_okay=False), help="write a Gantt chart page")
@grant_options
def plan_command(
    file: str,
    cluster_file: str | None,
    processors: int | None,
    alpha: float | None,
    beta: float | None,
    deadline: str | None,
    budget: float | None,
    time_limit: float,
    as_json: bool,
    html_out: str | None,
    grants: Mapping[str, Any],
) -> None:
    """Plan FILE (.stg, WfCommons .json or a Podium spec) to minimise alpha*T + beta*R."""
    if cluster_file and processors is not None:
        raise UsageError("give --cluster or --processors, not both")
    if processors is not None and processors < 1:
        raise UsageError(f"--processors must be >= 1, got {processors}")
    if time_limit < 0:
        raise UsageError(f"--time-limit must be >= 0, got {time_limit:g}")
    weighted = alpha is not None or beta is not None
    if sum([weighted, deadline is not None, budget is not None]) > 1:
        raise UsageError("give --alpha/--beta, --deadline or --budget, not several")
    if not Path(file).is_file():
        raise UsageError(f"{file}: no such file")
    cluster = None
    if cluster_file:
        from podium.load.cluster import load_cluster

        cluster = load_cluster(cluster_file)
    elif processors is None:
        cluster = _this_machine()
    # a spec's tasks that fit no node are reported with its other problems
    request, sources, spec_objective = _read(file, grants, cluster.nodes if cluster else None)
    if processors is not None:
        cluster = Cluster.of(
            Node(f"p{i}", Resources(cpu=1.0), prices={"cpu": 1.0}) for i in range(processors)
        )
        request = PlanRequest(
            {k: dataclasses.replace(t, resources=Resources(cpu=1.0)) for k, t in request.tasks.items()},
            request.now,
        )
    assert cluster is not None
    if deadline is not None:
        issues: options.Issues = []
        d = options.duration(deadline, "--deadline", issues)
        if d is None:
            raise UsageError("; ".join(f"{k}: {m}" for k, m in issues))
        objective = Objective(deadline=d)
    elif budget is not None:
        objective = Objective(budget=budget)
    elif weighted:
        objective = Objective(alpha=1.0 if alpha is None else alpha, beta=0.0 if beta is None else beta)
    else:
        objective = spec_objective or Objective()
    p = plan(request, cluster, objective, time_limit=time_limit)
    if sources:
        p = dataclasses.replace(p, estimate_sources=sources)
    if html_out:
        from podium.cli.gantt import write_page

        write_page(Path(html_out), gantt_html(p, cluster, Path(file).name), "--html")
    if as_json:
        click.echo(json.dumps(plan_json(p)))
    else:
        _print(p, cluster, objective, sources)


def plan_json(p: Plan) -> dict[str, object]:
    return {
        "makespan": p.makespan,
        "cost": p.cost,
        "objective": p.objective,
        "lower_bound": p.lower_bound,
        "tasks": [{"id": t, "node": s.node, "start": s.start, "end": s.end} for t, s in p.slots.items()],
    }


def _read(
    file: str, grants: Mapping[str, Any] | None = None, nodes: Any = None
) -> tuple[PlanRequest, dict[str, str], Objective | None]:
    suffix = Path(file).suffix.lower()
    if suffix == ".stg":
        from podium.load.stg import load_stg

        return load_stg(file), {}, None
    if suffix == ".json" and _is_wfformat(file):
        from podium.load.wfcommons import load_wfcommons

        return load_wfcommons(file), {}, None
    try:
        from podium.load import load_workflow
    except ImportError:
        raise UsageError(
            f"{file}: not an .stg or WfCommons file, and workflow specs cannot be read here"
        ) from None
    from podium.planner.estimates import estimate

    loaded = load_workflow(file, **(grants or {}), nodes=nodes)
    wf = loaded.workflow
    durations: dict[str, float] = {}
    sources: dict[str, str] = {}
    for name, spec in wf.tasks.items():
        durations[name], sources[name] = estimate(spec, (), 1.0)
    tasks = {
        name: PlanTask(durations[name], spec.resources, spec.deps, workers=spec.workers)
        for name, spec in wf.tasks.items()
    }
    return PlanRequest(tasks), sources, wf.objective


def _is_wfformat(file: str) -> bool:
    try:
        doc = json.loads(Path(file).read_text())
    except (OSError, ValueError, RecursionError):
        raise SpecError(f"{file}: not readable JSON") from None
    return isinstance(doc, dict) and isinstance(doc.get("workflow"), dict)


def _this_machine() -> Cluster:
    import psutil

    mem = int(psutil.virtual_memory().total)
    return Cluster.of([Node("local", Resources(cpu=float(os.cpu_count() or 1), memory=mem))])


def _print(p: Plan, cluster: Cluster, objective: Objective, sources: dict[str, str]) -> None:
    from rich.console import Console
    from rich.text import Text

    console = Console()
    width = max(20, min(100, console.width - 16))
    span = p.makespan or 1.0
    by_node: dict[str, list[str]] = {n.name: [] for n in cluster.nodes}
    for t in p.order():
        by_node[p.slots[t].node].append(t)
    colours = ("blue", "magenta", "green", "yellow", "cyan", "red")
    shown = [n for n in by_node if by_node[n]][:40]
    cut = 0  # tasks whose name did not fit in their bar
    for k, node in enumerate(shown):
        line = Text(f"{bar_label(node, 14):>14} ")
        cells: list[tuple[str, str]] = [(" ", "")] * width
        for i, t in enumerate(by_node[node]):
            s = p.slots[t]
            a = min(round(s.start / span * width), width - 1)  # rounded as ends are: no overlap
            b = min(width, max(a + 1, round(s.end / span * width)))
            colour = colours[(i + k) % len(colours)]
            label = bar_label(t, b - a - 1)  # the bar's last cell stays: bars side by side stay apart
            cut += label != safe(t)
            for x in range(a, b):
                cells[x] = ("█", colour)
            for x, ch in enumerate(label, a):  # the name inside its bar, from its start
                cells[x] = (ch, f"bold white on {colour}")
        for ch, style in cells:
            line.append(ch, style=style or None)
        console.print(line, soft_wrap=True)
    hidden = len([n for n in by_node if by_node[n]]) - len(shown)
    if hidden > 0:
        console.print(f"{'':>14} ... {hidden} more nodes")
    console.print(f"{'':>14} 0{'':>{width - len(f'{span:.4g}s') - 1}}{span:.4g}s")
    if objective.deadline is not None:
        what = f"R under deadline {objective.deadline:g}s"
    elif objective.budget is not None:
        what = f"T under budget {objective.budget:g}"
    else:
        what = f"F = {objective.alpha:g}*T + {objective.beta:g}*R"
    console.print(
        f"T = {p.makespan:.6g} s   R = {p.cost:.6g}   minimised {what} = {p.objective:.6g}   "
        f"lower bound = {p.lower_bound:.6g}   gap = {100 * p.gap:.2f}%   method = {p.method}   "
        f"tasks = {len(p.slots)}",
        highlight=False,
    )
    if sources:
        counts: dict[str, int] = {}
        for how in sources.values():
            counts[how] = counts.get(how, 0) + 1
        console.print(
            "durations: "
            + ", ".join(f"{n} {k}" + (" (1 s)" if k == "default" else "") for k, n in counts.items()),
            highlight=False,
        )
    if cut:
        console.print(
            f"{cut} of {len(p.slots)} task names cut short in their bars: --json or --html shows them all",
            highlight=False,
            soft_wrap=True,
        )


def bar_label(name: str, room: int) -> str:
    """``name`` as drawn in ``room`` terminal cells: control characters escaped and secrets
    masked (``safe``), every character one cell wide (wider or zero-width ones become ``?``),
    cut with ``…`` when longer than ``room``; nothing in under 2 cells."""
    import unicodedata

    text = "".join(
        ch
        if ch.isprintable() and unicodedata.east_asian_width(ch) not in "WF" and not unicodedata.combining(ch)
        else "?"
        for ch in safe(name)
    )
    if len(text) <= room:
        return text
    return text[: room - 1] + "…" if room >= 2 else ""


def gantt_html(p: Plan, cluster: Cluster, title: str) -> str:
    """A self-contained page: one row per node (slot), one bar per task (tooltip: id and times)."""
    from podium.cli.gantt import Bar
    from podium.cli.gantt import gantt_html as render

    bars = [Bar(t, p.slots[t].node, p.slots[t].start, p.slots[t].end) for t in p.order()]
    summary = (
        f"T = {p.makespan:.6g} s, R = {p.cost:.6g}, objective = {p.objective:.6g}, "
        f"lower bound = {p.lower_bound:.6g}, gap = {100 * p.gap:.2f}%, method = {p.method}"
    )
    return render(bars, f"{title} plan", summary)
