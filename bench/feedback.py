"""Learning from every run, measured against the same engine without learning, in one run.

A synthetic workflow: 20 task types, 3 instances each (60 tasks; type j's instances depend on
type j-5's), whose true duration and peak memory depend on the input size (bytes passed as
``data``, 300-3,000 per instance and run, log-uniform): ``duration = b_j * (size/1000)^e_j``
and ``peak = m_j * (size/1000)^0.25``, each with lognormal noise (CV about 15% and 5%), and CPU
use of ``c_j`` cores. Every run happens in simulated time (``InlineExecutor`` on a
``FakeClock``: exact, machine-independent durations), on nodes whose speed divides the
duration; an attempt granted less memory than its peak fails as ``oom``.

1. Estimate error: 6 runs with learning on (one node). Per run, the mean absolute percentage
   error of the estimate each task started with (``TaskStarted``'s ``est``; without one, the
   engine's default of 1 s) against its measured duration. Goal: <= 15% from the third run on.
2. Makespan on a heterogeneous cluster (speeds 0.5, 1, 2; 4 cpus each; tasks ask for 2), with
   the instances as separate tasks (the plan places each; a map's items go wherever they fit):
   five runs teach the engine, then run 6 is planned with learned estimates and, with the same
   sizes and noise, without (every task at the default 1 s). Ratio learned / default per seed.
   Goal: below 1 in every seed.
3. Right-sizing: runs 1-3 with the declared requests (2 cpus, 2 GiB: generous, as users
   declare), then runs 4-6 with ``right_size`` and, separately, with the declared requests
   again. R of runs 4-6, ratio auto / declared, and failed attempts of each. Goal: >= 30%
   lower, no extra failures.
4. Successive halving on the digits data: not built yet (printed as such).

Usage: ``python bench/feedback.py [--seeds 5]``.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
from collections.abc import Callable
from typing import Any

from podium.errors import OOM
from podium.executors.failure import failure
from podium.executors.inline import InlineExecutor
from podium.model import Const, Node, Resources, TaskSpec, Workflow
from podium.model import events as ev
from podium.model.task import TaskCall
from podium.registry import REGISTRY
from podium.runtime.engine import Engine
from podium.store.memory import MemoryStore
from podium.testing import FakeClock
from podium.types import AttemptFuture

TYPES, INSTANCES, RUNS = 20, 5, 6
GIB, MIB = 1 << 30, 1 << 20
PRICES = {"cpu": 1.0, "memory": 0.5}  # per cpu-hour, per GiB-hour
CALL = "feedback:work"
REGISTRY.register(CALL, lambda data=b"": len(data))


class Truth:
    """The hidden behaviour of the task types of one seed, and the inputs of each run."""

    def __init__(self, seed: int) -> None:
        rng = random.Random(seed)
        self.seed = seed
        self.base = [math.exp(rng.uniform(math.log(0.5), math.log(20.0))) for _ in range(TYPES)]
        self.exp = [rng.uniform(0.3, 1.2) for _ in range(TYPES)]
        self.mem = [rng.uniform(100, 800) * MIB for _ in range(TYPES)]
        self.cores = [rng.uniform(0.2, 1.0) for _ in range(TYPES)]

    def size(self, run: int, tid: str) -> int:
        rng = random.Random(f"{self.seed}/{run}/{tid}/size")
        return int(math.exp(rng.uniform(math.log(300), math.log(3000))))

    def noise(self, run: int, tid: str, attempt: int, sigma: float) -> float:
        return math.exp(random.Random(f"{self.seed}/{run}/{tid}/{attempt}/{sigma}").gauss(0.0, sigma))

    def duration(self, run: int, call: TaskCall) -> float:
        j, size = int(call.task_id[1:3]), len(call.kwargs["data"])
        work = self.base[j] * (size / 1000) ** self.exp[j] * self.noise(run, call.task_id, call.attempt, 0.12)
        return work

    def peak(self, run: int, call: TaskCall) -> int:
        j, size = int(call.task_id[1:3]), len(call.kwargs["data"])
        return int(self.mem[j] * (size / 1000) ** 0.25 * self.noise(run, call.task_id, call.attempt, 0.05))


def workflow(truth: Truth, run: int, mapped: bool = True) -> Workflow:
    """Type j runs after type j-5: as a map over its inputs (``mapped``: its items ``tjj[i]``
    share what is learned), or as separate tasks ``tjj_i`` (each placed by the plan)."""
    tasks = []
    res = Resources(cpu=2, memory=2 * GIB)
    for j in range(TYPES):
        name = f"t{j:02d}"
        after = (f"t{j - 5:02d}",) if j >= 5 else ()
        if mapped:
            items = [b"x" * truth.size(run, f"{name}[{i}]") for i in range(INSTANCES)]
            args = {"data": Const(items)}
            tasks.append(TaskSpec(name, call=CALL, args=args, map_over="data", after=after, resources=res))
            continue
        for i in range(INSTANCES):
            data = Const(b"x" * truth.size(run, f"{name}_{i}"))
            deps = tuple(f"{d}_{i}" for d in after)
            tasks.append(TaskSpec(f"{name}_{i}", call=CALL, args={"data": data}, after=deps, resources=res))
    return Workflow.build("feedback", tasks)


class Simulated(InlineExecutor):
    """Calls take the truth's duration divided by their node's speed, report the truth's CPU
    time and peak memory as a worker process would, and fail as ``oom`` below their peak."""

    def __init__(self, nodes: list[Node], clock: FakeClock, truth: Truth, run: int) -> None:
        self.speed = {n.name: n.speed for n in nodes}
        self.truth, self.run = truth, run
        self.clock = clock
        super().__init__(nodes, clock=clock, duration=self._seconds)

    def _seconds(self, call: TaskCall) -> float:
        return self.truth.duration(self.run, call) / self.speed[call.node]

    def submit(self, call: TaskCall) -> AttemptFuture:
        peak = self.truth.peak(self.run, call)
        seconds = self._seconds(call)
        cores = self.truth.cores[int(call.task_id[1:3])]
        meta = {"node": call.node, "seconds": seconds, "peak_rss": peak, "cpu_time": cores * seconds}
        meta["measured"] = "process"
        if call.resources.memory and peak > call.resources.memory:
            fut = AttemptFuture()
            fut.set_running_or_notify_cancel()
            meta["seconds"] = seconds / 2
            fut.podium_meta = meta  # type: ignore[assignment]
            err = failure(OOM, "OutOfMemory", f"{call.task_id} needed {peak} bytes")
            self._pending[fut] = call.task_id
            self.clock.call_at(self.clock.monotonic() + seconds / 2, lambda: self._resolve(fut, None, err))
            return fut
        fut = super().submit(call)
        fut.podium_meta = meta  # type: ignore[assignment]
        return fut


def run_once(
    store: MemoryStore,
    truth: Truth,
    run: int,
    nodes: list[Node],
    tag: str,
    mapped: bool = True,
    **options: Any,
) -> tuple[list[ev.Event], Any]:
    clock = FakeClock()
    executor = Simulated(nodes, clock, truth, run)
    result = Engine(store, executor, clock=clock, rng=random.Random(0), **options).run(
        workflow(truth, run, mapped), run_id=f"{tag}{run}"
    )
    return store.events(f"{tag}{run}"), result


def mape(events: list[ev.Event], default: float = 1.0) -> float:
    est: dict[str, float] = {}
    errors = []
    for e in events:
        if e.type == ev.TASK_STARTED and e.task_id:
            est[e.task_id] = float(e.data.get("est") or default)
        elif e.type == ev.TASK_SUCCEEDED and e.task_id in est:
            actual = float(e.data["duration"])
            errors.append(abs(est[e.task_id] - actual) / actual)
    return sum(errors) / len(errors)


def failed_attempts(events: list[ev.Event]) -> int:
    return sum(1 for e in events if e.type in (ev.TASK_FAILED, ev.TASK_RETRYING))


def one_node() -> list[Node]:
    return [Node("n1", Resources.of(cpu=16, memory="64GiB"), PRICES)]


def three_nodes() -> list[Node]:
    return [Node(f"s{s:g}", Resources.of(cpu=4, memory="16GiB"), PRICES, s) for s in (0.5, 1.0, 2.0)]


def estimates(seed: int) -> list[float]:
    truth, store = Truth(seed), MemoryStore()
    return [mape(run_once(store, truth, r, one_node(), "e", learn=True)[0]) for r in range(1, RUNS + 1)]


def makespans(seed: int) -> tuple[float, float]:
    truth, store = Truth(seed), MemoryStore()
    for r in range(1, RUNS):
        run_once(store, truth, r, three_nodes(), "m", False, learn=True)
    learned = run_once(store, truth, RUNS, three_nodes(), "L", False, learn=True)[1].summary.makespan
    default = run_once(MemoryStore(), truth, RUNS, three_nodes(), "D", False, learn=False)[1].summary.makespan
    return learned, default


def right_sizing(seed: int) -> tuple[float, float, int, int]:
    """(R of runs 4-6 auto, R of runs 4-6 declared, failed attempts auto, failed declared)."""
    truth, auto, declared = Truth(seed), MemoryStore(), MemoryStore()
    for r in range(1, 4):
        for store in (auto, declared):
            run_once(store, truth, r, one_node(), "r", learn=True)
    r_auto = r_decl = 0.0
    f_auto = f_decl = 0
    for r in range(4, RUNS + 1):
        events, result = run_once(auto, truth, r, one_node(), "r", learn=True, right_size=True)
        r_auto, f_auto = r_auto + result.summary.cost, f_auto + failed_attempts(events)
        events, result = run_once(declared, truth, r, one_node(), "r", learn=True)
        r_decl, f_decl = r_decl + result.summary.cost, f_decl + failed_attempts(events)
    return r_auto, r_decl, f_auto, f_decl


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    args = ap.parse_args(argv)
    seeds = list(range(args.seeds))
    _section("1. estimate error (MAPE of the estimate each task started with), per run", seeds, estimates)
    print("2. makespan on speeds 0.5/1/2: learned estimates vs the default 1 s for every task")
    worst = 0.0
    for s in seeds:
        learned, default = makespans(s)
        worst = max(worst, learned / default)
        print(
            f"   seed {s}: learned {learned:8.1f} s  default {default:8.1f} s  ratio {learned / default:.3f}"
        )
    print(f"   worst ratio {worst:.3f} (goal < 1 in every seed)")
    print("3. right-sizing: R of runs 4-6 with --right-size vs the declared requests (2 cpu, 2 GiB)")
    worst_cut, extra = 1.0, 0
    for s in seeds:
        ra, rd, fa, fd = right_sizing(s)
        worst_cut, extra = min(worst_cut, 1 - ra / rd), max(extra, fa - fd)
        cut = f"R auto {ra:.4f}  declared {rd:.4f}  ratio {ra / rd:.3f}"
        print(f"   seed {s}: {cut}  failed attempts {fa} vs {fd}")
    print(
        f"   smallest cut {worst_cut * 100:.0f}% (goal >= 30%); most extra failed attempts {extra} (goal 0)"
    )
    print("4. successive halving on the digits data: not built yet")
    return 0


def _section(title: str, seeds: list[int], fn: Callable[[int], list[float]]) -> None:
    print(title)
    rows = [fn(s) for s in seeds]
    for s, row in zip(seeds, rows, strict=True):
        print(f"   seed {s}: " + "  ".join(f"run {i + 1} {m * 100:5.1f}%" for i, m in enumerate(row)))
    late = max(max(row[2:]) for row in rows)
    print(f"   worst from run 3 on: {late * 100:.1f}% (goal <= 15%)")


if __name__ == "__main__":
    sys.exit(main())
