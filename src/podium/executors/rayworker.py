"""What runs inside Ray: the body of every Podium call on a Ray worker or worker actor.

The driver (``podium.executors.ray``) sends plain data: the pickled ``TaskCall`` and a header
with the spec and the registry snapshot (cached per worker process). The worker resolves the
function by name through a registry rebuilt from that snapshot, never from code in the request,
runs the call, and returns ``(value, meta)``; a failure comes back as ``meta["error"]`` (an
``ErrorRecord`` dict), never as a raised exception, so it crosses the process boundary as a
record. This module must not import ``ray`` at import time (workers import it lazily).
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Mapping
from typing import Any, NamedTuple

from podium.errors import ErrorRecord
from podium.executors.kinds import record_of, run_call
from podium.registry import Registry


class Slot(NamedTuple):
    """Placeholder for a keyword argument passed as the ``index``-th held ObjectRef."""

    index: int


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
        import ray

        _NODE_ID.append(ray.get_runtime_context().get_node_id())
    return _NODE_ID[0]


def run_on_worker(blob: bytes, *held: Any) -> tuple[Any, dict[str, Any]]:
    """The body of every Ray task: rebuild the registry, run the call, return ``(value, meta)``.

    ``held`` are upstream results Ray resolved from held ObjectRefs (each a ``(value, meta)``).
    The task's own failure is returned as ``meta["error"]`` (an ``ErrorRecord`` dict), never
    raised, so it crosses as a record."""
    meta: dict[str, Any] = {"node_id": _node_id(), "pid": os.getpid()}
    try:
        header, call = pickle.loads(blob)
        spec, allowed = _header(header)
        call = call._replace(spec=spec)
        if held:
            kwargs = {k: held[v.index][0] if isinstance(v, Slot) else v for k, v in call.kwargs.items()}
            call = call._replace(kwargs=kwargs)
        value = run_call(call, _registry_for(allowed))
    except BaseException as exc:
        meta["error"] = record_of(exc).to_dict()
        return None, meta
    size = _size(value)
    if size < 0:
        msg = f"result of task {call.task_id!r} cannot be pickled ({type(value).__name__})"
        meta["error"] = ErrorRecord("PicklingError", msg, retryable=False).to_dict()
        return None, meta
    meta["size"] = size
    return value, meta


class PodiumWorker:
    """A long-lived Ray actor running one call at a time (``max_concurrency=1``), pinned to its
    node. Calls sent to a warm actor need no worker lease, which a Ray task needs every time."""

    def run(self, blob: bytes, *held: Any) -> tuple[Any, dict[str, Any]]:
        return run_on_worker(blob, *held)
