"""Thread counts that match requests: two 1-cpu numeric tasks on a 2-cpu node, together vs one
after the other.

Each task is a process (a shell task running ``python -c``) that multiplies matrices with
NumPy (OpenBLAS, which starts one thread per core unless ``OPENBLAS_NUM_THREADS`` says
otherwise) or PyTorch (``--lib torch``: intra-op threads from ``OMP_NUM_THREADS``). Podium
runs the pair twice on a node declared with 2 cpus: both at once (independent tasks), and one
after the other (the second waits for the first), first with the thread counts Podium sets from
the cpu request, then with ``LocalExecutor(limit_threads=False)`` (each task starts a thread
per core). The figure is the ratio together / one after the other, measured in the same run:
at most 1.0 means running the two side by side costs nothing over running them in turn.

Run: ``python bench/threads.py [--lib numpy|torch] [--n 1024] [--reps 10] [--rounds 3]``.
It asserts nothing (timing goals live here, not in tests); best of ``--rounds``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from podium.executors.local import LocalExecutor
from podium.model import Node, Resources, TaskSpec, Workflow
from podium.policy import Policy
from podium.registry import Registry
from podium.runtime.engine import Engine
from podium.store import open_store

WORK = {
    "numpy": (
        "import numpy as np\n"
        "a = np.random.default_rng(0).random(({n}, {n}))\n"
        "for _ in range({reps}):\n"
        "    a = (a @ a) / {n}\n"
    ),
    "torch": (
        "import torch\n"
        "torch.manual_seed(0)\n"
        "a = torch.rand({n}, {n}, dtype=torch.float64)\n"
        "for _ in range({reps}):\n"
        "    a = (a @ a) / {n}\n"
    ),
}


def workflow(lib: str, n: int, reps: int, together: bool) -> Workflow:
    code = WORK[lib].format(n=n, reps=reps)
    tasks = [
        TaskSpec(
            f"work{i}",
            kind="shell",
            config={"argv": (sys.executable, "-c", code)},
            resources=Resources.of(cpu=1),
            after=() if together or i == 0 else ("work0",),
        )
        for i in range(2)
    ]
    return Workflow.build("together" if together else "in-turn", tasks)


def seconds(lib: str, n: int, reps: int, together: bool, limit: bool, folder: Path) -> float:
    registry = Registry()
    registry.grant(Policy(programs=(sys.executable,)))  # the shell tasks run this interpreter
    ex = LocalExecutor([Node("bench", Resources.of(cpu=2, memory="4GiB"))], registry, limit_threads=limit)
    store = open_store(str(folder / f"{time.monotonic_ns()}.db"))
    try:
        t0 = time.perf_counter()
        result = Engine(store, ex).run(workflow(lib, n, reps, together), {})
        elapsed = time.perf_counter() - t0
        assert result.status == "succeeded", result.status
        return elapsed
    finally:
        store.close()
        ex.shutdown()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lib", choices=sorted(WORK), default="numpy")
    ap.add_argument("--n", type=int, default=1024, help="matrix side")
    ap.add_argument("--reps", type=int, default=10, help="multiplications per task")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = {}
        for limit in (True, False):
            for together in (False, True):
                one = (args.lib, args.n, args.reps, together, limit, Path(tmp))
                runs = [seconds(*one) for _ in range(args.rounds)]
                rows[(limit, together)] = min(runs)
    work = f"{args.reps} x {args.n}x{args.n} matmul each"
    print(f"two 1-cpu {args.lib} tasks ({work}) on a 2-cpu node, best of {args.rounds} (s):")
    print(f"  {'threads':34} {'in turn':>8} {'together':>9} {'ratio':>6}")
    labels = {True: "from the cpu request (Podium)", False: "one per core (limit_threads=False)"}
    for limit, label in labels.items():
        seq, par = rows[(limit, False)], rows[(limit, True)]
        print(f"  {label:34} {seq:8.2f} {par:9.2f} {par / seq:6.2f}")


if __name__ == "__main__":
    main()
