"""Podium on Ray against plain Ray remote calls, on the same local Ray instance.

1. Overhead: the no-op workloads of ``bench/overhead.py`` (a 1,000-task chain, 10,000
   independent tasks plus a reduce, a 2,000-task layered DAG; their graph builders are imported
   from there) run through ``Engine(open_store(path), RayExecutor)`` (Podium's default store,
   SQLite behind its journal, as in ``bench/overhead.py``) and as plain ``f.remote(*deps)``
   calls (each task cpu=1, dependencies passed as ObjectRefs). Prints microseconds per task and
   the ratio Podium/Ray (goal <= 1.2).
2. Makespan (W4-style): 200 tasks sleeping 10-100 ms in 10 layers, each depending on 1-3 tasks
   of the layer before (seed 0), on 8 slots. Podium dispatches by critical path (declared
   durations); plain Ray runs the same graph submitted in topological order. Prints each
   makespan over the lower bound max(critical path, total work / 8) (goal: Podium's lower).

Podium's executor is the same ``RayExecutor`` throughout: tasks queue on its worker lanes and
travel in batches (``podium.runtime.lanes``, ``podium.executors.ray.lanes``) as in any run.
Its lane counters are printed at the end.

Wall times include everything from submitting the graph to having every result; best of
``--repeat``. Usage: ``python bench/ray.py [--repeat 2] [--only chain-1000] [--slots 8]``.
The Ray instance is local, loopback only, started and stopped by this script.
"""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
# This file is named ray.py: keep its directory off sys.path so ``import ray`` finds Ray.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import random  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from types import ModuleType  # noqa: E402
from typing import Any  # noqa: E402

#: The name this file is loaded under on Ray workers (tasks are resolved there by name).
TASKS_MODULE = "podium_bench_ray"


def noop(**deps: Any) -> None:
    return None


def nap(seconds: float, **deps: Any) -> float:
    time.sleep(seconds)
    return seconds


def _overhead_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("podium_bench_overhead", _HERE / "overhead.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def w4(tasks: int = 200, layers: int = 10, seed: int = 0) -> tuple[dict[str, list[str]], dict[str, float]]:
    """The makespan workload: graph and durations (seconds)."""
    rng = random.Random(seed)
    width = tasks // layers
    graph: dict[str, list[str]] = {}
    dur: dict[str, float] = {}
    prev: list[str] = []
    for layer in range(layers):
        cur = [f"w{layer}_{i}" for i in range(width)]
        for name in cur:
            graph[name] = rng.sample(prev, rng.randint(1, 3)) if prev else []
            dur[name] = rng.uniform(0.010, 0.100)
        prev = cur
    return graph, dur


def lower_bound(graph: dict[str, list[str]], dur: dict[str, float], slots: int) -> float:
    finish: dict[str, float] = {}
    for t in graph:  # builders list tasks in topological order
        finish[t] = dur[t] + max((finish[d] for d in graph[t]), default=0.0)
    return max(max(finish.values()), sum(dur.values()) / slots)


# ------------------------------------------------------------------------------------ runners


def run_podium(
    graph: dict[str, list[str]], executor: Any, db: str, dur: dict[str, float] | None = None
) -> float:
    from podium.model import Const, TaskSpec, Workflow
    from podium.runtime.engine import Engine
    from podium.store import open_store

    specs = []
    for t, deps in graph.items():
        if dur is None:
            specs.append(TaskSpec(t, call=f"{TASKS_MODULE}:noop", after=tuple(deps)))
        else:
            args = {"seconds": Const(dur[t])}
            specs.append(
                TaskSpec(
                    t, call=f"{TASKS_MODULE}:nap", args=args, after=tuple(deps), expected_duration=dur[t]
                )
            )
    wf = Workflow.build("bench-ray", specs)
    store = open_store(db)
    try:
        t0 = time.perf_counter()
        result = Engine(store, executor).run(wf)
        dt = time.perf_counter() - t0
    finally:
        store.close()
    if not result.ok:
        raise SystemExit(f"podium run ended {result.status}")
    return dt


def run_plain(graph: dict[str, list[str]], dur: dict[str, float] | None = None) -> float:
    import ray

    fn = ray.remote(num_cpus=1)(_plain_noop if dur is None else _plain_nap)
    t0 = time.perf_counter()
    refs: dict[str, Any] = {}
    for t, deps in graph.items():
        args = [refs[d] for d in deps]
        refs[t] = fn.remote(*args) if dur is None else fn.remote(dur[t], *args)
    ray.get(list(refs.values()))
    return time.perf_counter() - t0


def _plain_noop(*deps: Any) -> None:
    return None


def _plain_nap(seconds: float, *deps: Any) -> float:
    time.sleep(seconds)
    return seconds


# ------------------------------------------------------------------------------------ main


def main(argv: list[str] | None = None) -> int:
    overhead = _overhead_module()
    workloads: dict[str, Callable[[], dict[str, list[str]]]] = overhead.WORKLOADS
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--slots", type=int, default=8, help="cpus of the local Ray node")
    ap.add_argument("--only", choices=[*sorted(workloads), "w4"], action="append")
    args = ap.parse_args(argv)

    from podium.executors.ray import RayExecutor
    from podium.registry import REGISTRY

    REGISTRY.allow(TASKS_MODULE, str(Path(__file__).resolve()))
    executor = RayExecutor("local", init={"num_cpus": args.slots})
    import ray

    ray.get([ray.remote(_plain_noop).remote() for _ in range(4 * args.slots)])  # start the workers
    with tempfile.TemporaryDirectory() as tmp:  # ... and Podium's (its pooled worker actors)
        run_podium({f"warm{i}": [] for i in range(4 * args.slots)}, executor, f"{tmp}/warm.db")
    print(f"ray {ray.__version__}, one local node with {args.slots} cpus; best of {args.repeat}")
    chosen = args.only or [*workloads, "w4"]
    worst = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        print(f"{'workload':14s} {'tasks':>6s} {'podium us/task':>15s} {'ray us/task':>12s} {'ratio':>6s}")
        for name in chosen:
            if name == "w4":
                continue
            graph = workloads[name]()
            p_times, r_times = [], []
            for i in range(args.repeat):  # interleaved so machine noise hits both alike
                p_times.append(run_podium(graph, executor, f"{tmp}/{name}-{i}.db"))
                r_times.append(run_plain(graph))
            n = len(graph)
            p, r = min(p_times) / n * 1e6, min(r_times) / n * 1e6
            worst = max(worst, p / r)
            print(f"{name:14s} {n:6d} {p:15.1f} {r:12.1f} {p / r:6.2f}")
        if worst:
            print(f"worst per-task overhead ratio podium/ray: {worst:.2f} (goal <= 1.2)")
        if "w4" in chosen:
            graph, dur = w4()
            lb = lower_bound(graph, dur, args.slots)
            p_times, r_times = [], []
            for i in range(args.repeat):
                p_times.append(run_podium(graph, executor, f"{tmp}/w4-{i}.db", dur))
                r_times.append(run_plain(graph, dur))
            p, r = min(p_times), min(r_times)
            print(
                f"w4 makespan ({len(graph)} tasks, {args.slots} slots): lower bound {lb:.3f}s; "
                f"podium {p:.3f}s = {p / lb:.3f} x LB; plain ray {r:.3f}s = {r / lb:.3f} x LB "
                f"(goal: podium's ratio lower)"
            )
    print(f"podium lanes: {executor.lane_stats()}")
    executor.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
