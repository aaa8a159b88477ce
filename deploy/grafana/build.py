"""Build the Grafana dashboard of Podium's Prometheus metrics (deploy/grafana/podium.json).

Run ``python deploy/grafana/build.py`` after changing a panel (needs grafana-foundation-sdk,
in the test extra); a test fails while the committed JSON differs from what this prints. Every
panel query uses only metrics of ``podium.metrics.catalog`` and the ``$workflow`` variable; a
test runs each one against a real Prometheus that scraped a real run.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import dashboard, heatmap, prometheus, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import dashboard as dm
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

OUT = Path(__file__).with_name("podium.json")
DS = dm.DataSourceRef(type_val="prometheus", uid="${datasource}")
WF = 'workflow=~"$workflow"'
RI = "$__rate_interval"


def _q(expr: str, legend: str, ref: str, fmt: PromQueryFormat | None = None) -> prometheus.Dataquery:
    q = prometheus.Dataquery().expr(expr).legend_format(legend).ref_id(ref)
    return q.format(fmt) if fmt is not None else q


def _series(
    pid: int, title: str, unit: str, queries: list[tuple[str, str]], desc: str, width: int = 12
) -> Any:
    p = timeseries.Panel().id(pid).title(title).description(desc).datasource(DS).unit(unit)
    for i, (expr, legend) in enumerate(queries):
        p = p.with_target(_q(expr, legend, "ABCDEFGH"[i]))
    return p.height(8).span(width)


def _p(le: str, metric: str, by: str, where: str = "") -> str:
    sel = f"{{{where}}}" if where else ""
    return f"histogram_quantile({le}, sum by (le{by}) (rate({metric}_bucket{sel}[{RI}])))"


ROWS: list[tuple[str, list[Any]]] = [
    (
        "Runs and throughput",
        [
            _series(
                1,
                "Runs in progress",
                "short",
                [(f"sum by (workflow) (podium_runs_active{{{WF}}})", "{{workflow}}")],
                "podium_runs_active: runs being run now.",
                8,
            ),
            _series(
                2,
                "Runs ended, by status",
                "short",
                [(f"sum by (status) (increase(podium_runs_total{{{WF}}}[{RI}]))", "{{status}}")],
                "podium_runs_total: runs that ended in the interval.",
                8,
            ),
            _series(
                3,
                "Task throughput, by state entered",
                "ops",
                [(f"sum by (state) (rate(podium_task_transitions_total{{{WF}}}[{RI}]))", "{{state}}")],
                "podium_task_transitions_total: transitions per second (succeeded = tasks done).",
                8,
            ),
            _series(
                4,
                "Tasks of live runs, by state",
                "short",
                [(f"sum by (state) (podium_tasks{{{WF}}})", "{{state}}")],
                "podium_tasks: task instances of the runs in progress.",
            ),
            _series(
                5,
                "Failed attempts, by kind",
                "short",
                [
                    (
                        "sum by (outcome) (increase(podium_attempts_total"
                        f'{{{WF},outcome!="succeeded"}}[{RI}]))',
                        "attempt: {{outcome}}",
                    ),
                    (
                        f"sum by (kind) (increase(podium_task_failures_total{{{WF}}}[{RI}]))",
                        "failed for good: {{kind}}",
                    ),
                ],
                "podium_attempts_total (retried or not) and podium_task_failures_total (no retry left).",
            ),
        ],
    ),
    (
        "Queue and resources",
        [
            _series(
                6,
                "Ready queue depth",
                "short",
                [(f'sum by (workflow) (podium_tasks{{{WF},state="queued"}})', "{{workflow}}")],
                "Ready tasks waiting for resources (podium_tasks in state queued).",
                8,
            ),
            _series(
                7,
                "Queue wait (ready to started)",
                "s",
                [
                    (_p("0.5", "podium_task_queue_wait_seconds", "", WF), "p50"),
                    (_p("0.95", "podium_task_queue_wait_seconds", "", WF), "p95"),
                ],
                "podium_task_queue_wait_seconds quantiles.",
                8,
            ),
            _series(
                8,
                "CPU utilisation per node",
                "percentunit",
                [
                    (
                        'sum by (node) (podium_node_allocated{resource="cpu"})'
                        ' / sum by (node) (podium_node_capacity{resource="cpu"})',
                        "{{node}}",
                    )
                ],
                "podium_node_allocated over podium_node_capacity, resource cpu.",
                8,
            ),
            _series(
                9,
                "Memory allocated vs capacity per node",
                "bytes",
                [
                    ('sum by (node) (podium_node_allocated{resource="memory"})', "{{node}} allocated"),
                    ('sum by (node) (podium_node_capacity{resource="memory"})', "{{node}} capacity"),
                ],
                "Memory held by running attempts against each node's capacity.",
            ),
            _series(
                10,
                "Peak memory vs requested, per task",
                "bytes",
                [
                    (f"max by (task) (podium_task_peak_memory_bytes{{{WF}}})", "{{task}} peak"),
                    (f"max by (task) (podium_task_memory_requested_bytes{{{WF}}})", "{{task}} requested"),
                ],
                "Last measured attempt of each task (process and Ray workers).",
            ),
        ],
    ),
    (
        "Cost and plan",
        [
            _series(
                11,
                "Cost R of live runs",
                "short",
                [(f"sum by (workflow) (podium_run_cost{{{WF}}})", "{{workflow}}")],
                "podium_run_cost: R so far, running attempts included.",
                8,
            ),
            _series(
                12,
                "Cost rate per node",
                "short",
                [(f"sum by (node) (rate(podium_cost_total{{{WF}}}[{RI}]))", "{{node}}")],
                "podium_cost_total: cost of ended attempts per second.",
                8,
            ),
            _series(
                13,
                "Objective F of live runs",
                "short",
                [(f"podium_run_objective{{{WF}}}", "{{workflow}} {{run_id}}")],
                "podium_run_objective: alpha*T + beta*R so far.",
                8,
            ),
            _series(
                14,
                "Makespan vs plan",
                "s",
                [
                    (f"podium_run_elapsed_seconds{{{WF}}}", "{{run_id}} elapsed"),
                    (f"podium_run_planned_makespan_seconds{{{WF}}}", "{{run_id}} planned T"),
                ],
                "A run past its planned T drifts (runs on several nodes have a plan).",
                24,
            ),
        ],
    ),
    (
        "Tasks and engine",
        [
            heatmap.Panel()
            .id(15)
            .title("Task duration heatmap")
            .description("podium_task_duration_seconds: succeeded attempts per duration bucket.")
            .datasource(DS)
            .with_target(
                _q(
                    f"sum by (le) (increase(podium_task_duration_seconds_bucket{{{WF}}}[{RI}]))",
                    "{{le}}",
                    "A",
                    PromQueryFormat.HEATMAP,
                )
            )
            .calculate(False)
            .height(8)
            .span(12),
            _series(
                16,
                "Task duration p95, by task",
                "s",
                [(_p("0.95", "podium_task_duration_seconds", ", task", WF), "{{task}}")],
                "podium_task_duration_seconds 95th percentile per task name.",
            ),
            _series(
                17,
                "Store append latency",
                "s",
                [
                    (_p("0.5", "podium_store_append_seconds", ", store"), "{{store}} p50"),
                    (_p("0.99", "podium_store_append_seconds", ", store"), "{{store}} p99"),
                ],
                "podium_store_append_seconds: one append is one transaction.",
            ),
            _series(
                18,
                "Executor round trip",
                "s",
                [
                    (
                        _p("0.5", "podium_executor_round_trip_seconds", ", executor"),
                        "{{executor}} round trip p50",
                    ),
                    (
                        _p("0.99", "podium_executor_round_trip_seconds", ", executor"),
                        "{{executor}} round trip p99",
                    ),
                ],
                "From submit to the run loop seeing the attempt's end (task time included).",
            ),
        ],
    ),
]


def build() -> dict[str, Any]:
    d = (
        dashboard.Dashboard("Podium")
        .uid("podium")
        .description("Runs, tasks, queue, resources, cost and plan drift of Podium workflows.")
        .tags(["podium"])
        .refresh("10s")
        .time("now-1h", "now")
        .with_variable(dashboard.DatasourceVariable("datasource").label("Data source").type("prometheus"))
        .with_variable(
            dashboard.QueryVariable("workflow")
            .label("Workflow")
            .datasource(DS)
            .query("label_values(podium_runs_started_total, workflow)")
            .multi(True)
            .include_all(True)
            .all_value(".*")
            .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED)
        )
    )
    for i, (title, panels) in enumerate(ROWS):
        d = d.with_row(dashboard.Row(title).id(100 + i))
        for panel in panels:
            d = d.with_panel(panel)
    return json.loads(json.dumps(d.build(), cls=JSONEncoder))


def render() -> str:
    return json.dumps(build(), indent=2, sort_keys=True) + "\n"


def expressions(board: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, PromQL) of every query of every panel."""
    return [(p["title"], t["expr"]) for p in board["panels"] for t in p.get("targets") or [] if "expr" in t]


if __name__ == "__main__":
    if sys.argv[1:] == ["--check"]:
        sys.exit(0 if OUT.read_text(encoding="utf-8") == render() else 1)
    OUT.write_text(render(), encoding="utf-8")
    print(f"wrote {OUT}")
