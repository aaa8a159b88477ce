"""Service tasks with real processes: a small HTTP server started by the run, probed until
ready, called by its dependents through ``${svc.url}``, stopped after its last user in every
ending (success, failure, SIGTERM, an orchestrator killed with SIGKILL and resumed), and
restarted on its port when it dies while users remain."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil

#: Run after the service's last user: is the (first) service process still running?
CHECK = """
import pathlib, time
time.sleep(1.5)
pid = int(pathlib.Path("pids").read_text().split()[0])
try:
    state = pathlib.Path(f"/proc/{pid}/stat").read_text().split()[2]
except OSError:
    state = "gone"
print("alive" if state not in ("gone", "Z") else "stopped")
"""
#: Kill the (first) service process, as a crash would.
CRASH = """
import os, pathlib, signal
os.kill(int(pathlib.Path("pids").read_text().split()[0]), signal.SIGKILL)
"""
WAIT_THEN_LATE = """  ask:
    url: "${model.url}/x"
  wait:
    argv: [sleep, "60"]
    after: [ask]
  late:
    url: "${model.url}/y"
    after: [wait]
"""

SERVER = r"""
import json, os, sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

delay = float(os.environ.get("READY_AFTER", "0"))
born = time.monotonic()
with open(os.environ["PIDS"], "a") as f:
    f.write(f"{os.getpid()}\n")

