"""`podium validate`, `podium graph`, `podium schema`: checking and showing specs.

Invariants: these commands never write anything; every problem of a spec (including
parameters given with ``-p`` and tasks no node can ever hold) is reported at once as
``error: ...`` with exit code 2 and no traceback; ``schema`` prints valid JSON.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import click

from podium.cli import cli
from podium.cli.grants import grant_options
from podium.cli.terminal import safe
from podium.errors import SpecError
from podium.load import Limits, load_workflow, parse_params
from podium.model.task import Ref, walk_exprs
from podium.model.workflow import REQUIRED, Workflow

_LIMIT = click.IntRange(min=1)


def _limit_options(fn: Any) -> Any:
    defaults = Limits()
    fn = click.option(
        "--max-depth",
        type=_LIMIT,
        default=defaults.max_depth,
        show_default=True,
        help="Deepest nesting a spec may have.",
    )(fn)
    fn = click.option(
        "--max-tasks",
        type=_LIMIT,
        default=defaults.max_tasks,
        show_default=True,
        help="Most tasks a spec may declare.",
    )(fn)
    fn = click.option(
        "--max-bytes",
        type=_LIMIT,
        default=defaults.max_bytes,
        show_default=True,
        help="Largest spec file accepted, in bytes.",
    )(fn)
    return grant_options(fn)


def _load(
    file: str, grants: Mapping[str, Any], max_bytes: int, max_tasks: int, max_depth: int, nodes: Any = None
) -> Workflow:
    limits = Limits(max_bytes=max_bytes, max_tasks=max_tasks, max_depth=max_depth)
    return load_workflow(file, limits=limits, nodes=nodes, **grants).workflow


@cli.command()
@click.argument("file")
@_limit_options
@click.option(
    "-p",
    "--param",
    "params",
    multiple=True,
    metavar="NAME=VALUE",
    help="A run parameter to check against the spec (repeatable).",
)
@click.option(
    "--cluster", metavar="CLUSTER.yaml", help="Check resources against this cluster, not this machine."
)
def validate(
    file: str,
    grants: Mapping[str, Any],
    max_bytes: int,
    max_tasks: int,
    max_depth: int,
    params: tuple[str, ...],
    cluster: str | None,
) -> None:
    """Check a spec (YAML, JSON or a Python flow FILE.py[:FLOW]) without running it."""
    nodes = _cluster(cluster)
    wf = _load(file, grants, max_bytes, max_tasks, max_depth, nodes.nodes)  # resources checked too
    problems = []
    if params:
        try:
            wf.resolve_params(parse_params(params))
        except SpecError as e:
            problems += e.problems
    if problems:
        raise SpecError(problems, source=file)
    edges = sum(len(t.deps) for t in wf.tasks.values())
    required = [n for n, p in wf.params.items() if p.default is REQUIRED]
    need = f"; required params: {', '.join(required)}" if required and not params else ""
    click.echo(
        safe(
            f"OK {file}: workflow {wf.name!r}: {_plural(len(wf.tasks), 'task')}, "
            f"{_plural(len(wf.params), 'param')}, {_plural(edges, 'edge')}, "
            f"fits {_plural(len(nodes.nodes), 'node')}{need}"
        )
    )


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _cluster(path: str | None) -> Any:
    from podium.model.cluster import Cluster

    if path:
        from podium.load.cluster import load_cluster

        return load_cluster(path)
    from podium.executors.local import detect_node

    return Cluster.of([detect_node()])


@cli.command()
@click.argument("file")
@_limit_options
@click.option("--format", "fmt", type=click.Choice(["mermaid", "dot"]), default="mermaid", show_default=True)
def graph(
    file: str,
    grants: Mapping[str, Any],
    max_bytes: int,
    max_tasks: int,
    max_depth: int,
    fmt: str,
) -> None:
    """Print the DAG of a spec as Mermaid or Graphviz DOT (maps and branches shown)."""
    wf = _load(file, grants, max_bytes, max_tasks, max_depth)
    click.echo(safe(mermaid(wf) if fmt == "mermaid" else dot(wf)))


@cli.command()
def schema() -> None:
    """Print the JSON Schema of the YAML/JSON spec format."""
    from podium.load.schema import json_schema

    click.echo(json.dumps(json_schema(), indent=2))


# -- rendering ------------------------------------------------------------------------------
def _label(wf: Workflow, name: str) -> list[str]:
    t = wf.tasks[name]
    lines = [name]
    if t.kind == "python":
        lines.append(str(t.call))
    elif t.kind == "http":
        lines.append(f"http {t.config.get('method', '')} ".replace("  ", " ").strip())
    elif t.kind == "container":
        lines.append(f"container {t.config.get('image', '')}")
    elif t.kind == "service":
        lines.append("service")
    else:
        lines.append("shell")
    if t.map_over:
        lines.append(f"map over {t.map_over}")
    return lines


def _edges(wf: Workflow) -> list[tuple[str, str, str, str]]:
    """(upstream, downstream, style, label): style is data, branch or order."""
    out = []
    for name, t in wf.tasks.items():
        data = {e.task for e in (*walk_exprs(t.args), *walk_exprs(t.config)) if isinstance(e, Ref)}
        for d in t.deps:
            if t.when is not None and t.when.task == d:
                subject = ".".join((d, *(str(p) for p in t.when.path)))
                out.append((d, name, "branch", f"if {subject} == {_show(t.when.equals)}"))
            elif d in data:
                out.append((d, name, "data", ""))
            else:
                out.append((d, name, "order", ""))
    return out


def _show(value: Any) -> str:
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)


def mermaid(wf: Workflow) -> str:
    """The DAG as a Mermaid flowchart; map tasks are drawn as subroutines, branches labelled."""
    ids = {n: f"t{i}" for i, n in enumerate(wf.tasks)}

    def esc(text: str) -> str:
        return text.replace("&", "#amp;").replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;")

    lines = ["flowchart TD"]
    for n, t in wf.tasks.items():
        label = "<br/>".join(esc(x) for x in _label(wf, n))
        lines.append(f'    {ids[n]}[["{label}"]]' if t.map_over else f'    {ids[n]}["{label}"]')
    for a, b, style, label in _edges(wf):
        if style == "branch":
            lines.append(f'    {ids[a]} -->|"{esc(label)}"| {ids[b]}')
        elif style == "order":
            lines.append(f"    {ids[a]} -.-> {ids[b]}")
        else:
            lines.append(f"    {ids[a]} --> {ids[b]}")
    return "\n".join(lines)


def dot(wf: Workflow) -> str:
    """The DAG as Graphviz DOT; map tasks doubled, branch edges dashed and labelled."""

    def q(text: str) -> str:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'

    lines = [f"digraph {q(wf.name)} {{", "    node [shape=box];"]
    for n, t in wf.tasks.items():
        extra = ", peripheries=2" if t.map_over else ""
        lines.append(f"    {q(n)} [label={q(chr(10).join(_label(wf, n)))}{extra}];")
    for a, b, style, label in _edges(wf):
        attrs = {"branch": f" [style=dashed, label={q(label)}]", "order": " [style=dotted]"}.get(style, "")
        lines.append(f"    {q(a)} -> {q(b)}{attrs};")
    lines.append("}")
    return "\n".join(lines)
