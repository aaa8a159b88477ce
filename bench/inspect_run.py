"""Reading a large run back: ``podium show --json`` and ``podium resume`` against the run itself.

One no-op map of ``--tasks`` items (100,000 by default) runs with ``podium run`` on the embedded
engine and a SQLite store; that run's wall time is the reference. Then, each a process of its own
as a user would start it: ``podium show RUN --json`` (wall time and the process's peak RSS, from
``wait4``) and ``podium resume RUN`` of the finished run. Goals: show within 5% of the run's
time and under 150 MB, resume within 10%. Both read the run's snapshot (``runtime.snapshot``),
which the run wrote at its end. For comparison, the same JSON made the way it is made without a
snapshot (every event read and folded) is timed in this process.

Every command runs as an installed package runs: the package byte-compiled first (as ``pip
install`` does) and ``PYTHONDONTWRITEBYTECODE`` left out of the commands' environment, so no
command spends its time compiling Podium's sources.

Usage: ``python bench/inspect_run.py [--tasks 100000]`` (heavy: run it alone).
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

FLOW = textwrap.dedent(
    """
    import podium

    @podium.task(cpu=1)
    def items(n: int) -> list:
        return list(range(n))

    @podium.task(cpu=1)
    def sq(x: int) -> int:
        return x * x

    @podium.flow(name="inspect-bench")
    def flow(n: int = 10):
        sq(x=podium.each(items(n=n)))
    """
)


#: Runs ``python -m podium ARGS`` as its child and writes ``[seconds, peak RSS bytes, exit code]``
#: to the file named first. A small process of its own: Linux counts the RSS of the process that
#: forks a child into that child's peak (``wait4``), so the bench's own memory must not be it.
LAUNCHER = textwrap.dedent(
    """
    import json, os, sys, time
    t0 = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        os.execv(sys.executable, [sys.executable, "-m", "podium", *sys.argv[2:]])
    _, status, usage = os.wait4(pid, 0)
    with open(sys.argv[1], "w") as f:
        json.dump([time.perf_counter() - t0, usage.ru_maxrss * 1024, os.waitstatus_to_exitcode(status)], f)
    """
)


def timed_child(*args: str, cwd: Path) -> tuple[float, int, Path]:
    """Run the CLI in a process of its own: (wall seconds, its own peak RSS in bytes, the file
    holding its stdout)."""
    out = cwd / f"out-{len(list(cwd.glob('out-*')))}.txt"
    measured = cwd / "measured.json"
    with open(out, "wb") as stdout, tempfile.TemporaryFile() as err:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        subprocess.run(
            [sys.executable, "-c", LAUNCHER, str(measured), *args],
            cwd=cwd,
            stdout=stdout,
            stderr=err,
            env=env,
        )
        secs, rss, code = json.loads(measured.read_text())
        if code:
            err.seek(0)
            raise SystemExit(f"podium {' '.join(args)} exited {code}: {err.read().decode()[-400:]}")
    return secs, rss, out


def fold_json(db: Path, run_id: str) -> float:
    """Seconds to make ``show --json`` without a snapshot: fold the log."""
    from podium.runtime.reading import facts
    from podium.runtime.readmodel import run_document
    from podium.store import open_store

    t0 = time.perf_counter()
    store = open_store(str(db))
    try:
        record = store.get_run(run_id)
        events = store.events(run_id)
    finally:
        store.close()
    f = facts(record, events)
    json.dumps(run_document(f.record, f.totals, f.tasks), default=str)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", type=int, default=100_000)
    args = ap.parse_args(argv)
    n = args.tasks
    import podium

    compileall.compile_dir(str(Path(podium.__file__).parent), quiet=1)  # as pip install does
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        (tmp / "flow.py").write_text(FLOW, encoding="utf-8")
        db = tmp / "podium.db"
        common = ("--store", str(db))
        run_s, run_rss, _ = timed_child(
            "run", "flow.py", "-p", f"n={n}", "--run-id", "big", "--no-progress", *common, cwd=tmp
        )
        show_s, show_rss, shown = timed_child("show", "big", "--json", *common, cwd=tmp)
        text_s, text_rss, _ = timed_child("show", "big", *common, cwd=tmp)
        resume_s, resume_rss, said = timed_child("resume", "big", "--no-progress", *common, cwd=tmp)
        if "already succeeded" not in said.read_text():
            raise SystemExit("resume of the finished run did not say it had nothing to do")
        doc = json.loads(shown.read_text())  # checked after the timings: this process grows here
        if doc["status"] != "succeeded" or len(doc["tasks"]) != n + 2:
            raise SystemExit(f"show --json: status {doc['status']}, {len(doc['tasks'])} tasks, want {n + 2}")
        del doc
        folded = fold_json(db, "big")
    mb = 1024 * 1024
    print(f"map of {n} no-op tasks, podium run (SQLite): {run_s:.2f} s, peak RSS {run_rss / mb:.0f} MB")
    rows = (
        ("show --json", show_s, show_rss, 0.05),
        ("show (text)", text_s, text_rss, None),
        ("resume (finished)", resume_s, resume_rss, 0.10),
    )
    ok = True
    print(f"{'command':20s} {'seconds':>8s} {'of run':>7s} {'goal':>6s} {'peak RSS':>9s}")
    for name, secs, rss, goal in rows:
        ratio = secs / run_s
        good = goal is None or ratio <= goal
        ok = ok and good
        shown = f"{goal * 100:.0f}%" if goal is not None else "-"
        print(f"{name:20s} {secs:8.3f} {ratio * 100:6.1f}% {shown:>6s} {rss / mb:7.0f} MB")
    mem_ok = show_rss < 150 * mb
    print(f"show --json peak RSS {show_rss / mb:.0f} MB (goal < 150 MB): {'ok' if mem_ok else 'MISSED'}")
    print(
        f"for comparison, show --json by folding the log (in process): {folded:.3f} s = "
        f"{folded / run_s * 100:.1f}% of the run, {folded / show_s:.1f}x the snapshot's"
    )
    return 0 if ok and mem_ok else 1


if __name__ == "__main__":
    sys.exit(main())
