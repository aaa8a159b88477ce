"""`podium server` latencies: the runs list with 10,000 runs stored, a 10,000-task run's page
data and page load in Chromium, and event-to-browser latency (an event committed by another
process, received by an EventSource in a real browser and by a plain SSE client).

The store is filled first: 10,000 small finished runs written through the store API (each a
real event log: created, started, one task, succeeded), then one real 10,000-item map run
executed by the engine. A real ``podium server`` serves them on loopback. For reference, the
same read-model calls are timed in this process on the same store: the ratio server/in-process
is what HTTP, auth and JSON add.

Run: ``python bench/server.py [--runs 10000] [--tasks 10000] [--events 200]``. Prints figures;
asserts nothing (the machine may be busy: compare ratios from one run).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from podium.model import events as ev
from podium.model.events import Event, RunRecord

FLOW = """
import podium

@podium.task
def items(n: int) -> list:
    return list(range(n))

@podium.task
def square(x: int) -> int:
    return x * x

@podium.task
def total(xs: list) -> int:
    return sum(xs)

@podium.flow
def bigmap(n: int = 10000):
    total(square(podium.each(items(n))))
"""


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * (len(s) - 1) + 0.5))]


def fill_runs(url: str, n: int) -> None:
    from podium.store import open_store

    store = open_store(url + "?journal=off")
    t0 = 1.7e9
    for i in range(n):
        rid = f"bench{i:06d}"
        ts = t0 + i
        store.create_run(
            RunRecord(rid, "bench", "succeeded", ts, ts + 1, {"i": i}),
            [
                Event(
                    1,
                    ev.RUN_CREATED,
                    None,
                    0,
                    ts,
                    {"workflow": "bench", "params": {"i": i}, "objective": {"alpha": 1.0, "beta": 0.0}},
                )
            ],
        )
        store.append(
            rid,
            [
                Event(2, ev.RUN_STARTED, None, 0, ts, {"owner": "", "prices": {"local": {"cpu": 1.0}}}),
                Event(3, ev.TASK_QUEUED, "a", 0, ts),
                Event(4, ev.TASK_STARTED, "a", 1, ts, {"node": "local", "res": {"cpu": 1}}),
                Event(5, ev.TASK_SUCCEEDED, "a", 1, ts + 0.5, {"duration": 0.5}),
                Event(6, ev.RUN_SUCCEEDED, None, 0, ts + 1, {"counts": {"succeeded": 1}}),
            ],
        )
    store.close()


def start_server(root: Path, url: str) -> tuple[subprocess.Popen, str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PODIUM_STORE"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "podium", "server", "--port", "0", "--store", url],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        m = re.search(r"log in: (http://[^/]+)/\?token=(\S+)", line)
        if m:
            threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
            return proc, m.group(1), m.group(2)
    raise SystemExit("the server did not start")


def timed(fn, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def writer(url: str, run_id: str, n: int, pause: float, out: Path) -> None:
    """In another process: commit ``n`` events to ``run_id``, each stamped with its commit time."""
    code = f"""
import json, time, sys
from podium.store import open_store
from podium.model.events import Event
store = open_store({url!r})
seq = len(store.events({run_id!r}))
stamps = {{}}
for i in range({n}):
    seq += 1
    store.append({run_id!r}, [Event(seq, "TaskQueued", f"t{{i}}", 0, time.time(), {{}})])
    stamps[seq] = time.time()   # the append returned: the event is committed (journaled)
    time.sleep({pause})
store.close()
open({str(out)!r}, "w").write(json.dumps(stamps))
"""
    subprocess.run([sys.executable, "-c", code], check=True)


def latency_runs(url: str, base: str, token: str, n: int) -> dict[str, list[float]]:
    from podium.store import open_store

    store = open_store(url)
    rid = "latency-run"
    store.create_run(
        RunRecord(rid, "latency", "running", time.time(), time.time()),
        [Event(1, ev.RUN_CREATED, None, 0, time.time(), {"workflow": "latency"})],
    )
    store.close()
    out = Path(tempfile.mkdtemp()) / "stamps.json"
    got: dict[int, float] = {}
    ready = threading.Event()

    def client() -> None:
        with httpx.stream(
            "GET",
            f"{base}/api/runs/{rid}/stream?after=1",
            headers={"Authorization": f"Bearer {token}"},
            timeout=120,
        ) as r:
            ready.set()
            for line in r.iter_lines():
                if line.startswith("data: "):
                    now = time.time()
                    for e in json.loads(line[6:]):
                        got[e["seq"]] = now
                    if len(got) >= n:
                        return

    t = threading.Thread(target=client, daemon=True)
    t.start()
    ready.wait(30)
    browser = browser_listener(base, token, rid, n)
    writer(url, rid, n, 0.01, out)
    t.join(60)
    stamps = {int(k): v for k, v in json.loads(out.read_text()).items()}
    result = {"sse client": [got[s] - stamps[s] for s in stamps if s in got]}
    if browser is not None:
        seen = browser()
        result["chromium EventSource"] = [seen[s] - stamps[s] for s in stamps if s in seen]
    return result


_BROWSER: dict = {}


def browser_listener(base: str, token: str, rid: str, n: int):
    """An EventSource in Chromium on the run's stream; returns a function collecting arrival times."""
    if not Path("/usr/bin/chromium").exists():
        return None
    from playwright.sync_api import sync_playwright

    p = sync_playwright().start()
    b = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"])
    page = b.new_page()
    page.goto(f"{base}/?token={token}")
    page.evaluate(f"""() => {{ window.seen = {{}};
        const es = new EventSource('/api/runs/{rid}/stream?after=1');
        es.addEventListener('events', (m) => {{ const now = Date.now() / 1000;
          for (const e of JSON.parse(m.data)) window.seen[e.seq] = now; }}); }}""")
    time.sleep(0.5)
    _BROWSER.update(p=p, b=b, page=page)

    def collect() -> dict[int, float]:
        deadline = time.time() + 30
        seen: dict = {}
        while time.time() < deadline:
            seen = page.evaluate("() => window.seen")
            if len(seen) >= n:
                break
            time.sleep(0.1)
        return {int(k): v for k, v in seen.items()}

    return collect


