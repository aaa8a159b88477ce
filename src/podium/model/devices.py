"""GPU devices of a node, and the pure allocator that hands them to tasks.

A node's GPUs are devices (``Gpu``: the index a process names in ``CUDA_VISIBLE_DEVICES``, and
the UUID and memory where they are known). A task's ``gpu`` request is either *whole* (an
integer >= 1: that many devices to itself) or a *share* (0 < gpu < 1: part of one device,
packed with other shares to at most 1.0 per device, best fit: the fullest device that still
has room). ``gpu_memory`` (bytes, per device) is accounted per device where the device's
memory is known.

``GpuPool`` is the state of one node's devices during a run; the run loop and the planner
apply the same rules through it, so a plan packs GPUs the way dispatch will.

Invariants: a device is never over-committed (its shares sum to at most 1.0, counted in exact
integer millionths, and their memory to at most the device's); a whole grant takes only
devices nobody holds a share of, so two whole GPUs never come from fractions of two devices;
``give`` restores exactly what ``take`` took. No I/O.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from podium.errors import InvalidValueError
from podium.model.resources import parse_size

#: Most GPUs one node may declare (a count or a list): a config cannot make the inventory huge.
MAX_GPUS = 1024
#: A device's capacity in shares: requests are counted in millionths of a device, so sums
#: and differences are exact (no float drift across many takes and gives).
UNIT = 1_000_000


@dataclass(frozen=True, slots=True)
class Gpu:
    """One GPU of a node: its index on that node, and its UUID and memory (bytes; 0: unknown)."""

    index: int
    uuid: str = ""
    memory: int = 0


def units(gpu: float) -> int:
    """A share request (0 < gpu < 1) in millionths of a device (at least 1)."""
    return max(1, min(UNIT, round(gpu * UNIT)))


def request_problem(gpu: float) -> str | None:
    """Why ``gpu`` is not a valid task request (None: it is): above 1 it must be whole."""
    if gpu > 1 and gpu != math.floor(gpu):
        return f"gpu must be a share of one GPU (below 1) or a whole number of GPUs, got {gpu:g}"
    return None


def parse_gpus(value: object) -> tuple[Gpu, ...]:
    """A node's GPUs from configuration: a count (``4``), a list of indices (``[0, 1, 2, 3]``)
    or a list of mappings (``[{index: 0, uuid: GPU-..., memory: 80GiB}]``)."""
    if isinstance(value, bool):
        raise InvalidValueError(f"gpus must be a count or a list of device indices, got {value!r}")
    if isinstance(value, int):
        if not 0 <= value <= MAX_GPUS:
            raise InvalidValueError(f"gpus must be a count from 0 to {MAX_GPUS}, got {value}")
        return tuple(Gpu(i) for i in range(value))
    if not isinstance(value, list | tuple):
        raise InvalidValueError(f"gpus must be a count or a list of device indices, got {value!r}")
    if len(value) > MAX_GPUS:
        raise InvalidValueError(f"gpus lists {len(value)} devices: at most {MAX_GPUS} per node")
    out: list[Gpu] = []
    for i, item in enumerate(value):
        if isinstance(item, Mapping):
            unknown = [k for k in item if k not in ("index", "uuid", "memory")]
            if unknown:
                raise InvalidValueError(f"gpus[{i}]: unknown key {unknown[0]!r} (use index, uuid, memory)")
            index, uuid, memory = item.get("index"), item.get("uuid", ""), parse_size(item.get("memory", 0))
            if not isinstance(uuid, str):
                raise InvalidValueError(f"gpus[{i}].uuid must be a string, got {uuid!r}")
        else:
            index, uuid, memory = item, "", 0
        if isinstance(index, bool) or not isinstance(index, int) or index < 0:
            raise InvalidValueError(f"gpus[{i}]: a device index must be an integer >= 0, got {index!r}")
        out.append(Gpu(index, uuid, memory))
    if len({g.index for g in out}) != len(out):
        raise InvalidValueError("gpus: device indices must be distinct")
    return tuple(out)


def per_node(devices: Sequence[Gpu], gpu: float, memory: int = 0) -> int:
    """How many tasks each asking ``gpu`` (and ``memory`` per device) an idle node with
    ``devices`` holds at once, counting GPUs only (0: none)."""
    if gpu <= 0:
        return 1 << 30
    fit = [d for d in devices if not d.memory or memory <= d.memory]
    if gpu >= 1:
        return len(fit) // int(gpu)
    share = UNIT // units(gpu)
    return sum(min(share, d.memory // memory if d.memory and memory else share) for d in fit)


class GpuPool:
    """The devices of one node during a run: shares and memory held on each (see the module
    docstring). ``take`` returns the device indices granted, or None when the request does not
    fit now (nothing is changed then)."""

    __slots__ = ("devices", "mem", "used")

    def __init__(self, devices: Sequence[Gpu]) -> None:
        self.devices = tuple(devices)
        self.used = [0] * len(self.devices)  # shares held, in millionths (UNIT: whole)
        self.mem = [0] * len(self.devices)  # bytes of gpu_memory held by shares

    def take(self, gpu: float, memory: int = 0) -> tuple[int, ...] | None:
        if gpu <= 0:
            return ()
        devices, used = self.devices, self.used
        if gpu >= 1:
            want = int(gpu)
            picked = [
                i for i, d in enumerate(devices) if used[i] == 0 and (not d.memory or memory <= d.memory)
            ][:want]
            if len(picked) < want:
                return None
            for i in picked:
                used[i] = UNIT
            return tuple(devices[i].index for i in picked)
        u = units(gpu)
        best = -1
        for i, d in enumerate(devices):
            if used[i] + u > UNIT or (d.memory and self.mem[i] + memory > d.memory):
                continue
            if best < 0 or used[i] > used[best]:  # best fit: the fullest device with room
                best = i
        if best < 0:
            return None
        used[best] += u
        self.mem[best] += memory
        return (devices[best].index,)

    def give(self, granted: Sequence[int], gpu: float, memory: int = 0) -> None:
        """Return a grant ``take(gpu, memory)`` made."""
        if not granted:
            return
        pos = {d.index: i for i, d in enumerate(self.devices)}
        if gpu >= 1:
            for index in granted:
                self.used[pos[index]] -= UNIT
            return
        i = pos[granted[0]]
        self.used[i] -= units(gpu)
        self.mem[i] -= memory

    def idle(self) -> bool:
        """Whether no device holds anything."""
        return not any(self.used) and not any(self.mem)


__all__ = ["MAX_GPUS", "UNIT", "Gpu", "GpuPool", "parse_gpus", "per_node", "request_problem", "units"]
