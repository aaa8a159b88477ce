"""How fast the one-pass heuristic plans huge DAGs (targets: 10,000 tasks < 1 s, 100,000 < 10 s).

Random layered DAGs (seeded): tasks in layers of ~sqrt(n) tasks, each with 1-3 parents in the
previous two layers, durations 1-100 s, 1-4 cpus and 1-8 GiB; planned on 8 heterogeneous nodes
(speeds 0.5-2, prices differing) minimising F = T + R. Prints the planning time, its ratio to the
target, and T, R, the gap to the lower bound.

    python bench/planner_scale.py [--sizes 10000,100000] [--seed 0]
"""

from __future__ import annotations

import argparse
import math
import random
import time

from podium.model.cluster import Cluster, Node
from podium.model.problem import PlanRequest, PlanTask
from podium.model.resources import Resources
from podium.model.workflow import Objective
from podium.planner.plan import plan

TARGETS = {10_000: 1.0, 100_000: 10.0}


def layered_dag(n: int, seed: int) -> PlanRequest:
    rng = random.Random(seed)
    width = max(1, int(math.sqrt(n)))
    names = [f"t{i}" for i in range(n)]
    tasks: dict[str, PlanTask] = {}
    gib = 1024**3
    shapes = [Resources(cpu=float(c), memory=m * gib) for c in (1, 2, 4) for m in (1, 4, 8)]
    for i, name in enumerate(names):
        layer = i // width
        lo = max(0, (layer - 2) * width)
        hi = layer * width
        deps = (
            tuple(names[j] for j in sorted({rng.randrange(lo, hi) for _ in range(rng.randint(1, 3))}))
            if hi
            else ()
        )
        tasks[name] = PlanTask(float(rng.randint(1, 100)), rng.choice(shapes), deps)
    return PlanRequest(tasks)


def cluster() -> Cluster:
    gib = 1024**3
    nodes = []
    for i, (speed, price) in enumerate([(0.5, 0.01), (1.0, 0.04), (1.0, 0.04), (1.5, 0.08), (2.0, 0.15)] * 2):
        if len(nodes) == 8:
            break
        nodes.append(
            Node(f"n{i}", Resources(cpu=16.0, memory=64 * gib), {"cpu": price, "memory": price / 8}, speed)
        )
    return Cluster.of(nodes)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    cl = cluster()
    print(f"{'tasks':>8} {'plan s':>8} {'target s':>9} {'ratio':>6} {'T':>10} {'R':>10} {'gap':>7}")
    for n in (int(x) for x in args.sizes.split(",")):
        req = layered_dag(n, args.seed)
        t0 = time.perf_counter()
        p = plan(req, cl, Objective(alpha=1.0, beta=1.0))
        dt = time.perf_counter() - t0
        target = TARGETS.get(n, n / 10_000)
        print(
            f"{n:>8} {dt:>8.2f} {target:>9.1f} {dt / target:>6.2f} {p.makespan:>10.1f} {p.cost:>10.2f} "
            f"{100 * p.gap:>6.1f}%"
        )


if __name__ == "__main__":
    main()