def page_load(base: str, token: str, run_id: str, tasks: int) -> float | None:
    page = _BROWSER.get("page")
    if page is None:
        return None
    page.goto(f"{base}/#/")
    page.wait_for_selector("#runs-body tr")
    t = time.perf_counter()
    page.goto(f"{base}/#/runs/{run_id}")
    page.wait_for_selector(f"#gantt[data-bars='{tasks + 2}']", timeout=60_000)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10_000)
    ap.add_argument("--tasks", type=int, default=10_000)
    ap.add_argument("--events", type=int, default=200)
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="podium-bench-server-"))
    db = root / ".podium" / "podium.db"
    db.parent.mkdir(parents=True)
    url = f"sqlite:///{db}"
    (root / "bigmap.py").write_text(FLOW)
    (root / "podium.toml").write_text('[[server.workflows]]\npath = "bigmap.py"\n')
    t = time.perf_counter()
    fill_runs(url, args.runs)
    print(f"stored {args.runs} runs in {time.perf_counter() - t:.1f} s")
    t = time.perf_counter()
    env = {k: v for k, v in os.environ.items() if k != "PODIUM_STORE"}
    subprocess.run(
        [
            sys.executable,
            "-m",
            "podium",
            "run",
            "bigmap.py",
            "-p",
            f"n={args.tasks}",
            "--run-id",
            "big",
            "--store",
            url,
            "--no-progress",
        ],
        cwd=root,
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    print(f"ran a {args.tasks}-item map in {time.perf_counter() - t:.1f} s")

    from podium.server import data
    from podium.store import open_store

    store = open_store(url)
    ref_list = timed(lambda: data.list_runs(store, limit=50), 30)
    ref_big = timed(lambda: data.run_detail(store, "big"), 5)
    store.close()

    proc, base, token = start_server(root, url)
    try:
        c = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60)
        c.get("/api/runs")  # warm the caches, like a server that has been up a while
        lst = timed(lambda: c.get("/api/runs", params={"limit": 50}).raise_for_status(), 200)
        flt = timed(
            lambda: c.get("/api/runs", params={"status": "failed", "limit": 50}).raise_for_status(), 50
        )
        big = timed(lambda: c.get("/api/runs/big").raise_for_status(), 30)
        size = len(c.get("/api/runs/big").content)
        lat = latency_runs(url, base, token, args.events)
        load = page_load(base, token, "big", args.tasks)
        print()
        print(f"{'figure':58s} {'p50':>9s} {'p99':>9s}  in-process p50  ratio")
        rows = [
            (f"GET /api/runs?limit=50 ({args.runs} runs stored)", lst, ref_list),
            (f"GET /api/runs?status=failed ({args.runs} runs stored)", flt, None),
            (f"GET /api/runs/big ({args.tasks}-task run, {size / 1e6:.1f} MB JSON)", big, ref_big),
        ]
        for name, xs, ref in rows:
            r = ""
            if ref:
                ratio = statistics.median(xs) / statistics.median(ref)
                r = f"{statistics.median(ref) * 1000:10.1f} ms  {ratio:5.2f}"
            print(f"{name:58s} {pct(xs, 0.5) * 1000:7.1f}ms {pct(xs, 0.99) * 1000:7.1f}ms  {r}")
        for name, xs in lat.items():
            label = "event commit (other process) -> " + name
            print(
                f"{label:58s} {pct(xs, 0.5) * 1000:7.1f}ms {pct(xs, 0.99) * 1000:7.1f}ms"
                f"  (max {max(xs) * 1000:.0f} ms, {len(xs)} events)"
            )
        if load is not None:
            print(f"{'Chromium: run page of the ' + str(args.tasks) + '-task run drawn':58s} {load:8.2f}s")
    finally:
        if "b" in _BROWSER:
            _BROWSER["b"].close()
            _BROWSER["p"].stop()
        proc.terminate()
        proc.wait(15)


if __name__ == "__main__":
    main()
