"""Score the planner on public benchmarks; prints tables (timing goals live here, not in tests).

STG (Tobita & Kasahara): 50- and 100-task graphs on P = 2, 4, 8, 16 identical processors,
makespan only, against ``best_known.csv``: average % above best_ub, how many reach best_lb
(proven optimum), how many the planner itself proves optimal (gap 0), worst case, planning time;
for plain HEFT (written here), the heuristic alone (time_limit 0) and heuristic + CP-SAT with
``--budget`` seconds per instance.

WfCommons (real and synthetic) on a heterogeneous catalogue (``catalogue()``), for alpha:beta in
1:0, 3:1, 1:1, 1:3, 0:1 with alpha = a / T_HEFT and beta = b / R_HEFT (so that the ratio weighs
relative changes): the planner's F against HEFT's on every instance, and the T-vs-R points.

    python bench/planner.py stg [--sample N] [--seed S] [--limit N] [--budget 1.0] [--modes ...]
    python bench/planner.py wfcommons [--time-limit 0]

Data: $PODIUM_BENCH_DATA, default ``<repo>/../shared/bench-data``.
"""

from __future__ import annotations

import argparse
import csv
import glob
import heapq
import os
import random
import time
import zlib
from pathlib import Path

from podium.load.stg import load_stg
from podium.load.wfcommons import load_wfcommons
from podium.model.cluster import Cluster, Node
from podium.model.problem import PlanRequest, PlanTask
from podium.model.resources import Resources
from podium.model.workflow import Objective
from podium.planner.plan import plan

GIB = 1024**3


def data_dir() -> Path:
    default = Path(__file__).resolve().parent.parent.parent / "shared" / "bench-data"
    return Path(os.environ.get("PODIUM_BENCH_DATA", default))


# ---------------------------------------------------------------- plain HEFT (the baseline)


def heft(req: PlanRequest, cluster: Cluster) -> dict[str, tuple[str, float, float]]:
    """Topcuoglu et al.'s HEFT, extended only as far as needed to be valid here: mean-duration
    upward rank; each task to the node giving the earliest finish time with insertion, where a
    start is valid if at every instant of the task the node's summed resources stay within its
    capacity. Ignores prices."""
    nodes = list(cluster.nodes)
    names = list(req.tasks)
    succ: dict[str, list[str]] = {n: [] for n in names}
    for n, t in req.tasks.items():
        for d in t.deps:
            succ[d].append(n)
    fits = {n: [nd for nd in nodes if req.tasks[n].resources.fits_in(nd.capacity)] for n in names}
    mean = {n: sum(req.tasks[n].duration / nd.speed for nd in fits[n]) / len(fits[n]) for n in names}
    rank: dict[str, float] = {}
    indeg = {n: len(req.tasks[n].deps) for n in names}
    order: list[str] = []
    ready = [n for n in names if indeg[n] == 0]
    while ready:
        n = ready.pop()
        order.append(n)
        for s in succ[n]:
            indeg[s] -= 1
            if indeg[s] == 0:
                ready.append(s)
    for n in reversed(order):
        rank[n] = mean[n] + max((rank[s] for s in succ[n]), default=0.0)
    placed: dict[str, list[tuple[float, float, dict[str, float]]]] = {nd.name: [] for nd in nodes}
    out: dict[str, tuple[str, float, float]] = {}
    heap = [(-rank[n], i, n) for i, n in enumerate(names) if not req.tasks[n].deps]
    heapq.heapify(heap)
    left = {n: len(req.tasks[n].deps) for n in names}
    index = {n: i for i, n in enumerate(names)}
    while heap:
        _, _, n = heapq.heappop(heap)
        t = req.tasks[n]
        r = max((out[d][2] for d in t.deps), default=0.0)
        need = t.resources.as_dict()
        best: tuple[float, str, float] | None = None
        for nd in fits[n]:
            d = t.duration / nd.speed
            cap = nd.capacity.as_dict()
            s = _earliest(placed[nd.name], r, d, need, cap)
            if best is None or s + d < best[0] - 1e-12:
                best = (s + d, nd.name, s)
        assert best is not None
        f, node, s = best
        out[n] = (node, s, f)
        placed[node].append((s, f, need))
        for c in succ[n]:
            left[c] -= 1
            if left[c] == 0:
                heapq.heappush(heap, (-rank[c], index[c], c))
    return out


