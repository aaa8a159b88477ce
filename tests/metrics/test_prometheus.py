"""A real Prometheus scrapes a real `podium run --metrics-port` of a real workflow (a subprocess
on two nodes, with a map, a retried task and a task that fails for good). Through
Prometheus's HTTP API: transitions, durations and cost equal what the run's event log says, and
every panel query of the Grafana dashboard is valid and returns data."""

from __future__ import annotations

import importlib.util
import json
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.parse
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from metrics_tasks import STATE_OF

from podium.model import events as ev
from podium.model.cluster import Node
from podium.model.resources import Resources
from podium.model.workflow import Objective
from podium.runtime.summary import summarize
from podium.runtime.view import base_name, fold
from podium.store import open_store

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = shutil.which("prometheus")
pytestmark = pytest.mark.skipif(
    PROMETHEUS is None, reason="prometheus not installed (scripts/test.sh installs it)"
)

FLOW = textwrap.dedent(
    """
    import os
    import time

    import podium

    @podium.task(cpu=1, expected_duration=0.4)
    def prep(go: str) -> list:
        deadline = time.monotonic() + 60
        while not os.path.exists(go) and time.monotonic() < deadline:  # until Prometheus scrapes
            time.sleep(0.05)
        time.sleep(0.4)
        return list(range(6))

    @podium.task(cpu=1, memory="128MiB", isolation="process", expected_duration=0.9)
    def work(i: int) -> int:
        time.sleep(0.9)
        return i * i

    @podium.task(cpu=1, retries=1, retry_delay=0.1)
    def flaky(marker: str) -> str:
        if not os.path.exists(marker):
            open(marker, "w").close()
            raise RuntimeError("the first attempt fails")
        time.sleep(0.3)
        return "ok"

    @podium.task(cpu=1)
    def broken() -> None:
        time.sleep(0.2)
        raise ValueError("this one always fails")

    @podium.task(cpu=0.5)
    def join(xs: list, f: str) -> int:
        time.sleep(0.5)
        return sum(xs)

    @podium.flow(name="monitored", alpha=1.0, beta=2.0)
    def monitored(marker: str, go: str):
        xs = prep(go=go)
        sq = work(i=podium.each(xs))
        f = flaky(marker=marker)
        broken()
        join(xs=sq, f=f)
    """
)
CLUSTER = textwrap.dedent(
    """
    nodes:
      - name: big
        capacity: {cpu: 2, memory: 4GiB}
        prices: {cpu: 3.6, memory: 0.5}
      - name: small
        capacity: {cpu: 1, memory: 2GiB}
        prices: {cpu: 1.8}
    """
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _api(base: str, path: str, **params: Any) -> Any:
    url = f"{base}/api/v1/{path}?{urllib.parse.urlencode(params)}"
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            body = json.load(r)
    except urllib.error.HTTPError as e:  # a bad query (or not ready yet): Prometheus says why
        with e:
            raise AssertionError(f"{params}: {e.read().decode()}") from None
    assert body["status"] == "success", body
    return body["data"]


def _dashboard() -> Any:
    spec = importlib.util.spec_from_file_location("grafana_build", ROOT / "deploy" / "grafana" / "build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def scraped_run(tmp_path: Path) -> Any:
    (tmp_path / "flow.py").write_text(FLOW, encoding="utf-8")
    (tmp_path / "cluster.yaml").write_text(CLUSTER, encoding="utf-8")
    db = tmp_path / "podium.db"
    run_cmd = [
        *(sys.executable, "-m", "podium", "run", "flow.py", "--cluster", "cluster.yaml", "--keep-going"),
        *("-p", f"marker={tmp_path / 'marker'}", "-p", f"go={tmp_path / 'go'}", "--store", str(db)),
        *("--run-id", "mon1", "--no-progress"),
        *("--metrics-port", "0", "--metrics-linger", "3"),
    ]
    t_start = time.time()
    run = subprocess.Popen(run_cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    prom = None
    try:
        line = run.stderr.readline() if run.stderr else ""
        assert line.startswith("metrics: http://127.0.0.1:"), line + (run.stderr.read() if run.stderr else "")
        target = line.split("//", 1)[1].split("/", 1)[0]
        config = tmp_path / "prometheus.yml"
        config.write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            f"scrape_configs: [{{job_name: podium, static_configs: [{{targets: ['{target}']}}]}}]\n",
            encoding="utf-8",
        )
        web = f"127.0.0.1:{_free_port()}"
        prom = subprocess.Popen(
            [
                str(PROMETHEUS),
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address={web}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://{web}"
        _wait_for_a_scrape(base, run)
        (tmp_path / "go").touch()  # the run goes on once Prometheus has seen it live
        out, err = run.communicate(timeout=90)
        assert run.returncode == 1, err  # the run fails: `broken` has no retry left
        yield {"base": base, "db": db, "start": t_start, "end": time.time(), "stdout": out}
    finally:
        for stream in (run.stdout, run.stderr):
            if stream is not None:
                stream.close()
        for proc in (run, prom):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def _wait_for_a_scrape(base: str, run: subprocess.Popen[str], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert run.poll() is None, "the run ended before Prometheus scraped it"
        try:
            if _api(base, "query", query='podium_runs_active{workflow="monitored"}')["result"]:
                return
        except (OSError, AssertionError):
            pass  # not ready yet
        time.sleep(0.1)
    raise AssertionError("Prometheus did not scrape the run in time")


def _by(base: str, query: str, *labels: str) -> dict[tuple[str, ...], float]:
    """The value of each series of an instant query, keyed by the given labels."""
    result = _api(base, "query", query=query)["result"]
    return {tuple(r["metric"].get(k, "") for k in labels): float(r["value"][1]) for r in result}


# ``max_over_time(...[5m])``: the last value of a counter whatever came after (staleness markers,
# written once the target is gone, are not samples)
LAST = "max_over_time({}[5m])"


def test_prometheus_sees_what_the_event_log_says(scraped_run: Any) -> None:
    base = scraped_run["base"]
    store = open_store(str(scraped_run["db"]))
    try:
        events = store.events("mon1")
    finally:
        store.close()
    view = fold(events)
    assert view.state == "failed"

    # transitions, by task name and state entered
    expected = Counter(
        (base_name(e.task_id), e.type) for e in events if e.task_id is not None and e.type != ev.TASK_EXPANDED
    )
    got = _by(
        base,
        LAST.format('podium_task_transitions_total{workflow="monitored",state!="expanded"}'),
        "task",
        "state",
    )
    assert got == {(name, STATE_OF[typ]): float(n) for (name, typ), n in expected.items()}
    # six items and the map itself
    assert got[("work", "succeeded")] == 7 and got[("flaky", "retrying")] == 1

    # durations: the histogram's sum and count per task are the TaskSucceeded durations
    sums = _by(base, LAST.format('podium_task_duration_seconds_sum{workflow="monitored"}'), "task")
    counts = _by(base, LAST.format('podium_task_duration_seconds_count{workflow="monitored"}'), "task")
    assert set(sums) == {("prep",), ("work",), ("flaky",), ("join",)}
    for (name,) in sums:
        durations = [
            e.data["duration"]
            for e in events
            if e.type == ev.TASK_SUCCEEDED and base_name(e.task_id) == name and "duration" in e.data
        ]
        assert sums[(name,)] == pytest.approx(sum(durations), rel=1e-6), name
        assert counts[(name,)] == len(durations), name

    # cost: the run summary's R, priced at the nodes' prices
    prices = view.meta["prices"]
    nodes = {n: Node(n, Resources(), p) for n, p in prices.items()}
    objective = Objective(alpha=1.0, beta=2.0)
    r = summarize(view, type("Wf", (), {"objective": objective}), nodes).cost  # type: ignore[arg-type]
    cost = _by(base, "sum(" + LAST.format('podium_cost_total{workflow="monitored"}') + ")")
    assert cost == {(): pytest.approx(r, rel=1e-6)}
    assert r > 0

    # failures by kind, runs by status, the plan of a two-node run
    failed = _by(base, LAST.format('podium_task_failures_total{workflow="monitored"}'), "task", "kind")
    assert failed == {("broken", "user"): 1.0}
    assert _by(base, LAST.format("podium_runs_total"), "status") == {("failed",): 1.0}
    planned = _by(base, LAST.format('podium_run_planned_makespan_seconds{run_id="mon1"}'))
    assert planned == {(): pytest.approx(view.plan["T"])}

    # every panel query of the dashboard is valid and returns data over the run
    board = json.loads((ROOT / "deploy" / "grafana" / "podium.json").read_text(encoding="utf-8"))
    exprs = _dashboard().expressions(board)
    assert len(exprs) >= 18
    empty = []
    for title, expr in exprs:
        query = expr.replace("$__rate_interval", "5s").replace("$workflow", ".*")
        data = _api(
            base, "query_range", query=query, start=scraped_run["start"], end=scraped_run["end"], step="1"
        )
        if not data["result"]:
            empty.append(f"{title}: {query}")
    assert not empty, "panels without data:\n" + "\n".join(empty)
