"""Fixtures for the server tests: a project folder with registered workflows and a real
``podium server`` process on a free loopback port (started as the CLI starts it)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

WORKFLOWS = {
    "quick.yaml": """
name: quick
description: two short shell steps
params:
  n: {type: int, default: 2}
  tag: {type: str, default: "t"}
  ratio: {type: float, default: 0.5}
  loud: {type: bool, default: false}
tasks:
  first: {kind: shell, argv: [sleep, "0.3"]}
  second: {kind: shell, argv: [echo, "${params.tag}"], after: [first]}
""",
    "slow.yaml": """
name: slow
tasks:
  wait: {kind: shell, argv: [sleep, "60"]}
  after_wait: {kind: shell, argv: [echo, done], after: [wait]}
""",
    "xss.yaml": """
name: "<b>xss</b>"
params:
  note: {type: str, default: "<script>alert(2)</script>"}
tasks:
  "<img src=x onerror=alert(1)>": {kind: shell, argv: [echo, "<i>out</i>"]}
  then: {kind: shell, argv: [sleep, "0.2"], after: ["<img src=x onerror=alert(1)>"]}
""",
    "steps.yaml": """
name: steps
description: three one-second steps in a row
tasks:
  one: {kind: shell, argv: [sleep, "1"]}
  two: {kind: shell, argv: [sleep, "1"], after: [one]}
  three: {kind: shell, argv: [echo, finished], after: [two]}
""",
    "fanout.py": """
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
def fanout(n: int = 20):
    total(square(podium.each(items(n))))
""",
}

CONFIG = """
allow_programs = ["sleep", "echo", "true"]

[server]
max_active_runs = {max_active}

[[server.workflows]]
path = "quick.yaml"

[[server.workflows]]
path = "slow.yaml"

[[server.workflows]]
path = "xss.yaml"

[[server.workflows]]
path = "fanout.py"

[[server.workflows]]
path = "steps.yaml"
"""


def make_project(root: Path, max_active: int = 8, extra: str = "") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, text in WORKFLOWS.items():
        (root / name).write_text(text.lstrip(), encoding="utf-8")
    (root / "podium.toml").write_text(CONFIG.format(max_active=max_active) + extra, encoding="utf-8")
    return root


class ServerProcess:
    """A ``podium server`` subprocess and an authenticated client for it."""

    def __init__(self, root: Path, args: tuple[str, ...] = (), cwd: Path | None = None) -> None:
        self.root = root
        self.store = f"sqlite:///{root / '.podium' / 'podium.db'}"
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        env.pop("PODIUM_STORE", None)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "podium", "server", "--port", "0", "--store", self.store, *args],
            cwd=cwd or root,  # a subfolder of the project: the server finds it as every command does
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            text=True,
        )
        self.output: list[str] = []
        deadline = time.monotonic() + 30
        self.url = ""
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline() if self.proc.stdout else ""
            if not line:
                if self.proc.poll() is not None:
                    raise RuntimeError("podium server exited:\n" + "".join(self.output))
                continue
            self.output.append(line)
            m = re.search(r"log in: (http://[^/]+)/\?token=(\S+)", line)
            if m:
                self.url, self.token = m.group(1), m.group(2)
                break
        if not self.url:
            self.stop()
            raise RuntimeError("podium server did not start:\n" + "".join(self.output))
        # keep reading its output, or a full pipe would block the server on its next log line
        self.reader = threading.Thread(target=self._drain, daemon=True)
        self.reader.start()
        self.client = httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.token}"}, timeout=30
        )
        self.anon = httpx.Client(base_url=self.url, timeout=30)
        while True:
            try:
                if self.anon.get("/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.05)

    def _drain(self) -> None:
        stream = self.proc.stdout
        if stream is None:
            return
        for line in iter(stream.readline, ""):
            self.output.append(line)

    @property
    def host(self) -> str:
        return self.url.removeprefix("http://")

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.client.get(path, **kw)

    def post(self, path: str, **kw: Any) -> httpx.Response:
        return self.client.post(path, **kw)

    def start_run(self, workflow: str, params: dict[str, Any] | None = None) -> str:
        r = self.post("/api/runs", json={"workflow": workflow, "params": params or {}})
        assert r.status_code == 201, r.text
        return r.json()["run_id"]

    def wait_status(self, run_id: str, statuses: tuple[str, ...], timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            s = self.get(f"/api/runs/{run_id}").json()
            if s.get("status") in statuses:
                return s
            if time.monotonic() > deadline:
                raise AssertionError(f"run {run_id} still {s.get('status')}: {s}")
            time.sleep(0.1)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if hasattr(self, "reader"):
            self.reader.join(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        for c in ("client", "anon"):
            if hasattr(self, c):
                getattr(self, c).close()


def kill_workers(root: Path) -> None:
    """Stop the worker processes a test's servers started (by the pids in their records)."""
    import sqlite3

    db = root / ".podium" / "server.db"
    if not db.exists():
        return
    with sqlite3.connect(db) as conn:
        pids = [r[0] for r in conn.execute("SELECT pid FROM launched WHERE pid IS NOT NULL")]
    import psutil

    for pid in pids:
        try:
            p = psutil.Process(pid)
            if any("podium" in part for part in p.cmdline()):
                p.kill()
        except psutil.Error:
            pass


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = make_project(tmp_path_factory.mktemp("project"))
    srv = ServerProcess(root)
    try:
        yield srv
    finally:
        srv.stop()
        kill_workers(root)