def _earliest(busy: list[tuple[float, float, dict[str, float]]], r: float, d: float, need, cap) -> float:
    cands = sorted({r, *(e for _, e, _ in busy if e > r)})
    for s in cands:
        if d <= 0:
            return s
        points = [s] + [b for b, _, _ in busy if s < b < s + d]
        if all(_fits_at(busy, p, need, cap) for p in points):
            return s
    raise AssertionError("unreachable: the node is empty after its last end")


def _fits_at(busy, p: float, need, cap) -> bool:
    for k, v in need.items():
        used = sum(q.get(k, 0.0) for b, e, q in busy if b <= p < e)
        if used + v > cap.get(k, 0.0) + 1e-9:
            return False
    return True


def tr_of(
    req: PlanRequest, cluster: Cluster, sched: dict[str, tuple[str, float, float]]
) -> tuple[float, float]:
    nodes = {n.name: n for n in cluster.nodes}
    mk = max((e for _, _, e in sched.values()), default=0.0)
    cost = sum(
        nodes[nd].price_per_second(req.tasks[t].resources) * (e - s) for t, (nd, s, e) in sched.items()
    )
    return mk, cost


# ---------------------------------------------------------------- STG


def processors(p: int) -> Cluster:
    return Cluster.of(Node(f"p{i}", Resources(cpu=1.0), prices={"cpu": 1.0}) for i in range(p))


def bench_stg(args: argparse.Namespace) -> None:
    root = data_dir() / "stg"
    with open(root / "best_known.csv") as fh:
        rows = list(csv.DictReader(fh))
    rows = [r for r in rows if int(r["processors"]) in args.procs and r["graph"].split("/")[0] in args.sets]
    if args.sample:
        rows = random.Random(args.seed).sample(rows, min(args.sample, len(rows)))
    if args.limit:
        rows = rows[: args.limit]
    print(
        f"STG: {len(rows)} (graph, P) pairs" + (f" (seeded sample, seed {args.seed})" if args.sample else "")
    )
    print(f"{'method':<22} {'avg %>ub':>9} {'=best_lb':>9} {'proved':>7} {'worst %':>8} {'ms/inst':>8}")
    cache = {}
    for mode in args.modes:
        above, hit, proved, worst, spent = 0.0, 0, 0, 0.0, 0.0
        for r in rows:
            g = r["graph"]
            if g not in cache:
                cache[g] = load_stg(root / g)
            req, cl = cache[g], processors(int(r["processors"]))
            t0 = time.perf_counter()
            if mode == "heft":
                mk, gap = tr_of(req, cl, heft(req, cl))[0], 1.0
            else:
                p = plan(req, cl, Objective(), time_limit=0.0 if mode == "heuristic" else args.budget)
                mk, gap = p.makespan, p.gap
            spent += time.perf_counter() - t0
            ub, lb = float(r["best_ub"]), float(r["best_lb"])
            pct = 100 * (mk - ub) / ub
            above += pct
            worst = max(worst, pct)
            hit += mk <= lb + 1e-9
            proved += gap == 0.0
        n = len(rows)
        label = mode if mode != "cpsat" else f"heuristic+cpsat {args.budget:g}s"
        print(
            f"{label:<22} {above / n:>9.3f} {hit:>5}/{n:<3} {proved if mode != 'heft' else '-':>7} "
            f"{worst:>8.2f} {1000 * spent / n:>8.1f}",
            flush=True,
        )


# ---------------------------------------------------------------- WfCommons


def catalogue() -> Cluster:
    """The heterogeneous node catalogue (prices per resource-hour, memory per GiB-hour):
    std x4 (8 cpu, 32 GiB, speed 1, cpu 0.04), fast x2 (8 cpu, 32 GiB, speed 2, cpu 0.12: half
    the time for 1.5x the cost), eco x4 (4 cpu, 16 GiB, speed 0.5, cpu 0.01: twice the time for
    half the cost), big x1 (32 cpu, 128 GiB, speed 1.25, cpu 0.06)."""
    kinds = [
        ("std", 4, 8, 32, 1.0, 0.04, 0.005),
        ("fast", 2, 8, 32, 2.0, 0.12, 0.01),
        ("eco", 4, 4, 16, 0.5, 0.01, 0.001),
        ("big", 1, 32, 128, 1.25, 0.06, 0.006),
    ]
    nodes = []
    for name, count, cpu, mem, speed, pc, pm in kinds:
        for i in range(count):
            nodes.append(
                Node(f"{name}-{i}", Resources(cpu=cpu, memory=mem * GIB), {"cpu": pc, "memory": pm}, speed)
            )
    return Cluster.of(nodes)


