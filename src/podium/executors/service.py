"""Service tasks: a long-running process (a model server) that the tasks after it call.

``start(call, policy)`` runs ``argv`` (a granted program, like a shell task's) in its own
session with ``PORT`` in its environment (a free loopback port Podium chose, or the one a
restart must reuse), then probes ``http://127.0.0.1:PORT`` + ``ready.path`` until it answers
2xx or 3xx, the process exits, or ``ready.timeout`` passes. Its result is what dependents use:
``{"url", "port", "pid", "started"}`` (``${svc.url}`` in a spec). Its output goes to a file
in a private folder, whose tail is quoted when it fails to come up.

``stop(record)`` ends the process group of a started service, only if the PID still belongs
to the process that was started (its start time matches: a reused PID is never signalled);
``alive(record)`` says whether it still runs. The run loop decides when
(``podium.runtime.services``).

Invariants: a service that did not come up is killed before ``start`` fails (nothing is left
running); the probe goes only to loopback; secrets in the environment are never written to
the result. This module imports only leaves, model and executors.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from typing import Any

from podium.errors import USER_ERROR
from podium.executors.failure import failure
from podium.model.task import TaskCall
from podium.policy import Policy
from podium.registry import REGISTRY, Registry
from podium.secrets import redact, secrets_in

DEFAULT_READY_TIMEOUT = 30.0
#: How much of the service's output is quoted when it fails to come up.
TAIL_BYTES = 2000
_START_TOLERANCE = 0.05


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(call: TaskCall, policy: Policy | None = None, port: int | None = None) -> dict[str, Any]:
    """Start the service of ``call`` and wait until it is ready (see the module docstring)."""
    from podium.executors.kinds import _program

    cfg = call.config
    pol = policy or Policy()
    argv = cfg.get("argv")
    if isinstance(argv, str) or not isinstance(argv, tuple | list) or not argv:
        raise failure(
            USER_ERROR, "SpecError", f"service {call.task_id!r}: argv must be a list", retryable=False
        )
    hidden = secrets_in(cfg)
    args = [str(a) for a in argv]
    program = _program(call.task_id, args, cfg.get("env") or {}, pol)
    port = port or free_port()
    env = dict(os.environ)
    env.update({str(k): str(v) for k, v in (cfg.get("env") or {}).items()})
    env["PORT"] = str(port)
    ready = dict(cfg.get("ready") or {})
    path = str(ready.get("path") or "/")
    limit = float(ready.get("timeout") or DEFAULT_READY_TIMEOUT)
    folder = tempfile.mkdtemp(prefix="podium-svc-")
    log_path = os.path.join(folder, "output.log")
    with open(log_path, "wb") as log:
        try:
            proc = subprocess.Popen(
                args,
                executable=program,
                env=env,
                cwd=str(cfg["cwd"]) if cfg.get("cwd") else None,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as e:
            raise failure(
                USER_ERROR,
                type(e).__name__,
                f"service {call.task_id!r}: cannot run {args[0]!r} ({e.strerror or e})",
                retryable=False,
            ) from None
    url = f"http://127.0.0.1:{port}"
    why = _wait_ready(proc, url + path, limit)
    if why is not None:
        _kill(proc.pid)
        proc.wait()
        tail = _tail(log_path)
        msg = f"service {call.task_id!r} ({args[0]!r}) did not come up: {why}" + (
            f"; its output ends:\n{tail}" if tail else ""
        )
        raise failure(USER_ERROR, "ServiceNotReady", redact(msg, hidden))
    return {"url": url, "port": port, "pid": proc.pid, "started": _start_time(proc.pid), "log": log_path}


def _wait_ready(proc: subprocess.Popen[bytes], url: str, limit: float) -> str | None:
    deadline = time.monotonic() + limit
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: no proxy
    pause = 0.02
    while True:
        code = proc.poll()
        if code is not None:
            return f"it exited with code {code} before answering {url}"
        try:
            with opener.open(url, timeout=1.0) as r:
                if r.status < 400:
                    return None
        except urllib.error.HTTPError:
            pass  # up but not ready (4xx/5xx): keep probing
        except (OSError, ValueError):
            pass  # not listening yet
        if time.monotonic() >= deadline:
            return f"{url} did not answer 2xx within {limit:g}s (ready.timeout)"
        time.sleep(pause)
        pause = min(0.25, pause * 1.5)


def _tail(path: str) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - TAIL_BYTES))
            return f.read().decode("utf-8", "replace").strip()
    except OSError:
        return ""


def _start_time(pid: int) -> float:
    import psutil

    try:
        return float(psutil.Process(pid).create_time())
    except psutil.Error:
        return 0.0


def alive(record: Any) -> bool:
    """Whether the service in ``record`` (a ``start`` result) still runs as that process."""
    if not isinstance(record, dict) or not isinstance(record.get("pid"), int):
        return False
    import psutil

    try:
        p = psutil.Process(record["pid"])
        if p.status() == psutil.STATUS_ZOMBIE:
            return False
        return abs(p.create_time() - float(record.get("started") or 0.0)) <= _START_TOLERANCE
    except psutil.Error:
        return False


def stop(record: Any, grace: float = 3.0) -> bool:
    """Stop the service in ``record`` (SIGTERM to its group, SIGKILL after ``grace`` s).
    True if it was running."""
    if not alive(record):
        return False
    pid = record["pid"]
    _kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and alive(record):
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # reap it if it is our child
        time.sleep(0.02)
    if alive(record):
        _kill(pid)
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, 0)
    return True


class ServiceHost:
    """The service capability (``podium.types.ServiceExecutor``) of an executor that runs on
    this machine: its services are processes here, started under its registry's policy."""

    _registry: Registry = REGISTRY

    def start_service(self, call: TaskCall, port: int | None = None) -> dict[str, Any]:
        return start(call, self._registry.policy, port)

    def stop_service(self, record: Any) -> bool:
        return stop(record)

    def service_alive(self, record: Any) -> bool:
        return alive(record)


def _kill(pgid: int, sig: int = signal.SIGKILL) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
