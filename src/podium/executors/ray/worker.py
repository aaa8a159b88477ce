"""What runs inside Ray: the body of every Podium call on a Ray worker or worker actor.

The driver (``podium.executors.ray.executor``) sends plain data per call: a header with the spec
and the registry snapshot (cached per worker process) and ``(task_id, kwargs, config, timeout,
put_at)``.
The worker resolves the function by name through a registry rebuilt from that snapshot, never from
code in the request, runs the call, and returns ``(value, meta)``; ``meta`` says where it ran and
for how many seconds and what the call wrote (``log``: its stdout, stderr and logging, captured
as in a thread pool), and a failure comes back as ``meta["error"]`` (an ``ErrorRecord`` dict),
never as a raised exception, so it crosses the process boundary as a record. A result of at
least the call's ``put_at`` bytes (pickled, buffers counted) is put in Ray's object store by the
worker (``ray.put``: NumPy arrays are stored and later read without a copy) and the reply carries
only a ``Stored`` handle to it, so the reply stays small and a downstream call receives that
object alone.

A ``PodiumWorker`` actor runs calls in batches (``run_many``): it queues each batch behind the
calls left from earlier ones and replies once ``budget`` seconds have passed (checked between
calls) or nothing is left, so its replies return the results in the order the calls came.

Invariants: this module imports nothing of the driver's side of the package (only ``base``), so
a worker loads no more than it runs; it does not import ``ray`` at import time.
"""

from __future__ import annotations

import os
import pickle
import time
from collections import deque
from collections.abc import Mapping
from typing import Any, NamedTuple

from podium.errors import ErrorRecord
from podium.executors.capture import begin, end, install
from podium.executors.kinds import record_of, run_call
from podium.executors.ray.base import ray_api
from podium.model.resources import Resources
from podium.model.task import TaskCall
from podium.registry import Registry

_NO_RESOURCES = Resources()


#: ``Slot.pos`` of an object that is the value itself (a ``Stored`` result).
VALUE = -2


class Slot(NamedTuple):
    """Placeholder for a keyword argument passed as the ``ref``-th held ObjectRef: that
    object is a Ray task's ``(value, meta)`` (``pos`` -1), a batch reply whose ``pos``-th
    result is the value, or the value itself (``pos`` ``VALUE``)."""

    ref: int
    pos: int = -1


class Stored(NamedTuple):
    """A result the worker put in Ray's object store: its ObjectRef and pickled size. The
    object is owned by the worker process that put it (lost with it)."""

    ref: Any
    size: int


_REGISTRIES: dict[tuple[tuple[str, str], ...], Registry] = {}


def _registry_for(allowed: Mapping[str, str | None]) -> Registry:
    key = tuple(sorted((k, v or "") for k, v in allowed.items()))
    reg = _REGISTRIES.get(key)
    if reg is None:
        reg = Registry()
        reg.restore(dict(allowed))
        _REGISTRIES[key] = reg
    return reg


_HEADERS: dict[bytes, tuple[Any, dict[str, str | None]]] = {}


def _header(header: bytes) -> tuple[Any, dict[str, str | None]]:
    """The (spec, registry snapshot) a call's header bytes encode; cached per worker process."""
    got = _HEADERS.get(header)
    if got is None:
        if len(_HEADERS) >= 1024:
            _HEADERS.clear()
        got = _HEADERS[header] = pickle.loads(header)
    return got


def _size(value: Any) -> int:
    """Pickled size of ``value`` (out-of-band buffers counted, not copied); -1 if unpicklable."""
    if value is None or isinstance(value, bool | int | float):
        return 0
    buffers: list[pickle.PickleBuffer] = []
    try:
        n = len(pickle.dumps(value, protocol=5, buffer_callback=buffers.append))
    except Exception:
        return -1
    return n + sum(b.raw().nbytes for b in buffers)


_NODE_ID: list[str] = []


def _node_id() -> str:
    """The Ray node id of this worker process (a process never changes node)."""
    if not _NODE_ID:
        _NODE_ID.append(ray_api().ray.get_runtime_context().get_node_id())
    return _NODE_ID[0]


