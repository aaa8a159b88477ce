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

3. Node loss (``--node-loss``, alone: it needs a cluster of its own): a ``ray.cluster_utils``
   cluster on this machine (a head with 1 cpu, workers w1 and w2 with 2 cpus each) under Ray's
   DEFAULT health checks runs 48 independent 1.5 s tasks twice: once undisturbed, once with w2
   SIGKILLed when 40% of the tasks have started (a replacement w2 is added right after). Prints
   when Podium left w2 out of its live nodes, when Ray itself declared it dead, the time from the
   kill to the last lost task restarted (as the workers report their start), and the makespan of
   the run with the kill against the undisturbed one.

Podium's executor is the same ``RayExecutor`` throughout: tasks queue on its worker lanes and
travel in batches (``podium.runtime.lanes``, ``podium.executors.ray.lanes``) as in any run.
Its lane counters are printed at the end.

Wall times include everything from submitting the graph to having every result; best of
``--repeat``. Usage: ``python bench/ray.py [--repeat 2] [--only chain-1000] [--slots 8]``, or
``python bench/ray.py --node-loss``. Ray is local, loopback only, started and stopped here.
"""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
# This file is named ray.py: keep its directory off sys.path so ``import ray`` finds Ray.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import secrets  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
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


# ------------------------------------------------------------------------------------ node loss

#: The node-loss cluster: Podium name -> cpus (the head is "head").
LOSS_NODES = {"head": 1, "w1": 2, "w2": 2}
LOSS_TASKS, LOSS_SECONDS = 48, 1.5


def node_loss() -> int:
    """The node-loss scenario (see the module docstring)."""
    tmp = tempfile.mkdtemp(prefix="podium-bench-")
    os.environ.update(
        RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0",  # loopback only
        RAY_USAGE_STATS_ENABLED="0",
        RAY_TMPDIR=tmp,
        RAY_AUTH_MODE="token",
        RAY_AUTH_TOKEN=secrets.token_hex(32),
    )
    os.makedirs(f"{tmp}/ray")
    from ray.cluster_utils import Cluster

    import ray
    from podium.executors.ray import RayExecutor
    from podium.model import Const, TaskSpec, Workflow
    from podium.registry import REGISTRY
    from podium.runtime.engine import Engine
    from podium.store import open_store

    REGISTRY.allow(TASKS_MODULE, str(Path(__file__).resolve()))
    head = {"num_cpus": 1, "labels": {"podium-node": "head"}, "include_dashboard": False, "temp_dir": tmp}
    cluster = Cluster(initialize_head=True, connect=False, head_node_args=head)  # Ray's default health checks
    nodes = {
        n: cluster.add_node(num_cpus=c, labels={"podium-node": n})
        for n, c in LOSS_NODES.items()
        if n != "head"
    }
    ray.init(address=cluster.address, log_to_driver=False)
    cluster.wait_for_nodes()
    left: dict[str, float] = {}

    def changed(live: Any) -> None:
        if "w2" not in {n.name for n in live}:
            left.setdefault("w2", time.time())

    executor = RayExecutor(registry=REGISTRY, on_nodes_changed=changed)
    specs = [
        TaskSpec(
            f"t{i:02d}",
            call=f"{TASKS_MODULE}:nap",
            args={"seconds": Const(LOSS_SECONDS)},
            expected_duration=LOSS_SECONDS,
        )
        for i in range(LOSS_TASKS)
    ]
    wf = Workflow.build("bench-node-loss", specs)
    print(f"ray {ray.__version__}, default health; cpus {LOSS_NODES}; {LOSS_TASKS} x {LOSS_SECONDS}s tasks")

    def run(db: str, kill_after: float | None) -> tuple[float, dict[str, Any]]:
        """One run; with ``kill_after``, w2 is SIGKILLed that many seconds into it."""
        store = open_store(db)
        out: dict[str, Any] = {}
        t0 = time.time()
        runner = threading.Thread(target=lambda: out.update(result=Engine(store, executor).run(wf)))
        runner.start()
        if kill_after is not None:
            time.sleep(kill_after)
            doomed = nodes["w2"].node_id
            out["killed"] = time.time()
            cluster.remove_node(nodes.pop("w2"), allow_graceful=False)  # SIGKILL of its raylet
            nodes["w2"] = cluster.add_node(num_cpus=LOSS_NODES["w2"], labels={"podium-node": "w2"})
            while any(n["NodeID"] == doomed and n["Alive"] for n in ray.nodes()):
                time.sleep(0.1)
            out["ray_dead"] = time.time()
        runner.join()
        makespan = time.time() - t0
        if not out["result"].ok:
            raise SystemExit(f"podium run ended {out['result'].status}")
        out["events"] = store.events(out["result"].run_id)
        store.close()
        return makespan, out

    with tempfile.TemporaryDirectory() as dbs:
        calm, _ = run(f"{dbs}/calm.db", None)
        hit, info = run(f"{dbs}/hit.db", 0.4 * calm)
    killed = info["killed"]
    events = info["events"]
    lost = {e.task_id for e in events if e.type == "TaskRetrying" and e.ts >= killed}
    restarted = [
        e.data["started"] - killed for e in events if e.type == "TaskSucceeded" and e.task_id in lost
    ]
    print(
        f"podium left w2 out of its live nodes {left['w2'] - killed:.2f}s after the kill; "
        f"Ray declared it dead {info['ray_dead'] - killed:.1f}s after it"
    )
    if restarted:
        print(
            f"{len(lost)} lost tasks restarted on live nodes "
            f"{min(restarted):.2f}-{max(restarted):.2f}s after the kill"
        )
    print(f"makespan undisturbed {calm:.2f}s; with the kill {hit:.2f}s ({hit / calm:.2f} x)")
    executor.shutdown()
    ray.shutdown()
    cluster.shutdown()
    return 0


# ------------------------------------------------------------------------------------ main


def main(argv: list[str] | None = None) -> int:
    overhead = _overhead_module()
    workloads: dict[str, Callable[[], dict[str, list[str]]]] = overhead.WORKLOADS
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--slots", type=int, default=8, help="cpus of the local Ray node")
    ap.add_argument("--only", choices=[*sorted(workloads), "w4"], action="append")
    ap.add_argument("--node-loss", action="store_true", help="run the node-loss scenario alone")
    args = ap.parse_args(argv)
    if args.node_loss:
        return node_loss()

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
