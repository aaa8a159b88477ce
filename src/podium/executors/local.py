"""The local machine as a cluster: node detection and ``LocalExecutor``, the embedded engine's executor.

``detect_node`` measures this machine (cpu from the affinity mask, total memory, NVIDIA GPUs
through NVML when ``pynvml`` is installed: index, UUID and memory of each) and lets a config
override any value (``gpus``: a count or a list of device indices).

``LocalExecutor`` routes each call by ``call.spec.isolation`` to a ``ThreadExecutor`` or a
``ProcessExecutor`` of the node named by ``call.node``, and a gang-scheduled call (several
workers) to ``LocalGang``, which starts one worker process per rank on the node of its grant.
Several nodes (a local cluster file describing several machines, for demos and tests) each get
their own pools. It does no resource accounting: the engine submits only what fits, so thread
pools grow on demand and never queue a submitted call. ``limit_threads=False`` leaves the
thread-count variables (``OMP_NUM_THREADS`` & co.) of the tasks' processes as inherited.
Invariants: an unknown node is an ``InvalidValueError`` (also a ``ValueError``); this module
never imports the store.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from typing import Any

from podium.errors import InvalidValueError, Problem, SpecError
from podium.executors.gang import LocalGang
from podium.executors.process import ProcessExecutor
from podium.executors.service import ServiceHost
from podium.executors.thread import ThreadExecutor
from podium.model.cluster import DEFAULT_PRICES, Node
from podium.model.devices import Gpu, parse_gpus
from podium.model.logs import LogRecord
from podium.model.resources import Resources
from podium.model.task import TaskCall
from podium.registry import REGISTRY, Registry


def detect_gpus() -> tuple[Gpu, ...]:
    """The NVIDIA GPUs visible through NVML (index, UUID, total memory); none without
    ``pynvml`` or a driver."""
    try:
        import pynvml  # type: ignore[import-not-found]
    except ImportError:
        return ()
    try:
        pynvml.nvmlInit()
        try:
            out = []
            for i in range(int(pynvml.nvmlDeviceGetCount())):
                handle = pynvml.nvmlDeviceGetHandleByIndex(i)
                uuid = pynvml.nvmlDeviceGetUUID(handle)
                memory = int(pynvml.nvmlDeviceGetMemoryInfo(handle).total)
                out.append(Gpu(i, uuid.decode() if isinstance(uuid, bytes) else str(uuid), memory))
            return tuple(out)
        finally:
            pynvml.nvmlShutdown()
    except Exception:  # no driver, no device: a machine without GPUs
        return ()


def detect_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def detect_node(
    name: str = "local",
    overrides: Mapping[str, Any] | None = None,
    prices: Mapping[str, float] | None = None,
) -> Node:
    """This machine as a ``Node``; ``overrides`` (``{"cpu": 4, "memory": "8GiB", "gpus": [0, 1],
    "tpu": 2}``) replace detected values and add custom resources (``gpu``: a count of GPUs
    numbered from 0; ``gpus``: a count or the device indices)."""
    import psutil

    values: dict[str, Any] = {"cpu": detect_cpus(), "memory": psutil.virtual_memory().total}
    overrides = dict(overrides or {})
    gpus: tuple[Gpu, ...] = ()
    try:
        if "gpus" in overrides:
            gpus = parse_gpus(overrides.pop("gpus"))
        elif "gpu" not in overrides:
            gpus = detect_gpus()
        values["gpu"] = len(gpus)
        values.update(overrides)
        capacity = Resources.from_dict(values)
    except ValueError as e:
        raise SpecError(Problem(f"nodes.{name}", f"bad resource override ({e})")) from None
    return Node(name, capacity, DEFAULT_PRICES if prices is None else prices, gpus=gpus)


class LocalExecutor(ServiceHost):
    """Threads and processes on this machine (or on several described local nodes)."""

    name = "local"
    runs_gangs = True  # types.GangExecutor: LocalGang starts their workers

    def __init__(
        self,
        nodes: Sequence[Node] | None = None,
        registry: Registry = REGISTRY,
        max_threads: int | None = None,
        grace: float = 1.0,
        limit_threads: bool = True,
    ) -> None:
        self._nodes: tuple[Node, ...] = tuple(nodes) if nodes else (detect_node(),)
        self._registry = registry
        self._threads: dict[str, ThreadExecutor] = {}
        self._procs: dict[str, ProcessExecutor] = {}
        for n in self._nodes:
            if n.name in self._threads:
                raise SpecError(Problem(f"nodes.{n.name}", "duplicate node name"))
            self._threads[n.name] = ThreadExecutor(
                max_threads, registry, (n,), name=f"thread-{n.name}", limit_threads=limit_threads
            )
            self._procs[n.name] = ProcessExecutor(
                registry, (n,), grace=grace, name=f"process-{n.name}", limit_threads=limit_threads
            )
        self._gang = LocalGang(self._procs)

    def submit(self, call: TaskCall) -> Future[Any]:
        if call.grants and call.spec.workers > 1:
            return self._gang.submit(call)
        pools = self._procs if call.spec.isolation == "process" else self._threads
        try:
            pool = pools[call.node]
        except KeyError:
            known = ", ".join(self._threads)
            msg = f"task {call.task_id!r}: unknown node {call.node!r} (nodes: {known})"
            raise InvalidValueError(msg) from None
        return pool.submit(call)

    def kill(self, future: Future[Any]) -> None:
        if self._gang.owns(future):
            self._gang.kill(future)
            return
        for p in self._procs.values():
            if p.owns(future):
                p.kill(future)
                return
        for t in self._threads.values():  # the first fails it; its owner also kills its command
            t.kill(future)

    def nodes(self) -> Sequence[Node]:
        return self._nodes

    def live_logs(self) -> list[LogRecord]:
        """What running attempts wrote since the last call, in every pool."""
        out: list[LogRecord] = []
        for threads in self._threads.values():
            out += threads.live_logs()
        for procs in self._procs.values():
            out += procs.live_logs()
        return out

    def pids(self) -> dict[str, int]:
        """Pid of the worker process of each running process-isolated task instance."""
        out: dict[str, int] = {}
        for p in self._procs.values():
            out.update(p.pids())
        return out

    def shutdown(self, wait: bool = True) -> None:
        for p in self._procs.values():
            p.shutdown(wait)
        for t in self._threads.values():
            t.shutdown(wait)