def run_on_worker(blob: bytes, *held: Any) -> tuple[Any, dict[str, Any]]:
    """The body of every call: rebuild the registry, run the call, return ``(value, meta)``
    (``value`` a ``Stored`` handle if it is at least ``put_at`` bytes).

    ``held`` are upstream results Ray resolved from held ObjectRefs (see ``Slot``). The task's
    own failure is returned as ``meta["error"]`` (an ``ErrorRecord`` dict), never raised, so it
    crosses as a record."""
    meta: dict[str, Any] = {"node_id": _node_id(), "pid": os.getpid(), "started": time.time()}
    t0, cpu0 = time.perf_counter(), time.process_time()
    task_id = "?"
    try:
        header, task_id, kwargs, config, timeout, put_at = pickle.loads(blob)
        spec, allowed = _header(header)
        if held:
            kwargs = {k: _slot_value(v, held) if isinstance(v, Slot) else v for k, v in kwargs.items()}
        call = TaskCall("", task_id, 0, spec, kwargs, config, _NO_RESOURCES, "", timeout)
        install()
        begin(call)
        try:
            value = run_call(call, _registry_for(allowed))
        finally:
            log = end()
            if log is not None:  # what it wrote, as a record (the driver knows the attempt)
                meta["log"] = log.record()
    except BaseException as exc:
        _measure(meta, t0, cpu0)
        meta["error"] = record_of(exc).to_dict()
        return None, meta
    _measure(meta, t0, cpu0)
    size = _size(value)
    if size < 0:
        msg = f"result of task {task_id!r} cannot be pickled ({type(value).__name__})"
        meta["error"] = ErrorRecord("PicklingError", msg, retryable=False).to_dict()
        return None, meta
    meta["size"] = size
    if put_at and size >= put_at:
        try:
            return Stored(ray_api().ray.put(value), size), meta
        except Exception:  # the object store refused it: it travels in the reply as before
            pass
    return value, meta


def _slot_value(slot: Slot, held: tuple[Any, ...]) -> Any:
    reply = held[slot.ref]
    if slot.pos == VALUE:
        return reply
    return reply[0] if slot.pos < 0 else reply[0][slot.pos][0]


class PodiumWorker:
    """A long-lived Ray actor running one call at a time (``max_concurrency=1``), pinned to its
    node. Calls sent to a warm actor need no worker lease, which a Ray task needs every time."""

    def __init__(self) -> None:
        self._pending: deque[tuple[bytes, bool, tuple[Any, ...]]] = deque()

    def run_many(
        self, budget: float, items: tuple[tuple[bytes, bool], ...], *held: Any
    ) -> tuple[list[tuple[Any, dict[str, Any]]], int]:
        """Queue ``items`` (a call's bytes, and whether it has a timeout) behind the calls left
        from earlier batches, then run queued calls in order until none is left or ``budget``
        seconds have passed since this batch began; a call with a timeout is only started
        first (the reply goes out before it), so the driver knows when it started. Return the
        ``(value, meta)`` of the calls run, in order, and how many are still queued here."""
        pending = self._pending
        for blob, timed in items:
            pending.append((blob, timed, held))
        out: list[tuple[Any, dict[str, Any]]] = []
        deadline = time.perf_counter() + budget
        while pending:
            if out and pending[0][1]:
                break
            blob, _timed, refs = pending.popleft()
            out.append(run_on_worker(blob, *refs))
            if time.perf_counter() >= deadline:
                break
        return out, len(pending)


def _measure(meta: dict[str, Any], t0: float, cpu0: float) -> None:
    """The call's wall and CPU seconds, and the worker's peak RSS so far (an upper bound of the
    call's: a Ray worker process serves many calls), as ``model.usage`` reads them."""
    import resource

    meta["seconds"] = time.perf_counter() - t0
    meta["cpu_time"] = max(0.0, time.process_time() - cpu0)
    meta["peak_rss"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    meta["measured"] = "ray"