class H(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/health":
            ok = time.monotonic() - born >= delay
            self.send_response(200 if ok else 503); self.end_headers(); return
        if self.path.startswith("/fail"):
            self.send_response(500); self.end_headers(); return
        body = json.dumps({"path": self.path, "pid": os.getpid()}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass

ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
"""


def spec(tmp: Path, tasks: str, ready: str = "{path: /health, timeout: 20s}") -> Path:
    (tmp / "server.py").write_text(SERVER)
    (tmp / "check.py").write_text(CHECK)
    (tmp / "crash.py").write_text(CRASH)
    (tmp / "podium.toml").write_text(
        'allow_programs = ["python3", "sleep"]\nallow_hosts = ["127.0.0.1"]\nhttp_breaker_cooldown = 1\n'
    )
    text = f"""name: svc
tasks:
  model:
    kind: service
    argv: [python3, server.py]
    env: {{PIDS: "{tmp / "pids"}"}}
    ready: {ready}
{tasks}"""
    path = tmp / "flow.yaml"
    path.write_text(text)
    return path


def podium(tmp: Path, *args: str) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "podium", *args]
    return subprocess.Popen(cmd, cwd=tmp, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def run(tmp: Path, *args: str) -> tuple[int, str]:
    p = podium(tmp, "run", "flow.yaml", "--store", "s.db", "--no-progress", *args)
    out, err = p.communicate(timeout=180)
    return p.returncode, out + err


def pids(tmp: Path) -> list[int]:
    f = tmp / "pids"
    return [int(x) for x in f.read_text().split()] if f.exists() else []


def wait_for_descendant(p: subprocess.Popen[str], name: str, timeout: float = 60) -> None:
    """Wait until ``p`` has a descendant process called ``name``. A child that exits while it
    is looked at is skipped (psutil lists the children, then reads each one's /proc entry)."""
    deadline = time.monotonic() + timeout
    while True:
        if p.poll() is not None:
            raise AssertionError(f"podium ended before a {name!r} process started: {p.communicate()}")
        if time.monotonic() > deadline:
            p.kill()
            raise AssertionError(f"no {name!r} process within {timeout:g}s: {p.communicate()}")
        with contextlib.suppress(psutil.NoSuchProcess):
            for c in psutil.Process(p.pid).children(recursive=True):
                with contextlib.suppress(psutil.NoSuchProcess):
                    if c.name() == name:
                        return
        time.sleep(0.05)


@contextlib.contextmanager
def reaped(p: subprocess.Popen[str]) -> Iterator[subprocess.Popen[str]]:
    """``p``, killed and its pipes drained if the test left it running (a failed assertion)."""
    try:
        yield p
    finally:
        if p.returncode is None:
            p.kill()
            p.communicate()


def running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def events(tmp: Path, run_id: str) -> list:
    from podium.store import open_store

    store = open_store(str(tmp / "s.db"))
    try:
        return store.events(run_id)
    finally:
        store.close()


CHECK_DOWN = """
  check:
    kind: shell
    after: [ask2]
    argv: [python3, check.py]
"""


def test_a_service_serves_its_users_and_is_stopped_after_the_last_one(tmp_path: Path) -> None:
    spec(
        tmp_path,
        """  ask:
    url: "${model.url}/answer?q=1"
  ask2:
    url: "${model.url}/answer?q=2"
    after: [ask]
"""
        + CHECK_DOWN,
    )
    code, out = run(tmp_path, "--run-id", "ok")
    assert code == 0, out
    from podium.runtime import codec
    from podium.store import open_store

    store = open_store(str(tmp_path / "s.db"))
    try:
        results = {k: codec.decode(r) for k, r in store.results("ok").items()}
    finally:
        store.close()
    (pid,) = pids(tmp_path)
    assert results["ask"] == {"path": "/answer?q=1", "pid": pid}
    assert results["ask2"]["pid"] == pid  # one service served both
    assert results["model"]["url"].startswith("http://127.0.0.1:")
    # stopped once its last user (ask2) finished, while the run went on (check ran after)
    assert results["check"]["stdout"].strip() == "stopped"
    assert not running(pid)


def test_a_failed_user_still_stops_the_service(tmp_path: Path) -> None:
    spec(tmp_path, '  ask:\n    url: "${model.url}/fail"\n')
    code, out = run(tmp_path, "--run-id", "bad")
    assert code == 1 and "returned HTTP 500" in out
    (pid,) = pids(tmp_path)
    assert not running(pid)


def test_a_service_that_never_gets_ready_fails_clearly_and_is_killed(tmp_path: Path) -> None:
    spec(tmp_path, '  ask:\n    url: "${model.url}/x"\n', ready="{path: /health, timeout: 1s}")
    (tmp_path / "podium.toml").write_text('allow_programs = ["python3"]\nallow_hosts = ["127.0.0.1"]\n')
    text = (tmp_path / "flow.yaml").read_text().replace("env: {", "env: {READY_AFTER: '60', ")
    (tmp_path / "flow.yaml").write_text(text)
    code, out = run(tmp_path, "--run-id", "slow")
    assert code == 1
    assert "service 'model' ('python3') did not come up" in out and "within 1s (ready.timeout)" in out
    (pid,) = pids(tmp_path)
    assert not running(pid)


def test_sigterm_stops_the_service_with_the_run(tmp_path: Path) -> None:
    spec(tmp_path, WAIT_THEN_LATE)
    args = ("run", "flow.yaml", "--store", "s.db", "--no-progress", "--run-id", "term")
    with reaped(podium(tmp_path, *args)) as p:
        wait_for_descendant(p, "sleep")
        (pid,) = pids(tmp_path)
        assert running(pid)  # "late" still needs it
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=60)
    assert p.returncode == 130, err
    assert not running(pid)


def test_a_service_that_dies_is_restarted_on_its_port_for_its_remaining_users(tmp_path: Path) -> None:
    spec(
        tmp_path,
        """  ask:
    url: "${model.url}/answer?q=1"
  crash:
    argv: [python3, crash.py]
    after: [ask]
  again:
    url: "${model.url}/answer?q=2"
    after: [crash]
    retries: {attempts: 20, delay: 0.2, backoff: 1}
""",
    )
    code, out = run(tmp_path, "--run-id", "restart")
    assert code == 0, out
    first, second = pids(tmp_path)
    assert first != second and not running(first) and not running(second)


def test_after_the_orchestrator_is_killed_resume_stops_the_orphan_and_serves_the_rest(tmp_path: Path) -> None:
    spec(tmp_path, WAIT_THEN_LATE.replace("60", "2"))
    args = ("run", "flow.yaml", "--store", "s.db", "--no-progress", "--run-id", "crash")
    with reaped(podium(tmp_path, *args)) as p:
        wait_for_descendant(p, "sleep")
        p.kill()  # SIGKILL: no cleanup at all
        p.communicate(timeout=30)
    (orphan,) = pids(tmp_path)
    assert running(orphan)
    with reaped(podium(tmp_path, "resume", "crash", "--store", "s.db", "--no-progress")) as r:
        out, err = r.communicate(timeout=120)
    assert r.returncode == 0, out + err
    assert not running(orphan)  # the crashed run's service was found and stopped
    first, second = pids(tmp_path)
    assert first == orphan and not running(second)  # a fresh one served "late", then stopped


def test_a_service_lifetime_is_counted_in_r(tmp_path: Path) -> None:
    """The service lives through ``wait`` (2 s): R counts its life, not only its start."""
    spec(tmp_path, WAIT_THEN_LATE.replace("60", "2"))
    code, out = run(tmp_path, "--run-id", "cost")
    assert code == 0, out
    from podium.runtime.view import fold

    view = fold(events(tmp_path, "cost"))
    final = events(tmp_path, "cost")[-1]
    lived = final.data["services"]["model"]
    assert lived >= 2.0  # it served "ask" and "late", with "wait" (sleep 2) between
    assert view.tasks["model"].busy >= lived  # its start attempt plus its life