def with_memory(req: PlanRequest) -> PlanRequest:
    """Seeded rule for instances without memory: 1-4 GiB by task category (crc32 of the id
    without its numeric suffix), so tasks of one kind need the same memory."""
    out = {}
    for tid, t in req.tasks.items():
        if t.resources.memory:
            out[tid] = t
            continue
        category = tid.rsplit("_", 1)[0]
        mem = (1 + zlib.crc32(category.encode()) % 4) * GIB
        out[tid] = PlanTask(t.duration, Resources(cpu=t.resources.cpu, memory=mem), t.deps)
    return PlanRequest(out)


RATIOS = [(1.0, 0.0), (3.0, 1.0), (1.0, 1.0), (1.0, 3.0), (0.0, 1.0)]


def bench_wfcommons(args: argparse.Namespace) -> None:
    root = data_dir() / "wfcommons"
    files = sorted(glob.glob(str(root / "real" / "*" / "*" / "*.json")))
    files += sorted(f for f in glob.glob(str(root / "synthetic" / "*.json")) if "MANIFEST" not in f)
    cl = catalogue()
    print(f"WfCommons: {len(files)} instances on {len(cl.nodes)} nodes; F = a*T/T_HEFT + b*R/R_HEFT")
    print(f"{'instance':<44} {'a:b':>5} {'F heft':>8} {'F plan':>8} {'T plan':>10} {'R plan':>9} {'gap':>6}")
    wins = worse = 0
    ratio_sum = {r: 0.0 for r in RATIOS}
    pareto_lines = []
    for f in files:
        req = with_memory(load_wfcommons(f))
        name = Path(f).stem[:44]
        hs = heft(req, cl)
        th, rh = tr_of(req, cl, hs)
        points = []
        for a, b in RATIOS:
            obj = Objective(alpha=a / th, beta=b / rh)
            p = plan(req, cl, obj, time_limit=args.time_limit)
            fh = obj.alpha * th + obj.beta * rh
            wins += p.objective < fh - 1e-9
            worse += p.objective > fh + 1e-9
            ratio_sum[(a, b)] += p.objective / fh
            points.append((p.makespan, p.cost))
            print(
                f"{name:<44} {a:g}:{b:g} {fh:>8.4f} {p.objective:>8.4f} {p.makespan:>10.1f} {p.cost:>9.4f} "
                f"{100 * p.gap:>5.1f}%",
                flush=True,
            )
        front = sorted(
            {pt for pt in points if not any(o[0] <= pt[0] and o[1] <= pt[1] and o != pt for o in points)}
        )
        pareto_lines.append(
            f"{name:<44} HEFT ({th:.1f}s, {rh:.4f})  planner "
            + " ".join(f"({t:.1f}s, {r:.4f})" for t, r in front)
        )
    n = len(files)
    print(f"\nplanner F < HEFT F on {wins} of {n * len(RATIOS)} (instance, ratio) runs; worse on {worse}")
    for (a, b), s in ratio_sum.items():
        print(f"  a:b = {a:g}:{b:g}: mean F_planner / F_HEFT = {s / n:.3f}")
    print("\nT-vs-R points (HEFT has one: it ignores prices; planner: non-dominated points over the ratios)")
    print("\n".join(pareto_lines))


def main() -> None:
    ap = argparse.ArgumentParser(description="Score the planner on STG and WfCommons benchmarks")
    sub = ap.add_subparsers(dest="which", required=True)
    s = sub.add_parser("stg")
    s.add_argument("--sets", default="50,100")
    s.add_argument("--procs", default="2,4,8,16")
    s.add_argument("--sample", type=int, default=0, help="a seeded random sample of N pairs")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--limit", type=int, default=0, help="only the first N pairs")
    s.add_argument("--budget", type=float, default=1.0, help="time limit per instance for cpsat mode")
    s.add_argument("--modes", default="heft,heuristic,cpsat")
    w = sub.add_parser("wfcommons")
    w.add_argument("--time-limit", type=float, default=0.0)
    args = ap.parse_args()
    if args.which == "stg":
        args.sets = args.sets.split(",")
        args.procs = [int(x) for x in args.procs.split(",")]
        args.modes = args.modes.split(",")
        bench_stg(args)
    else:
        bench_wfcommons(args)


if __name__ == "__main__":
    main()
