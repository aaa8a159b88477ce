"""Per-task overhead of the embedded engine against Dask's threaded scheduler, in one run.

Three no-op workloads: a 1,000-task chain; 10,000 independent tasks plus one reduce task
depending on all; a 2,000-task DAG of 20 layers where each task depends on 1-3 random tasks
of the previous layer (seed 0). Podium runs them with durable SQLite state (every transition
committed before it is acted on) on the local executor; Dask runs the same graphs with
``dask.threaded.get`` and as many worker threads as the Podium node has cpus (each no-op task
declares cpu=1, Podium's default), so both run at most that many tasks at once.

Prints microseconds per task for each and the ratio Podium/Dask (lower is better; <= 1.0 is
the goal). Wall times include everything from submitting the graph to having every result,
best of ``--repeat`` runs, each started after a full garbage collection (a full collection
of garbage left by earlier runs would otherwise land in one run or another by chance).
Usage: ``python bench/overhead.py [--repeat 3] [--only chain-1000] [--metrics]``.

``--metrics`` also runs Podium with Prometheus metrics on (hook, metered store and executor, a
``/metrics`` server up) in pairs with the runs without (``--repeat`` pairs, 15 by default, times
10,000 over the workload's tasks, and at least ``MIN_PAIRS``: each workload gets about as much
run time; in each pair the two runs follow each other, the one with metrics first every other
pair), and prints both ratios against Dask and the change. The change is the median over the
pairs of (time with metrics / time without - 1): the two runs of a pair share the machine's
state of the moment, so the median of the pairs is steadier than a comparison of bests. Single
pairs on a shared machine differ by tens of percent, so the median's 95% confidence interval
(distribution-free, from the order statistics) is printed with it, and so are the lowest and
highest pair, the best-vs-best change and the median change of the process's CPU time (which
a busy machine moves less than wall time, as it does not count the time the run waited for a
core). The goal is a median change of at most +10%. The hook counts each batch as the run
commits it, so the timing holds all of that; a scrape (binning the histograms' pending values,
reading the views), paid once per scrape interval whatever ran, is timed apart.
"""

from __future__ import annotations

import argparse
import gc
import math
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from podium.executors.local import LocalExecutor, detect_node
from podium.model import TaskSpec, Workflow
from podium.registry import REGISTRY
from podium.runtime.engine import Engine
from podium.store import open_store


def noop(*args: object, **kwargs: object) -> None:
    return None


REGISTRY.register("bench:noop", noop)
SCRAPES: list[float] = []  # seconds per hub.snapshot() after a run with metrics
CPU: list[float] = []  # process CPU seconds of each Podium run, in order
#: With ``--metrics``: pairs per workload at least (fewer leave the median's interval ~10 wide).
MIN_PAIRS = 45


def chain(n: int = 1000) -> dict[str, list[str]]:
    return {f"t{i}": [f"t{i - 1}"] if i else [] for i in range(n)}


def fan_in(n: int = 10_000) -> dict[str, list[str]]:
    g: dict[str, list[str]] = {f"t{i}": [] for i in range(n)}
    g["reduce"] = [f"t{i}" for i in range(n)]
    return g


def layered(layers: int = 20, width: int = 100, seed: int = 0) -> dict[str, list[str]]:
    rng = random.Random(seed)
    g: dict[str, list[str]] = {}
    prev: list[str] = []
    for layer in range(layers):
        cur = [f"l{layer}_{i}" for i in range(width)]
        for name in cur:
            g[name] = rng.sample(prev, rng.randint(1, 3)) if prev else []
        prev = cur
    return g


WORKLOADS: dict[str, Callable[[], dict[str, list[str]]]] = {
    "chain-1000": chain,
    "fan-in-10000": fan_in,
    "layered-2000": layered,
}


def to_workflow(name: str, graph: dict[str, list[str]]) -> Workflow:
    return Workflow.build(name, [TaskSpec(t, call="bench:noop", after=tuple(d)) for t, d in graph.items()])


def run_podium(wf: Workflow, executor: LocalExecutor, tmp: Path, i: int, hub: Any = None) -> float:
    """Seconds of wall time of one run (its CPU time goes to ``CPU``)."""
    store = open_store(str(tmp / f"bench-{wf.name}-{i}{'-m' if hub else ''}.db"))
    run_id = f"{wf.name}-{i}"
    if hub is None:
        engine = Engine(store, executor)
    else:  # what `podium run --metrics-port` adds
        hooks = [hub.track(run_id, len(wf.tasks), tuple(wf.tasks))]
        engine = Engine(hub.wrap_store(store), hub.wrap_executor(executor), hooks=hooks)
    gc.collect()  # every run starts from the same heap: a full collection lands in none by chance
    t0, c0 = time.perf_counter(), time.process_time()
    result = engine.run(wf, run_id=run_id)
    dt = time.perf_counter() - t0
    CPU.append(time.process_time() - c0)
    if hub is not None:  # a scrape is not timed (one per scrape interval, whatever ran)
        t1 = time.perf_counter()
        hub.snapshot()
        SCRAPES.append(time.perf_counter() - t1)
    store.close()
    if not result.ok:
        raise SystemExit(f"podium run of {wf.name} ended {result.status}")
    return dt


