"""What a call sends to its worker, and the large results kept in Ray's object store for it.

A call travels as plain data: ``(header, task_id, kwargs, config, timeout, put_at)`` pickled,
where the header is the pickled ``(spec, registry snapshot)``, cached per spec (workers cache it
too). A result of at least ``large_result`` bytes is put in Ray's object store by its worker
(``put_at``; not by a gang's workers, which are killed once they reply) and reaches the driver
as a ``worker.Stored`` handle; the driver reads it from there (``RayExecutor.deliver``) and it
is *held*: its
ObjectRef (or the reply's) is kept (up to ``hold_bytes`` in all, oldest dropped first), and a
later call whose keyword argument *is* that value (the engine passes results by identity) gets a
``Slot`` pointing at the ref instead, so Ray hands the worker the value from its object store,
not from the driver.

Invariants: a value is swapped for a ``Slot`` only while it is held and only if the argument is
that very object; a batch passes each ref once; the held bytes never exceed ``hold_bytes`` after
``hold`` returns; a held result that may be lost (its attempt lost its worker) is dropped.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from podium.executors.ray.base import Attempt, ray_api
from podium.executors.ray.worker import VALUE, Slot, Stored
from podium.executors.worker import dumps
from podium.model.task import TaskCall
from podium.registry import Registry


class Payloads:
    """Builds calls' payloads and holds large results (see the module docstring)."""

    def __init__(self, registry: Registry, lock: threading.RLock, large_result: int, hold_bytes: int) -> None:
        self._registry = registry
        self._lock = lock
        self.large = large_result
        self._hold_limit = hold_bytes
        self._headers: dict[int, tuple[Any, dict[str, str | None], bytes]] = {}
        self._held: OrderedDict[int, tuple[Any, Any, int, int]] = OrderedDict()
        self._held_bytes = 0

    def build(self, att: Attempt, refs: list[Any], index: dict[int, int], put: bool = True) -> bytes:
        """The pickled ``(header, task_id, kwargs, config, timeout, put_at)`` of the attempt's
        call (``put``: its worker puts a large result in the object store); kwargs that are held
        results become ``Slot``s into ``refs`` (extended here; ``index`` maps a ref's id to its
        place, so a batch passes each ref once)."""
        call = att.call
        kwargs = call.kwargs
        if self._held and kwargs:
            swapped: dict[str, Any] | None = None
            ids = []
            with self._lock:
                for k, v in kwargs.items():
                    h = self._held.get(id(v))
                    if h is not None and h[0] is v:
                        swapped = dict(kwargs) if swapped is None else swapped
                        i = index.get(id(h[1]))
                        if i is None:
                            i = index[id(h[1])] = len(refs)
                            refs.append(h[1])
                        swapped[k] = Slot(i, h[3])
                        ids.append(id(v))
            if swapped is not None:
                kwargs = swapped
                att.held = tuple(ids)
        put_at = self.large if put else 0
        return dumps((self._header(call), call.task_id, kwargs, call.config, call.timeout, put_at))

    def _header(self, call: TaskCall) -> bytes:
        """Pickled ``(spec, registry snapshot)``, cached per spec (the same for all its calls)."""
        snapshot = self._registry.snapshot()
        got = self._headers.get(id(call.spec))
        if got is None or got[0] is not call.spec or got[1] != snapshot:
            if len(self._headers) >= 4096:
                self._headers.clear()
            got = self._headers[id(call.spec)] = (call.spec, snapshot, dumps((call.spec, snapshot)))
        return got[2]

    def read(self, value: Any, ref: Any, pos: int) -> tuple[Any, Any, int]:
        """``(value, ref, pos)`` of a result as ``hold`` takes them: a ``Stored`` one read from
        Ray's object store (blocking; NumPy arrays come back as views of the store's shared
        pages, not copies), with its own ObjectRef; any other as it came (in reply ``ref``)."""
        if type(value) is not Stored:
            return value, ref, pos
        return ray_api().ray.get(value.ref), value.ref, VALUE

    def hold(self, value: Any, ref: Any, size: int, pos: int) -> None:
        """Keep ``ref`` (whose reply holds ``value`` at ``pos``; -1: a Ray task's own reply;
        ``worker.VALUE``: the object is ``value`` itself)."""
        with self._lock:
            if id(value) in self._held:
                return
            self._held[id(value)] = (value, ref, size, pos)
            self._held_bytes += size
            while self._held_bytes > self._hold_limit and self._held:
                _, (_, _, n, _) = self._held.popitem(last=False)
                self._held_bytes -= n

    def forget(self, ids: tuple[int, ...]) -> None:
        """Drop held results an attempt used when it lost its worker (their object may be lost)."""
        with self._lock:
            for i in ids:
                h = self._held.pop(i, None)
                if h is not None:
                    self._held_bytes -= h[2]

    def clear(self) -> None:
        """Drop every held result (caller holds the lock)."""
        self._held.clear()
        self._held_bytes = 0

    def __len__(self) -> int:
        """How many results are held."""
        return len(self._held)
