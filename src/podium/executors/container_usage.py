"""What a container attempt used, read from a cgroup Podium owns: ``meter`` and ``Meter``.

The container's processes run under the runtime's monitor (Podman's conmon), not as children of
the client Podium starts, so the client's own CPU time and peak RSS say nothing about them.
Instead each attempt's container is started with ``--cgroup-parent /podium/<container name>``:
the runtime creates that cgroup and puts the container's cgroup (and conmon's) inside it. The
container's own cgroup is deleted with the container, but its parent keeps the totals of the
children it had, so after the container is gone ``Meter.read`` finds:

- cgroup v1: ``cpuacct.usage`` (CPU nanoseconds, user + system) and
  ``memory.max_usage_in_bytes`` (the peak memory charged, page cache included) of the parent;
- cgroup v2: ``cpu.stat``'s ``usage_usec`` and ``memory.peak`` (Linux 5.19 and later) of it.

Both include conmon's small share (about a MiB and a few milliseconds). ``Meter.close``
removes the parent cgroup (its empty children first) in every hierarchy; ``sweep`` removes
those a killed process left, for the first container attempt of each run in a process (as
``container.cleanup`` does containers).

A cgroup parent path is only honoured by Podman with its ``cgroupfs`` cgroup manager, and only
root can create cgroups there; anything else (Docker, the systemd manager, rootless Podman)
gets no meter, and the attempt's usage stays unknown: never a guessed 0. A figure that cannot
be read is None on its own.

Invariants: reading never raises (usage informs, it never decides an attempt); the parent
cgroup is named after the container, so two attempts never share one.
"""

from __future__ import annotations

import os
import re
import threading
import time
from dataclasses import dataclass
from typing import Any

from podium.executors.container_runtime import ContainerRuntimeError, Runtime

#: Where cgroup hierarchies are mounted.
CGROUP_ROOT = "/sys/fs/cgroup"
#: The cgroup (under every hierarchy's root) holding one cgroup per metered attempt.
PARENT = "podium"
#: Seconds ``close`` keeps trying to remove a cgroup that still holds an exiting process.
CLOSE_WAIT = 2.0

_MANAGERS: dict[Runtime, str] = {}
_NAME = re.compile(r"podium-[0-9a-f]{16}")  # the containers' names (``container._prepare``)
_LOCK = threading.Lock()


@dataclass(frozen=True)
class Meter:
    """The cgroup that holds one attempt's container; ``parent`` is passed to the runtime."""

    parent: str  #: ``/podium/<name>``: ``--cgroup-parent``
    v2: bool

    def read(self) -> dict[str, Any]:
        """``cpu_time`` (seconds) and ``peak_rss`` (bytes) of the cgroup, each None when unknown."""
        rel = self.parent.lstrip("/")
        if self.v2:
            here = os.path.join(CGROUP_ROOT, rel)
            stat = _text(os.path.join(here, "cpu.stat")) or ""
            usec = next((ln.split()[1] for ln in stat.splitlines() if ln.startswith("usage_usec ")), None)
            cpu = _int(usec)
            peak = _int(_text(os.path.join(here, "memory.peak")))
            return {"cpu_time": None if cpu is None else cpu / 1e6, "peak_rss": peak or None}
        ns = _int(_text(os.path.join(CGROUP_ROOT, "cpuacct", rel, "cpuacct.usage")))
        peak = _int(_text(os.path.join(CGROUP_ROOT, "memory", rel, "memory.max_usage_in_bytes")))
        return {"cpu_time": None if ns is None else ns / 1e9, "peak_rss": peak or None}

    def close(self, wait: float = CLOSE_WAIT) -> None:
        """Remove the attempt's cgroup in every hierarchy (children first); a cgroup still busy
        after ``wait`` seconds is left (``sweep`` removes it later)."""
        rel = self.parent.lstrip("/")
        roots = [CGROUP_ROOT] if self.v2 else _hierarchies()
        deadline = time.monotonic() + wait
        for root in roots:
            top = os.path.join(root, rel)
            while os.path.isdir(top):
                try:
                    for here, dirs, _ in os.walk(top, topdown=False):
                        for d in dirs:
                            os.rmdir(os.path.join(here, d))
                    os.rmdir(top)
                except FileNotFoundError:
                    continue
                except OSError:
                    if time.monotonic() > deadline:
                        break
                    time.sleep(0.05)  # conmon exits a moment after the client returns


def meter(rt: Runtime, name: str) -> Meter | None:
    """A meter for the container ``name`` about to run, or None when it cannot be measured."""
    if rt.kind != "podman" or os.geteuid() != 0 or not os.path.isdir(CGROUP_ROOT):
        return None
    v2 = os.path.exists(os.path.join(CGROUP_ROOT, "cgroup.controllers"))
    if not v2 and not os.path.isdir(os.path.join(CGROUP_ROOT, "cpuacct")):
        return None
    if _manager(rt) != "cgroupfs":
        return None
    return Meter(f"/{PARENT}/{name}", v2)


def sweep(rt: Runtime) -> list[str]:
    """Remove the cgroups of attempts whose container is gone but whose process could not
    (killed, or interrupted at exit); return their names. A cgroup still holding a process,
    or whose container still exists, is kept."""
    probe = meter(rt, "")
    if probe is None:
        return []
    top = os.path.join(CGROUP_ROOT, "" if probe.v2 else "memory", PARENT)
    try:
        names = [n for n in os.listdir(top) if _NAME.fullmatch(n)]
    except OSError:
        return []
    alive = {str(c.get("Name", "")).lstrip("/") for c in rt.inspect(names)} if names else set()
    gone = [n for n in names if n not in alive]
    for name in gone:
        Meter(f"/{PARENT}/{name}", probe.v2).close(wait=0.0)
    return gone


def _manager(rt: Runtime) -> str:
    """Podman's cgroup manager (asked once per runtime), or ``?`` when it does not say."""
    with _LOCK:
        known = _MANAGERS.get(rt)
    if known is None:
        try:
            out = rt.command("info", "--format", "{{.Host.CgroupManager}}")
            known = out.stdout.strip() if out.returncode == 0 else "?"
        except ContainerRuntimeError:
            known = "?"
        with _LOCK:
            _MANAGERS[rt] = known
    return known


def _hierarchies() -> list[str]:
    try:
        names = os.listdir(CGROUP_ROOT)
    except OSError:
        return []
    return [os.path.join(CGROUP_ROOT, n) for n in sorted(names)]


def _text(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def _int(text: str | None) -> int | None:
    try:
        value = int((text or "").strip())
    except ValueError:
        return None
    return value if value >= 0 else None
