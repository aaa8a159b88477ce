"""Executor overheads: per-call cost of ThreadExecutor vs a bare ThreadPoolExecutor, and the start
cost of a process-isolated task.

Run: ``python bench/executors.py [--calls N] [--procs M]``. Prints microseconds per call and ratios;
it asserts nothing (timing goals live here, not in tests).
"""

from __future__ import annotations

import argparse
import statistics
import time
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any

from podium.executors import ProcessExecutor, ThreadExecutor
from podium.model import Resources, TaskCall, TaskSpec
from podium.registry import Registry


def noop() -> int:
    return 1


def _call(
    i: int, isolation: str = "thread", call: str = "bench:noop", timeout: float | None = None
) -> TaskCall:
    spec = TaskSpec(name="noop", call=call, isolation=isolation, timeout=timeout)
    return TaskCall("bench", f"noop[{i}]", 1, spec, {}, {}, Resources(), timeout=timeout)


def _per_call_us(submit: Any, calls: list[Any]) -> tuple[float, float]:
    """(submit µs per call, end-to-end µs per call) for submitting all calls then waiting."""
    t0 = time.perf_counter()
    futs = [submit(c) for c in calls]
    t1 = time.perf_counter()
    wait(futs)
    t2 = time.perf_counter()
    assert all(f.result() == 1 for f in futs)
    n = len(calls)
    return (t1 - t0) / n * 1e6, (t2 - t0) / n * 1e6


def bench_threads(n: int, workers: int) -> None:
    registry = Registry()
    registry.register("bench:noop", noop)
    plain = [_call(i) for i in range(n)]
    timed = [_call(i, timeout=60.0) for i in range(n)]
    rows: dict[str, list[tuple[float, float]]] = {"pool": [], "thread": [], "thread+timeout": []}
    for _ in range(5):
        with ThreadPoolExecutor(workers) as pool:
            rows["pool"].append(_per_call_us(lambda c, p=pool: p.submit(noop), plain))
        ex = ThreadExecutor(max_workers=workers, registry=registry)
        rows["thread"].append(_per_call_us(ex.submit, plain))
        rows["thread+timeout"].append(_per_call_us(ex.submit, timed))
        ex.shutdown()
    best = {k: (min(s for s, _ in v), min(e for _, e in v)) for k, v in rows.items()}
    print(f"thread executor, {n} no-op calls, {workers} threads (best of 5, µs per call):")
    print(f"  {'':16} {'submit':>8} {'end-to-end':>11}")
    for k, (s, e) in best.items():
        print(f"  {k:16} {s:8.2f} {e:11.2f}")
    ps, pe = best["pool"]
    for k in ("thread", "thread+timeout"):
        s, e = best[k]
        print(f"  {k} / ThreadPoolExecutor: submit x{s / ps:.2f}, end-to-end x{e / pe:.2f}")


def bench_processes(m: int) -> None:
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as d:
        flow = Path(d) / "benchflow.py"
        flow.write_text("def noop():\n    return 1\n")
        registry = Registry()
        registry.load_file(flow, "podium_bench_flow")
        ex = ProcessExecutor(registry=registry)
        try:
            lat, submit = [], []
            for i in range(m):
                t0 = time.perf_counter()
                fut = ex.submit(_call(i, "process", "podium_bench_flow:noop"))
                submit.append(time.perf_counter() - t0)
                assert fut.result() == 1
                lat.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            futs = [ex.submit(_call(i, "process", "podium_bench_flow:noop")) for i in range(m)]
            wait(futs)
            burst = (time.perf_counter() - t0) / m
        finally:
            ex.shutdown()
    print(f"process executor, {m} sequential no-op tasks (ms):")
    print(f"  start-to-result: median {statistics.median(lat) * 1e3:.1f}, min {min(lat) * 1e3:.1f}")
    print(f"  submit() alone:  median {statistics.median(submit) * 1e3:.2f}")
    print(f"  {m} at once:     {burst * 1e3:.1f} per task")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--calls", type=int, default=20000)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--procs", type=int, default=20)
    a = ap.parse_args()
    bench_threads(a.calls, a.threads)
    bench_processes(a.procs)


if __name__ == "__main__":
    main()
