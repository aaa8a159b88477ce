"""Large results as artifacts: wall time and peak memory of runs handing a large value downstream.

Cases, each in a fresh process (peak memory is that process's ``ru_maxrss``), all in one temp
dir on the same disk:

- ``numpy``: a task returns an N-byte float64 array (default 1 GiB), a downstream task sums it.
  ``run`` is the whole run (the array written to the artifact store on commit); ``resume`` is a
  second run of the same shape whose downstream failed once, resumed: the array is read back
  from its artifact. Reference, in the same run of this script: the same array made,
  ``numpy.save``-d, ``numpy.load``-ed and summed.
- ``bytes``: a task returns N bytes (default 300 MiB), a downstream task reads their length.
  Reference: the same bytes made, written to a file and read back.
- ``inline``: the ``bytes`` case with no artifact store (every result pickled into SQLite), the
  behaviour before artifacts, for comparison (skipped with ``--no-inline``).

Run: ``python bench/artifacts.py [--numpy-bytes N] [--bytes N] [--repeat R]``. Prints the best
of R per figure and the ratios the project's goals are stated in (run time / reference time,
peak memory / value size); asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import textwrap

CHILD = textwrap.dedent(
    """
    import json, os, resource, sys, time
    case, size, root = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    gate = os.path.join(root, "gate")

    def peak():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    if case in ("ref-numpy", "ref-bytes"):
        import numpy as np
        t0 = time.perf_counter()
        if case == "ref-numpy":
            a = np.full(size // 8, 1.5)
            np.save(os.path.join(root, "ref.npy"), a)
            b = np.load(os.path.join(root, "ref.npy"))
            assert float(b.sum()) == 1.5 * (size // 8)
        else:
            blob = b"\\x01" * size
            with open(os.path.join(root, "ref.bin"), "wb") as f:
                f.write(blob)
            with open(os.path.join(root, "ref.bin"), "rb") as f:
                assert len(f.read()) == size
        print(json.dumps({"seconds": time.perf_counter() - t0, "peak": peak()}))
        sys.exit(0)

    import numpy as np
    import podium
    from podium.executors.local import LocalExecutor, detect_node
    from podium.runtime.engine import Engine
    from podium.store import open_store
    from podium.store.artifacts import LocalArtifacts

    @podium.task
    def make_array(n: int):
        return np.full(n, 1.5)

    @podium.task
    def make_bytes(n: int):
        return b"\\x01" * n

    @podium.task
    def total(a, gate: str) -> float:
        if not os.path.exists(gate):
            raise RuntimeError("gate closed")
        return float(a.sum()) if hasattr(a, "sum") else float(len(a))

    @podium.flow(name="bench_array")
    def array_flow(n: int, gate: str):
        total(a=make_array(n=n), gate=gate)

    @podium.flow(name="bench_bytes")
    def bytes_flow(n: int, gate: str):
        total(a=make_bytes(n=n), gate=gate)

    flow = array_flow if "numpy" in case else bytes_flow
    n = size // 8 if "numpy" in case else size
    store = open_store(os.path.join(root, "store.db"))
    artifacts = None if case == "inline" else LocalArtifacts(os.path.join(root, "artifacts"))
    engine = Engine(store, LocalExecutor([detect_node()]), artifacts=artifacts)
    params = {"n": n, "gate": gate}
    if case == "prepare-numpy":  # downstream fails: the array stays in its artifact for resume
        assert not engine.run(flow.workflow, params, run_id="first").ok
        store.close()
        print(json.dumps({"seconds": 0.0, "peak": peak()}))
        sys.exit(0)
    open(gate, "w").close()
    base = peak()
    t0 = time.perf_counter()
    if case == "resume-numpy":  # a fresh process resumes the run: the downstream reads the artifact
        result = engine.resume("first", flow.workflow)
    else:
        result = engine.run(flow.workflow, params)
    seconds = time.perf_counter() - t0
    assert result.ok, result.status
    store.close()
    files = [os.path.join(root, p) for p in os.listdir(root) if p.startswith("store.db")]
    db = sum(os.path.getsize(p) for p in files if os.path.isfile(p))
    print(json.dumps({"seconds": seconds, "peak": peak(), "before": base, "db_bytes": db}))
    """
)


def measure(case: str, size: int, repeat: int) -> dict[str, float]:
    """The best of ``repeat`` runs of ``case``, each in a fresh process and temp dir (``resume-``
    cases run ``prepare-`` in a process of its own first)."""
    best: dict[str, float] | None = None
    for _ in range(repeat):
        with tempfile.TemporaryDirectory(prefix="podium-bench-artifacts-") as root:
            steps = [case.replace("resume-", "prepare-"), case] if case.startswith("resume-") else [case]
            for step in steps:
                out = subprocess.run(
                    [sys.executable, "-c", CHILD, step, str(size), root],
                    capture_output=True,
                    text=True,
                    check=False,
                )
                if out.returncode != 0:
                    raise SystemExit(f"{step} failed:\n{out.stderr[-3000:]}")
            got = json.loads(out.stdout.strip().splitlines()[-1])
        if best is None or got["seconds"] < best["seconds"]:
            best = got
    assert best is not None
    return best


def _mib(n: float) -> str:
    return f"{n / (1 << 20):8.0f} MiB"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--numpy-bytes", type=int, default=1 << 30)
    ap.add_argument("--bytes", type=int, default=300 << 20)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--no-inline", action="store_true", help="skip the case without artifacts")
    args = ap.parse_args()
    rows = []
    ref_np = measure("ref-numpy", args.numpy_bytes, args.repeat)
    for case in ("run-numpy", "resume-numpy"):
        m = measure(case, args.numpy_bytes, args.repeat)
        rows.append((case, args.numpy_bytes, m, ref_np))
    ref_b = measure("ref-bytes", args.bytes, args.repeat)
    rows.append(("run-bytes", args.bytes, measure("run-bytes", args.bytes, args.repeat), ref_b))
    if not args.no_inline:
        rows.append(("inline-bytes", args.bytes, measure("inline", args.bytes, 1), ref_b))
    heads = ("case", "value", "seconds", "ref s", "time/ref", "peak", "peak/value", "store file")
    print("{:14s} {:>12s} {:>8s} {:>7s} {:>8s} {:>12s} {:>10s} {:>12s}".format(*heads))
    for case, size, m, ref in rows:
        t, r = m["seconds"], ref["seconds"]
        print(
            f"{case:14s} {_mib(size)} {t:8.2f} {r:7.2f} {t / r:8.2f}"
            f" {_mib(m['peak'])} {m['peak'] / size:10.2f} {_mib(m.get('db_bytes', 0))}"
        )
    print(
        f"{'reference':14s} numpy.save+load: {ref_np['seconds']:.2f} s, peak {_mib(ref_np['peak'])};"
        f" raw write+read: {ref_b['seconds']:.2f} s, peak {_mib(ref_b['peak'])}"
    )


if __name__ == "__main__":
    main()
