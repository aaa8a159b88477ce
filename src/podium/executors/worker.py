"""The entry point of a task worker process: ``main([CTL_FD, RESULT_FD])`` in a fresh interpreter.

Protocol (one task attempt per process):
1. The parent writes to ``CTL_FD`` an 8-byte big-endian length and a pickled payload
   ``{"call": TaskCall, "allowed": registry snapshot, "sys_path": [...], "memory": bytes,
   "rank": the worker's rank in a gang}``. The call's context (``podium.context()``) is
   entered before its function runs.
   The payload is plain data from the orchestrator itself; it carries no code. The function
   is resolved by name through a registry rebuilt from the snapshot (allowed modules and the
   file paths of flow files, loaded with ``Registry.load_file``).
2. The parent keeps ``CTL_FD``'s write end open while the task runs; when it reads EOF (the
   orchestrator died or gave up on us) the worker kills its own process group.
3. The worker writes ``pickle(("ok", result))`` or ``pickle(("err", ErrorRecord.to_dict()))`` to
   ``RESULT_FD`` and exits.

Memory: if ``memory`` > 0, ``RLIMIT_AS`` is set to the address space already mapped once the
task's function is imported, plus ``memory``, plus ``HEADROOM`` for the interpreter's own
growth, so a task allocating beyond its request gets ``MemoryError`` (recorded as ``oom``).
"""

from __future__ import annotations

import copyreg
import io
import os
import pickle
import resource
import struct
import sys
import threading
from types import MappingProxyType
from typing import Any

#: Address space granted beyond the task's memory request for the interpreter itself.
HEADROOM = 64 * 1024**2


def mappingproxy(d: dict[Any, Any]) -> MappingProxyType[Any, Any]:
    """Rebuild a read-only mapping when unpickling (frozen specs and configs are made of them)."""
    return MappingProxyType(d)


def _reduce_mappingproxy(m: MappingProxyType[Any, Any]) -> tuple[Any, tuple[dict[Any, Any]]]:
    return (mappingproxy, (dict(m),))


_DISPATCH = copyreg.dispatch_table.copy()
_DISPATCH[MappingProxyType] = _reduce_mappingproxy


def dumps(obj: Any) -> bytes:
    """Pickle plain data, including read-only mappings (which ``pickle`` alone refuses)."""
    buf = io.BytesIO()
    p = pickle.Pickler(buf, protocol=pickle.HIGHEST_PROTOCOL)
    p.dispatch_table = _DISPATCH
    p.dump(obj)
    return buf.getvalue()


def _read_exact(fd: int, n: int) -> bytes:
    chunks, got = [], 0
    while got < n:
        b = os.read(fd, min(n - got, 1 << 20))
        if not b:
            raise EOFError("orchestrator closed the control pipe before sending the task")
        chunks.append(b)
        got += len(b)
    return b"".join(chunks)


def _watch_parent(fd: int) -> None:
    """Kill this process group when the orchestrator's end of the control pipe closes."""
    try:
        while os.read(fd, 4096):
            pass
    except OSError:
        pass
    os.killpg(0, 9)


def _mapped_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def _high_water() -> int:
    """This process's peak RSS in bytes (VmHWM) and its reaped children's, whichever is larger.

    Not ``wait4``'s figure: Linux carries a parent's peak across fork and exec into the child's
    ``ru_maxrss``, so a worker started by a large orchestrator would report the orchestrator's
    peak. VmHWM belongs to the address space exec made, so it is the worker's own."""
    own = 0
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                own = int(line.split()[1]) * 1024
                break
    return max(own, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024)


def _limit_memory(memory: int) -> None:
    limit = _mapped_bytes() + memory + HEADROOM
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def _run(payload: dict[str, Any]) -> tuple[str, Any]:
    from podium.executors.kinds import record_of, run_call
    from podium.registry import Registry
    from podium.taskcontext import enter, of_call

    call = payload["call"]
    try:
        enter(of_call(call, payload.get("rank", 0)))
        registry = Registry()
        registry.restore(payload["allowed"])
        if call.spec.kind == "python" and call.spec.call:
            registry.resolve(call.spec.call)  # import the user's module before the memory limit
        if payload.get("memory"):
            _limit_memory(int(payload["memory"]))
        return ("ok", run_call(call, registry))
    except BaseException as exc:
        return ("err", record_of(exc).to_dict())


def _encode(outcome: tuple[str, Any], task_id: str) -> bytes:
    try:
        return dumps(outcome)
    except Exception as exc:
        from podium.errors import OOM, USER_ERROR, ErrorRecord

        rec = ErrorRecord(
            type=type(exc).__qualname__,
            message=f"result of task {task_id!r} cannot be pickled: {exc}",
            retryable=isinstance(exc, MemoryError),
            kind=OOM if isinstance(exc, MemoryError) else USER_ERROR,
        )
        return dumps(("err", rec.to_dict()))


def main(argv: list[str]) -> None:
    ctl, out = int(argv[0]), int(argv[1])
    os.set_inheritable(ctl, False)
    os.set_inheritable(out, False)
    (size,) = struct.unpack(">Q", _read_exact(ctl, 8))
    payload = pickle.loads(_read_exact(ctl, size))
    threading.Thread(target=_watch_parent, args=(ctl,), name="podium-parent-watch", daemon=True).start()
    sys.path[:] = payload["sys_path"]
    data = _encode(_run(payload), payload["call"].task_id) + struct.pack(">Q", _high_water())
    view = memoryview(data)
    while view:
        n = os.write(out, view)
        view = view[n:]
    os.close(out)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    os._exit(0)
