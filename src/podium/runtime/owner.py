"""Who owns a run: the orchestrator process, named ``host:pid:start`` where ``start`` is the
process's start time as the OS reports it.

A PID alone does not name a process for long: when the orchestrator dies the OS may give its
PID to any other process. The start time tells them apart, so ``owner_process`` finds the
owner only if a process with that PID is alive on this host *and* started when the owner did.

Invariants: nothing signals or waits on a PID that ``owner_process`` did not return; an owner
recorded without a start time (``host:pid``, by an older Podium) is never provably alive, and
``check_owner`` keeps refusing it while its PID lives, as before.
"""

from __future__ import annotations

import os
import socket

from podium.errors import ConflictError

#: Start times are compared to this many seconds (the OS reports them in clock ticks).
START_TOLERANCE = 0.02
_OWN: tuple[int, str] | None = None


def owner_id() -> str:
    """``host:pid:start`` of this process (computed once per process)."""
    global _OWN
    pid = os.getpid()
    if _OWN is None or _OWN[0] != pid:  # a forked child is another owner
        _OWN = (pid, f"{socket.gethostname()}:{pid}:{_start_time(pid):.3f}")
    return _OWN[1]


def _start_time(pid: int) -> float:
    import psutil

    return float(psutil.Process(pid).create_time())


def _parse(owner: str) -> tuple[str, int, float | None] | None:
    parts = owner.split(":")
    if len(parts) == 2 and parts[1].isdigit():
        return parts[0], int(parts[1]), None
    if len(parts) == 3 and parts[1].isdigit():
        try:
            return parts[0], int(parts[1]), float(parts[2])
        except ValueError:
            return None
    return None


def _alive(pid: int) -> tuple[bool, float | None]:
    """(a live, non-zombie process has ``pid``, its start time if readable)."""
    import psutil

    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False, None
        return True, float(proc.create_time())
    except psutil.NoSuchProcess:
        return False, None
    except psutil.Error:
        return True, None


def owner_process(owner: str) -> int | None:
    """The PID of ``owner`` if it is provably alive on this host (PID and start time match)."""
    parsed = _parse(owner or "")
    if parsed is None:
        return None
    host, pid, start = parsed
    if start is None or host != socket.gethostname():
        return None
    alive, started = _alive(pid)
    if not alive or started is None or abs(started - start) > START_TOLERANCE:
        return None
    return pid


def owner_pid(owner: str) -> int | None:
    """The PID written in ``owner`` (None if it is not an owner id)."""
    parsed = _parse(owner or "")
    return None if parsed is None else parsed[1]


def owner_gone(owner: str) -> bool:
    """Whether ``owner`` provably no longer runs: it was a process of this host and no live
    process has its PID, or the one that has it started at another time (the PID was reused).
    Another host's owner is never known to be gone."""
    parsed = _parse(owner or "")
    if parsed is None or parsed[0] != socket.gethostname():
        return False
    alive, started = _alive(parsed[1])
    if not alive:
        return True
    start = parsed[2]
    return start is not None and started is not None and abs(started - start) > START_TOLERANCE


def check_owner(owner: str) -> None:
    """Refuse to run a run whose recorded owner is another live process on this host (a dead
    process, a zombie, a PID now used by a process that started later, or another host's
    process does not count: the lease is then stale)."""
    parsed = _parse(owner or "")
    if parsed is None:
        return
    host, pid, start = parsed
    if host != socket.gethostname() or pid == os.getpid():
        return
    if start is not None:
        if owner_process(owner) is None:
            return
    elif not _alive(pid)[0]:
        return
    raise ConflictError(f"run is still being run by process {pid} on {host}; cancel it first")