def run_dask(graph: dict[str, list[str]], workers: int) -> float:
    import dask.threaded

    dsk = {t: (noop, *deps) for t, deps in graph.items()}
    gc.collect()
    t0 = time.perf_counter()
    dask.threaded.get(dsk, list(graph), num_workers=workers)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, help="Runs (default 3; --metrics: 15 pairs, more if small).")
    ap.add_argument("--only", choices=sorted(WORKLOADS), action="append")
    ap.add_argument("--metrics", action="store_true", help="Also run with Prometheus metrics on.")
    args = ap.parse_args(argv)
    repeat = args.repeat or (15 if args.metrics else 3)
    node = detect_node()
    workers = max(1, int(node.capacity.cpu))
    executor = LocalExecutor([node])
    print(f"node: {node.capacity.describe()}; dask threaded get with num_workers={workers}")
    print(f"{'workload':14s} {'tasks':>6s} {'podium us/task':>15s} {'dask us/task':>13s} {'ratio':>6s}")
    worst = worst_change = 0.0
    hub, server = _metrics() if args.metrics else (None, None)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        for name in args.only or WORKLOADS:
            graph = WORKLOADS[name]()
            wf = to_workflow(name, graph)
            n = len(graph)
            p_times, m_times, d_times = [], [], []
            p_cpu, m_cpu = [], []
            # with metrics: as many pairs for each workload as fan-in's 10,000 tasks get
            runs = repeat if hub is None else max(MIN_PAIRS, repeat * max(1, 10_000 // n))
            for i in range(runs):  # interleaved so machine noise hits all alike
                if hub is not None and i % 2:  # with metrics first every other time
                    m_times.append(run_podium(wf, executor, tmp, i, hub))
                    m_cpu.append(CPU[-1])
                p_times.append(run_podium(wf, executor, tmp, i))
                p_cpu.append(CPU[-1])
                if hub is not None and not i % 2:
                    m_times.append(run_podium(wf, executor, tmp, i, hub))
                    m_cpu.append(CPU[-1])
                if i < repeat:  # the reference: best of --repeat runs
                    d_times.append(run_dask(graph, workers))
            p, dk = min(p_times) / n * 1e6, min(d_times) / n * 1e6
            worst = max(worst, p / dk)
            spread = statistics.pstdev(p_times) / statistics.mean(p_times) * 100
            print(f"{name:14s} {n:6d} {p:15.1f} {dk:13.1f} {p / dk:6.2f}   (podium spread {spread:.0f}%)")
            if m_times:
                m = min(m_times) / n * 1e6
                pairs = sorted(on / off - 1 for on, off in zip(m_times, p_times, strict=True))
                change = statistics.median(pairs)
                low, high = median_interval(pairs)
                cpu = statistics.median(on / off - 1 for on, off in zip(m_cpu, p_cpu, strict=True))
                worst_change = max(worst_change, change)
                print(
                    f"{'  + metrics':14s} {n:6d} {m:15.1f} {dk:13.1f} {m / dk:6.2f}   "
                    f"({change * 100:+.1f}%: median of {len(pairs)} pairs, 95% CI {low * 100:+.1f} "
                    f"to {high * 100:+.1f}%; "
                    f"{pairs[0] * 100:+.1f}% to {pairs[-1] * 100:+.1f}%; "
                    f"best vs best {(m / p - 1) * 100:+.1f}%; CPU time {cpu * 100:+.1f}%)"
                )
    executor.shutdown()
    if server is not None:
        server.close()
    print(f"worst ratio podium/dask: {worst:.2f} (goal <= 1.0)")
    if hub is not None:
        print(f"worst median change with metrics on: {worst_change * 100:+.1f}% (goal <= +10%)")
        print(f"a scrape's snapshot (after a run): median {statistics.median(SCRAPES) * 1e3:.1f} ms")
    return 0


def median_interval(ordered: list[float], level: float = 0.95) -> tuple[float, float]:
    """A distribution-free confidence interval of the median of sorted values: the order
    statistics ``(k, n-1-k)`` (from 0) with the largest ``k`` such that at most ``k`` of ``n``
    fair coin flips come up heads with probability at most ``(1 - level) / 2``."""
    n = len(ordered)
    tail, low, below = (1 - level) / 2, 0, 0.0
    for k in range(n // 2):
        below += math.comb(n, k) / 2**n  # P(at most k heads)
        if below > tail:
            break
        low = k
    return ordered[low], ordered[n - 1 - low]


def _metrics() -> tuple[Any, Any]:
    """A metrics hub and its /metrics server on a free loopback port (not scraped here)."""
    from podium.metrics import MetricsHub, serve

    hub = MetricsHub()
    return hub, serve(hub, "127.0.0.1", 0)


if __name__ == "__main__":
    sys.exit(main())
