"""Service tasks: a long-running process (a model server) that the tasks after it call.

``start(call, policy)`` runs ``argv`` (a granted program, like a shell task's) in its own
session with ``PORT`` in its environment (a free loopback port Podium chose, or the one a
restart must reuse), then probes ``http://127.0.0.1:PORT`` + ``ready.path`` until it answers
2xx or 3xx, the process exits, or ``ready.timeout`` passes. Its result is what dependents use:
``{"url", "port", "pid", "started"}`` (``${svc.url}`` in a spec). Its output goes to a file
in a private folder, whose tail is quoted when it fails to come up.

With ``image`` the service is a container instead (``podium.executors.container_runtime``:
Podman or Docker, detached, ``--network host`` so it can listen on loopback, labelled with
the run, the task and the owner process, ``cpu``/``memory`` as limits, ``argv`` its command,
``env`` through a 0600 file removed once it started); its record names the container.

``stop(record)`` ends the process group of a started service (or removes its container),
only if the PID still belongs to the process that was started (its start time matches: a
reused PID is never signalled);
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
from podium.executors.program import granted_program
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
    cfg = call.config
    if cfg.get("image"):
        return _start_container(call, port or free_port())
    pol = policy or Policy()
    argv = cfg.get("argv")
    if isinstance(argv, str) or not isinstance(argv, tuple | list) or not argv:
        raise failure(
            USER_ERROR, "SpecError", f"service {call.task_id!r}: argv must be a list", retryable=False
        )
    hidden = secrets_in(cfg)
    args = [str(a) for a in argv]
    program = granted_program(call.task_id, args, cfg.get("env") or {}, pol, "service")
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


def _wait_ready(proc: Any, url: str, limit: float) -> str | None:
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


def _start_container(call: TaskCall, port: int) -> dict[str, Any]:
    import shutil
    import uuid

    from podium.executors import container_runtime as crt

    cfg = call.config
    hidden = secrets_in(cfg)
    rt = crt.detect()
    name = f"podium-svc-{uuid.uuid4().hex[:12]}"
    folder = tempfile.mkdtemp(prefix="podium-svc-")
    env_file = os.path.join(folder, "env")
    env = {str(k): str(v) for k, v in (cfg.get("env") or {}).items()}
    env["PORT"] = str(port)
    fd = os.open(env_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:  # values may be secrets: never on the command line
        f.writelines(f"{k}={v}\n" for k, v in env.items())
    spec = crt.ContainerSpec(
        image=str(cfg["image"]),
        name=name,
        argv=tuple(str(a) for a in cfg.get("argv") or ()),
        labels={crt.LABEL_RUN: call.run_id, crt.LABEL_TASK: call.task_id, crt.LABEL_OWNER: crt.owner()},
        env_file=env_file,
        network="host",
        cpus=call.resources.cpu,
        memory=call.resources.memory,
    )
    try:
        done = subprocess.run(rt.run_argv(spec, detach=True), capture_output=True, text=True, timeout=120)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if done.returncode != 0:
        rt.remove([name])
        msg = f"service {call.task_id!r}: {spec.image} did not start: {crt.first_error(done.stderr)}"
        raise failure(USER_ERROR, "ServiceNotReady", redact(msg, hidden))
    url = f"http://127.0.0.1:{port}"
    record: dict[str, Any] = {"url": url, "port": port, "container": name, "runtime": rt.kind}
    ready = dict(cfg.get("ready") or {})
    limit = float(ready.get("timeout") or DEFAULT_READY_TIMEOUT)
    why = _wait_ready(_Container(rt, name), url + str(ready.get("path") or "/"), limit)
    if why is not None:
        rt.remove([name])
        raise failure(
            USER_ERROR,
            "ServiceNotReady",
            redact(f"service {call.task_id!r} ({spec.image}) did not come up: {why}", hidden),
        )
    return record


class _Container:
    """What ``_wait_ready`` asks of a process, for a container."""

    def __init__(self, rt: Any, name: str) -> None:
        self.rt, self.name = rt, name

    def poll(self) -> int | None:
        states = self.rt.inspect([self.name])
        state = (states[0].get("State") or {}) if states else {}
        return None if state.get("Running") else int(state.get("ExitCode") or 0)


def _container_alive(record: dict[str, Any]) -> bool:
    from podium.executors import container_runtime as crt

    try:
        return _Container(crt.detect(), str(record["container"])).poll() is None
    except crt.ContainerRuntimeError:
        return False


def alive(record: Any) -> bool:
    """Whether the service in ``record`` (a ``start`` result) still runs as that process."""
    if isinstance(record, dict) and isinstance(record.get("container"), str):
        return _container_alive(record)
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
    if isinstance(record.get("container"), str):
        from podium.executors import container_runtime as crt

        crt.detect().remove([record["container"]])
        return True
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
