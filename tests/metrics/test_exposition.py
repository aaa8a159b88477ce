"""The /metrics endpoint: Prometheus text of every catalog metric, escaped labels, a real HTTP
server, the CLI flags, and prometheus_client kept out of ``import podium``."""

from __future__ import annotations

import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from podium.errors import UsageError
from podium.metrics import METRICS, MetricsHub, serve
from podium.model import events as ev


def _families(text: str) -> dict[str, object]:
    return {f.name: f for f in text_string_to_metric_families(text)}


def _hub_with_a_hostile_task() -> MetricsHub:
    hub = MetricsHub()
    name = 'x"\\\n<img src=x onerror=alert(1)>'
    hub.observe(
        "r",
        [
            ev.Event(1, ev.RUN_CREATED, None, 0, 1.0, {"workflow": "wf"}),
            ev.Event(2, ev.RUN_STARTED, None, 0, 1.0, {}),
            ev.Event(3, ev.TASK_QUEUED, name, 0, 1.0),
            ev.Event(4, ev.TASK_STARTED, name, 1, 1.0, {"node": "n", "res": {"cpu": 1.0}}),
            ev.Event(5, ev.TASK_SUCCEEDED, name, 1, 2.0, {"duration": 1.0}),
        ],
    )
    return hub


def test_every_catalog_metric_is_served_with_escaped_labels() -> None:
    hub = _hub_with_a_hostile_task()
    server = serve(hub, "127.0.0.1", 0)
    try:
        assert server.url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(server.url, timeout=10) as r:
            text = r.read().decode()
    finally:
        server.close()
    fams = _families(text)
    for m in METRICS:
        base = m.name.removesuffix("_total") if m.kind == "counter" else m.name
        assert base in fams, m.name
        assert fams[base].type == m.kind, m.name  # type: ignore[attr-defined]
    samples = {
        (s.name, s.labels.get("task"), s.labels.get("state"))
        for s in fams["podium_task_transitions"].samples  # type: ignore[attr-defined]
    }
    assert ("podium_task_transitions_total", 'x"\\\n<img src=x onerror=alert(1)>', "succeeded") in samples
    # the server is gone after close()
    with pytest.raises(OSError):
        urllib.request.urlopen(server.url, timeout=2)


def test_a_port_in_use_is_a_usage_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(UsageError, match=f"cannot listen on 127.0.0.1:{port}"):
            serve(MetricsHub(), "127.0.0.1", port)


def test_import_podium_leaves_prometheus_client_alone() -> None:
    code = (
        "import sys, podium, podium.metrics, podium.cli.run, podium.report\n"
        "assert 'prometheus_client' not in sys.modules, 'imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_run_with_a_busy_metrics_port_fails_before_any_run(tmp_path: Path) -> None:
    flow = tmp_path / "flow.py"
    flow.write_text(
        "import podium\n\n@podium.task\ndef a() -> int:\n    return 1\n\n"
        "@podium.flow(name='tiny')\ndef tiny():\n    a()\n",
        encoding="utf-8",
    )
    db = tmp_path / "p.db"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        cmd = [sys.executable, "-m", "podium", "run", str(flow), "--store", str(db), "--no-progress"]
        r = subprocess.run([*cmd, "--metrics-port", str(port)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip().splitlines() == [
        f"error: metrics: cannot listen on 127.0.0.1:{port}: Address already in use"
    ]
    runs = subprocess.run(
        [sys.executable, "-m", "podium", "runs", "--store", str(db)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "tiny" not in runs.stdout


def test_bad_metrics_flags_are_usage_errors(tmp_path: Path) -> None:
    base = [sys.executable, "-m", "podium", "run", str(tmp_path / "none.py")]
    for flags, words in (
        (["--metrics-port", "70000"], "--metrics-port"),
        (["--metrics-port", "0", "--metrics-linger", "-1"], "--metrics-linger"),
    ):
        r = subprocess.run([*base, *flags], capture_output=True, text=True, timeout=60)
        assert r.returncode == 2 and words in r.stderr and "Traceback" not in r.stderr, r.stderr
