"""Container runtimes: Podman, or Docker when its daemon answers, driven through their CLI.

``detect()`` finds the runtime once per process (and per setting of the variables below):

- ``PODIUM_CONTAINER_RUNTIME``: ``podman``, ``docker`` or ``auto`` (default: Podman if it is
  installed, else Docker if ``docker version`` reaches a daemon);
- ``PODIUM_CONTAINER_ROOT`` (Podman only): a folder holding the runtime's state, passed as
  ``--root DIR/root --runroot DIR/run``. Unset, Podman uses its own default storage
  (``/var/lib/containers`` for root), where ``podman build`` and ``podman pull`` put images.
  Podman refuses a run folder longer than 50 characters, so keep DIR short.

Neither usable gives one ``ContainerRuntimeError`` line saying what was tried and how to fix it.

A ``ContainerSpec`` is plain data describing one container; ``Runtime.run_argv`` turns it into
the argv of ``run`` (attached for a task, detached for a long-running service), always with:
``--network none`` unless ``host`` is asked for (never the default bridge, which edits
iptables), ``--ulimit nofile=1024:1024 --ulimit nproc=1024:1024`` and, for Podman, the ``runc``
OCI runtime when it is installed (crun cannot set rlimits on hosts without CAP_SYS_RESOURCE),
``--log-driver none`` (the caller reads the output; nothing grows in the runtime's storage),
and ``--security-opt no-new-privileges``. Environment values travel in an env file the caller
writes (mode 0600), never on a command line and never in the client's own environment, so a
spec cannot reconfigure the runtime (``CONTAINERS_CONF``, ``DOCKER_HOST``) through them.

Every container Podium starts carries the labels ``podium.run``, ``podium.task``,
``podium.attempt`` and ``podium.owner`` (host, pid and start time of the process that started
it). ``Runtime.cleanup(run_id)`` removes the run's containers whose owner process is dead:
those of attempts a killed orchestrator (or worker) left behind. A live owner's containers are
never touched, so concurrent callers are safe.

Invariants: every command is an argv list (no shell); every command has a time limit; this
module imports only leaves and model.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from podium.errors import PodiumError
from podium.model.container import NETWORKS

RUNTIMES = ("podman", "docker")
LABEL_RUN, LABEL_TASK, LABEL_ATTEMPT, LABEL_OWNER = (
    "podium.run",
    "podium.task",
    "podium.attempt",
    "podium.owner",
)
#: Seconds a management command (inspect, rm, ps, version) may take.
COMMAND_TIMEOUT = 60.0
#: Podman refuses a longer ``--runroot``.
MAX_RUNROOT = 50
ULIMITS = ("--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024")


class ContainerRuntimeError(PodiumError):
    """No container runtime is usable, or one of its management commands failed."""


@dataclass(frozen=True, slots=True)
class Mount:
    """A host folder bound into the container at ``target``."""

    source: str
    target: str
    read_only: bool = True


@dataclass(frozen=True)
class ContainerSpec:
    """One container to run. ``env`` holds only non-secret values (they appear on the command
    line); secret values go in ``env_file``. ``stop_after`` (seconds, Podman only) makes the
    runtime itself kill the container after that long, even if Podium is gone."""

    image: str
    name: str
    argv: tuple[str, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)
    env_file: str | None = None
    workdir: str | None = None
    network: str = "none"
    cpus: float = 0.0
    memory: int = 0
    mounts: tuple[Mount, ...] = ()
    stop_after: float | None = None
    cgroup_parent: str | None = None  #: a cgroup for the container's (``container_usage``)


@dataclass(frozen=True)
class Runtime:
    """A usable container runtime (``kind`` is ``podman`` or ``docker``) and how to call it."""

    kind: str
    path: str
    root: str | None = None
    oci: str | None = None  # Podman's OCI runtime binary name (runc), if one is forced

    def base(self) -> list[str]:
        """The runtime's argv prefix (global options before the subcommand)."""
        argv = [self.path]
        if self.kind == "podman":
            if self.root:
                argv += [
                    "--root",
                    os.path.join(self.root, "root"),
                    "--runroot",
                    os.path.join(self.root, "run"),
                ]
            if self.oci:
                argv += ["--runtime", self.oci]
        return argv

    def run_argv(self, spec: ContainerSpec, detach: bool = False) -> list[str]:
        """The argv that runs ``spec`` (attached unless ``detach``)."""
        if spec.network not in NETWORKS:
            raise ValueError(f"network must be one of {', '.join(NETWORKS)}, not {spec.network!r}")
        argv = [*self.base(), "run", "--name", spec.name, "--network", spec.network, *ULIMITS]
        argv += ["--log-driver", "none", "--security-opt", "no-new-privileges"]
        if detach:
            argv.append("--detach")
        for k, v in spec.labels.items():
            argv += ["--label", f"{k}={v}"]
        if spec.cpus > 0:
            argv += ["--cpus", f"{spec.cpus:g}"]
        if spec.memory > 0:  # swap as large as memory: no swap, so the limit is a real limit
            argv += ["--memory", f"{spec.memory}b", "--memory-swap", f"{spec.memory}b"]
        if spec.cgroup_parent:
            argv += ["--cgroup-parent", spec.cgroup_parent]
        if spec.stop_after is not None and self.kind == "podman":
            argv += ["--timeout", str(max(1, int(spec.stop_after + 0.999)))]
        for m in spec.mounts:
            if ":" in m.source or ":" in m.target:
                raise ValueError(f"a mounted path cannot hold ':' ({m.source} -> {m.target})")
            argv += ["--volume", f"{m.source}:{m.target}:{'ro' if m.read_only else 'rw'}"]
        if spec.env_file:
            argv += ["--env-file", spec.env_file]
        for k, v in spec.env.items():
            argv += ["--env", f"{k}={v}"]
        if spec.workdir:
            argv += ["--workdir", spec.workdir]
        return [*argv, spec.image, *spec.argv]

    # -- management commands ---------------------------------------------------------------
    def command(self, *args: str, timeout: float = COMMAND_TIMEOUT) -> subprocess.CompletedProcess[str]:
        """Run one management command; its output is returned, whatever its exit code."""
        try:
            return subprocess.run(
                [*self.base(), *args],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                errors="replace",
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise ContainerRuntimeError(
                f"'{self.kind} {args[0]}' did not answer within {timeout:g}s"
            ) from None
        except OSError as e:
            raise ContainerRuntimeError(f"cannot run {self.path}: {e.strerror}") from None

    def inspect(self, names: Sequence[str]) -> list[dict[str, Any]]:
        """The runtime's JSON description of each named container that exists."""
        if not names:
            return []
        out = self.command("container", "inspect", *names)
        try:
            found = json.loads(out.stdout or "[]")
        except ValueError:
            return []
        return [c for c in found if isinstance(c, dict)] if isinstance(found, list) else []

    def find(self, labels: Mapping[str, str]) -> list[str]:
        """Ids of every container (running or not) carrying all of ``labels``."""
        filters = [a for k, v in labels.items() for a in ("--filter", f"label={k}={v}")]
        out = self.command("ps", "--all", "--quiet", "--no-trunc", *filters)
        if out.returncode != 0:
            raise ContainerRuntimeError(f"'{self.kind} ps' failed: {first_error(out.stderr)}")
        return out.stdout.split()

    def remove(self, names: Iterable[str]) -> None:
        """Kill and remove containers at once; ones that are already gone are fine."""
        names = list(names)
        if names:
            self.command("rm", "--force", *(["--time", "0"] if self.kind == "podman" else []), *names)

    def stop(self, name: str, grace: float = 10.0) -> None:
        """Ask a container to stop (SIGTERM), killing it after ``grace`` seconds."""
        self.command("stop", "--time", str(int(grace)), name, timeout=grace + COMMAND_TIMEOUT)

    def cleanup(self, run_id: str) -> list[str]:
        """Remove the containers of ``run_id`` whose owner process is dead; return their names."""
        ids = self.find({LABEL_RUN: run_id})
        dead = [
            str(c.get("Name", c.get("Id", ""))).lstrip("/")
            for c in self.inspect(ids)
            if not owner_alive(((c.get("Config") or {}).get("Labels") or {}).get(LABEL_OWNER, ""))
        ]
        self.remove(dead)
        return dead


def first_error(text: str) -> str:
    """The most telling line of a runtime's stderr (its ``Error:`` line, else the last line)."""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    for ln in lines:
        if ln.lower().startswith(("error:", "error response", "docker: error")):
            return ln
    return lines[-1] if lines else "(no message)"


# -- owners -----------------------------------------------------------------------------------
_OWNER: str | None = None


def owner() -> str:
    """``host:pid:start`` of this process (the start time guards against pid reuse)."""
    global _OWNER
    if _OWNER is None or int(_OWNER.split(":")[-2]) != os.getpid():
        _OWNER = f"{socket.gethostname()}:{os.getpid()}:{_start_time(os.getpid())}"
    return _OWNER


def owner_alive(label: str) -> bool:
    """Whether the process named by an owner label still runs. Unknown formats and other hosts'
    processes count as alive: only a provably dead owner's containers are removed."""
    host, _, rest = label.rpartition(":")
    host, _, pid = host.rpartition(":")
    if not host or not pid.isdigit() or host != socket.gethostname():
        return True
    start = _start_time(int(pid))
    return start == "?" or start == rest


def _start_time(pid: int) -> str | None:
    """The process's start time as text; None if it is gone (or a zombie), ``?`` if unknown."""
    import psutil

    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        return f"{proc.create_time():.2f}"
    except psutil.NoSuchProcess:
        return None
    except psutil.Error:
        return "?"


# -- detection --------------------------------------------------------------------------------
_DETECTED: dict[tuple[str, str, str], Runtime | ContainerRuntimeError] = {}
_DETECT_LOCK = threading.Lock()


def detect() -> Runtime:
    """The container runtime to use (cached per process and settings); raises
    ``ContainerRuntimeError`` with one line saying why none is usable."""
    choice = os.environ.get("PODIUM_CONTAINER_RUNTIME", "auto").strip().lower() or "auto"
    root = os.environ.get("PODIUM_CONTAINER_ROOT", "").strip()
    key = (choice, root, os.environ.get("PATH", ""))
    with _DETECT_LOCK:
        found = _DETECTED.get(key)
        if found is None:
            found = _DETECTED[key] = _detect(choice, root or None)
    if isinstance(found, ContainerRuntimeError):
        raise found
    return found


def _detect(choice: str, root: str | None) -> Runtime | ContainerRuntimeError:
    if choice not in ("auto", *RUNTIMES):
        return ContainerRuntimeError(
            f"PODIUM_CONTAINER_RUNTIME={choice!r} is not a container runtime: use podman, docker or auto"
        )
    tried: list[str] = []
    if choice in ("auto", "podman"):
        path = shutil.which("podman")
        if path and root and len(os.path.join(root, "run")) > MAX_RUNROOT:
            return ContainerRuntimeError(
                f"PODIUM_CONTAINER_ROOT={root!r} is too long: Podman needs its run folder "
                f"({os.path.join(root, 'run')}) to be at most {MAX_RUNROOT} characters"
            )
        if path:
            return Runtime("podman", path, root, "runc" if shutil.which("runc") else None)
        tried.append("podman is not installed")
    if choice in ("auto", "docker"):
        path = shutil.which("docker")
        if path is None:
            tried.append("docker is not installed")
        else:
            why = _docker_daemon(Runtime("docker", path))
            if why is None:
                return Runtime("docker", path)
            tried.append(f"docker's daemon does not answer ({why})")
    return ContainerRuntimeError(
        f"no usable container runtime: {'; '.join(tried)}. Install Podman "
        "(apt-get install podman runc) or start a Docker daemon"
    )


def _docker_daemon(rt: Runtime) -> str | None:
    """None when ``docker version`` reaches a daemon, else why not."""
    try:
        out = rt.command("version", "--format", "{{.Server.Version}}", timeout=15.0)
    except ContainerRuntimeError as e:
        return str(e)
    return None if out.returncode == 0 and out.stdout.strip() else first_error(out.stderr)
