"""The metrics Podium exports: one table of name, type, labels, meaning (and buckets).

The exposition, the documentation (docs/monitoring.md, checked by a test) and the Grafana
dashboard all follow this table. Invariants: names carry the ``podium_`` prefix and base units
(seconds, bytes; resources in their own unit: cpu cores, gpus); counters end in ``_total``;
labels are bounded: workflow and task *names* (map items count under their map's name), node
and resource names, states and failure kinds. Only the ``podium_run_*`` gauges carry a
``run_id``, and only for live runs: a run's series disappear when it ends.
"""

from __future__ import annotations

from dataclasses import dataclass

COUNTER, GAUGE, HISTOGRAM = "counter", "gauge", "histogram"

#: Task and attempt durations, queue waits, run makespans (seconds).
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)
#: Store appends and executor hand-offs (seconds).
LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)
#: A finished run's makespan over its plan's.
RATIO_BUCKETS = (0.5, 0.8, 0.9, 0.95, 1.0, 1.05, 1.1, 1.25, 1.5, 2, 3, 5)


@dataclass(frozen=True)
class Metric:
    name: str
    kind: str
    labels: tuple[str, ...]
    help: str
    buckets: tuple[float, ...] = ()


WF, TASK = "workflow", "task"
METRICS: tuple[Metric, ...] = (
    Metric("podium_runs_started_total", COUNTER, (WF,), "Runs started or resumed."),
    Metric("podium_runs_total", COUNTER, (WF, "status"), "Runs ended, by final status."),
    Metric("podium_runs_active", GAUGE, (WF,), "Runs in progress."),
    Metric("podium_tasks", GAUGE, (WF, "state"), "Task instances of the runs in progress, by state."),
    Metric(
        "podium_task_transitions_total",
        COUNTER,
        (WF, TASK, "state"),
        "Task state transitions, by the state entered (queued = ready, running = an attempt started).",
    ),
    Metric(
        "podium_attempts_total",
        COUNTER,
        (WF, TASK, "outcome"),
        "Attempts ended, by outcome: succeeded or the failure kind (user, timeout, oom, worker_lost, ...).",
    ),
    Metric(
        "podium_task_failures_total",
        COUNTER,
        (WF, TASK, "kind"),
        "Tasks failed for good (no retry left), by failure kind.",
    ),
    Metric(
        "podium_task_duration_seconds",
        HISTOGRAM,
        (WF, TASK),
        "Duration of succeeded attempts.",
        DURATION_BUCKETS,
    ),
    Metric(
        "podium_task_queue_wait_seconds",
        HISTOGRAM,
        (WF,),
        "Time from ready (queued) to started.",
        DURATION_BUCKETS,
    ),
    Metric(
        "podium_task_cpu_seconds_total",
        COUNTER,
        (WF, TASK),
        "Measured CPU time of attempts (where measured).",
    ),
    Metric(
        "podium_task_cpu_requested_seconds_total",
        COUNTER,
        (WF, TASK),
        "Requested cpu times wall time of the same attempts: used / requested is cpu efficiency.",
    ),
    Metric(
        "podium_task_peak_memory_bytes",
        GAUGE,
        (WF, TASK),
        "Peak resident memory of the task's last measured attempt.",
    ),
    Metric(
        "podium_task_memory_requested_bytes",
        GAUGE,
        (WF, TASK),
        "Memory requested by that same attempt (0: none declared).",
    ),
    Metric("podium_node_capacity", GAUGE, ("node", "resource"), "Capacity of each node, per resource."),
    Metric(
        "podium_node_allocated",
        GAUGE,
        ("node", "resource"),
        "Resources held by running attempts, per node and resource.",
    ),
    Metric(
        "podium_cost_total",
        COUNTER,
        (WF, "node"),
        "Resource cost R of ended attempts (resource-seconds times the node's prices).",
    ),
    Metric(
        "podium_run_cost",
        GAUGE,
        (WF, "run_id"),
        "R so far of a run in progress (running attempts included).",
    ),
    Metric(
        "podium_run_objective", GAUGE, (WF, "run_id"), "F = alpha*T + beta*R so far of a run in progress."
    ),
    Metric("podium_run_elapsed_seconds", GAUGE, (WF, "run_id"), "Seconds since a run in progress started."),
    Metric(
        "podium_run_planned_makespan_seconds",
        GAUGE,
        (WF, "run_id"),
        "Makespan T of the latest plan of a run in progress (runs on several nodes).",
    ),
    Metric(
        "podium_run_makespan_seconds",
        HISTOGRAM,
        (WF,),
        "Makespan of ended runs (first start to end).",
        DURATION_BUCKETS,
    ),
    Metric(
        "podium_run_plan_ratio",
        HISTOGRAM,
        (WF,),
        "Makespan of ended runs over their latest plan's makespan (drift: above 1 is late).",
        RATIO_BUCKETS,
    ),
    Metric(
        "podium_store_append_seconds",
        HISTOGRAM,
        ("store",),
        "Latency of store appends that succeeded.",
        LATENCY_BUCKETS,
    ),
    Metric("podium_store_append_errors_total", COUNTER, ("store",), "Store appends that raised."),
    Metric(
        "podium_executor_round_trip_seconds",
        HISTOGRAM,
        ("executor",),
        "From submit to the run loop seeing the attempt end (the task's run time included).",
        DURATION_BUCKETS,
    ),
)
BY_NAME = {m.name: m for m in METRICS}
