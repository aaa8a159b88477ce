"""Resource vectors and the parsing of sizes and durations.

A ``Resources`` value is what a task holds while it runs, or what a node has. Memory is in
bytes; cpu and gpu are counts (fractions allowed); custom resources are named counts.
``gpu_memory`` (bytes) is what a task needs on each GPU it holds: devices account for it
(``podium.model.devices``), so it is not one of the amounts of ``as_dict``.
Invariants: values are never negative; ``custom`` is a sorted tuple so equal vectors compare
and hash equal; parsing accepts only well-formed input and says exactly what was wrong; one
rule says whether a need fits a capacity (``fits``, on resource dicts; ``Resources.fits_in``
applies it to vectors).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from podium.errors import InvalidValueError

_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "m": 1000**2,
    "mb": 1000**2,
    "g": 1000**3,
    "gb": 1000**3,
    "t": 1000**4,
    "tb": 1000**4,
    "ki": 1024,
    "kib": 1024,
    "mi": 1024**2,
    "mib": 1024**2,
    "gi": 1024**3,
    "gib": 1024**3,
    "ti": 1024**4,
    "tib": 1024**4,
}
_SIZE_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*$")
_DUR_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DUR_RE = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d)")
#: Names that are not custom resources.
STANDARD = ("cpu", "memory", "gpu", "gpu_memory")
#: A need within this of a capacity fits it (sums of freed amounts drift by float rounding).
EPS = 1e-9


def fits(need: Mapping[str, float], capacity: Mapping[str, float]) -> bool:
    """Whether every amount of ``need`` fits in ``capacity`` (a name it lacks has none).

    The one fit rule: node capacity, free capacity in a run and a lane's hold all use it. An
    explicit loop: measurably cheaper than ``all(<genexpr>)`` on the run loop's hot path.
    """
    for k, v in need.items():  # noqa: SIM110
        if capacity.get(k, 0.0) + EPS < v:
            return False
    return True


def parse_size(value: object) -> int:
    """``"2GiB"`` -> 2147483648. Numbers are bytes. Raises ``ValueError`` with the reason."""
    if isinstance(value, bool):
        raise InvalidValueError(f"expected a size like '512MiB' or '2GB', got {value!r}")
    if isinstance(value, int | float):
        if not math.isfinite(value) or value < 0:
            raise InvalidValueError(f"size must be a non-negative number of bytes, got {value!r}")
        return int(value)
    if not isinstance(value, str):
        raise InvalidValueError(f"expected a size like '512MiB' or '2GB', got {type(value).__name__}")
    m = _SIZE_RE.match(value)
    if not m or m.group(2).lower() not in _SIZE_UNITS:
        raise InvalidValueError(f"malformed size {value!r}: use a number with B, KB, MB, GB, KiB, MiB, GiB")
    return int(float(m.group(1)) * _SIZE_UNITS[m.group(2).lower()])


def parse_duration(value: object) -> float:
    """``"1h30m"`` -> 5400.0, ``"500ms"`` -> 0.5. Numbers are seconds."""
    if isinstance(value, bool):
        raise InvalidValueError(f"expected a duration like '30s' or '10m', got {value!r}")
    if isinstance(value, int | float):
        if not math.isfinite(value) or value < 0:
            raise InvalidValueError(f"duration must be a non-negative number of seconds, got {value!r}")
        return float(value)
    if not isinstance(value, str):
        raise InvalidValueError(f"expected a duration like '30s' or '10m', got {type(value).__name__}")
    text = value.strip().replace(" ", "")
    try:
        return parse_duration(float(text)) if text else _bad_duration(value)
    except ValueError:
        pass
    pos, total = 0, 0.0
    for m in _DUR_RE.finditer(text):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _DUR_UNITS[m.group(2)]
        pos = m.end()
    if pos != len(text) or not text:
        _bad_duration(value)
    return total


def _bad_duration(value: object) -> float:
    raise InvalidValueError(f"malformed duration {value!r}: use e.g. '90s', '10m', '1h30m', '500ms'")


def format_size(n: float) -> str:
    for unit, size in (("TiB", 1024**4), ("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= size:
            return f"{n / size:.3g}{unit}"
    return f"{int(n)}B"


@dataclass(frozen=True, slots=True)
class Resources:
    """A resource vector: cpu count, memory bytes, gpu count and named custom amounts (and the
    memory needed on each GPU held)."""

    cpu: float = 1.0
    memory: int = 0
    gpu: float = 0.0
    custom: tuple[tuple[str, float], ...] = ()
    gpu_memory: int = 0

    def __post_init__(self) -> None:
        checked = (
            ("cpu", self.cpu),
            ("memory", self.memory),
            ("gpu", self.gpu),
            ("gpu_memory", self.gpu_memory),
        )
        for name, v in checked:
            if not isinstance(v, int | float) or isinstance(v, bool) or not math.isfinite(v) or v < 0:
                raise InvalidValueError(f"{name} must be a non-negative number, got {v!r}")
        for name, v in self.custom:
            if not isinstance(v, int | float) or isinstance(v, bool) or not math.isfinite(v) or v < 0:
                raise InvalidValueError(f"custom resource {name!r} must be a non-negative number, got {v!r}")
        if list(self.custom) != sorted(self.custom) or len({n for n, _ in self.custom}) != len(self.custom):
            object.__setattr__(self, "custom", tuple(sorted(dict(self.custom).items())))

    @classmethod
    def of(
        cls, cpu: float = 1.0, memory: object = 0, gpu: float = 0.0, gpu_memory: object = 0, **custom: float
    ) -> Resources:
        return cls(cpu, parse_size(memory), gpu, tuple(sorted(custom.items())), parse_size(gpu_memory))

    @classmethod
    def from_dict(cls, d: Mapping[str, object]) -> Resources:
        """Build from ``{"cpu": 2, "memory": "2GiB", "gpu": 0, "tpu": 1}``; unknown keys are custom."""
        custom: dict[str, float] = {}
        for k, v in d.items():
            if k not in STANDARD:
                if isinstance(v, bool) or not isinstance(v, int | float):
                    raise InvalidValueError(f"custom resource {k!r} must be a number, got {v!r}")
                custom[k] = float(v)
        cpu, gpu = d.get("cpu", 1.0), d.get("gpu", 0.0)
        for name, v in (("cpu", cpu), ("gpu", gpu)):
            if isinstance(v, bool) or not isinstance(v, int | float):
                raise InvalidValueError(f"{name} must be a number, got {v!r}")
        return cls(
            cpu=float(cpu),  # type: ignore[arg-type]
            memory=parse_size(d.get("memory", 0)),
            gpu=float(gpu),  # type: ignore[arg-type]
            custom=tuple(sorted(custom.items())),
            gpu_memory=parse_size(d.get("gpu_memory", 0)),
        )

    def as_dict(self) -> dict[str, float]:
        """Every non-zero amount keyed by resource name (cpu, memory in bytes, gpu, custom...)."""
        d: dict[str, float] = {}
        if self.cpu:
            d["cpu"] = self.cpu
        if self.memory:
            d["memory"] = float(self.memory)
        if self.gpu:
            d["gpu"] = self.gpu
        for k, v in self.custom:
            if v:
                d[k] = v
        return d

    def fits_in(self, capacity: Resources) -> bool:
        return fits(self.as_dict(), capacity.as_dict())

    def shortfall(self, capacity: Resources) -> list[str]:
        """Names of resources this vector needs more of than ``capacity`` has."""
        cap = capacity.as_dict()
        return [k for k, v in self.as_dict().items() if not fits({k: v}, cap)]

    def __add__(self, other: Resources) -> Resources:
        return _combine(self, other, 1.0)

    def __sub__(self, other: Resources) -> Resources:
        return _combine(self, other, -1.0)

    def scaled_memory(self, factor: float, cap: int | None = None) -> Resources:
        mem = int(self.memory * factor)
        if cap is not None:
            mem = min(mem, cap)
        return Resources(self.cpu, mem, self.gpu, self.custom, self.gpu_memory)

    def describe(self) -> str:
        parts = []
        if self.cpu:
            parts.append(f"cpu={self.cpu:g}")
        if self.memory:
            parts.append(f"memory={format_size(self.memory)}")
        if self.gpu:
            parts.append(f"gpu={self.gpu:g}")
        if self.gpu_memory:
            parts.append(f"gpu_memory={format_size(self.gpu_memory)}")
        parts += [f"{k}={v:g}" for k, v in self.custom if v]
        return " ".join(parts) or "none"


def _combine(a: Resources, b: Resources, sign: float) -> Resources:
    custom = dict(a.custom)
    for k, v in b.custom:
        custom[k] = max(0.0, custom.get(k, 0.0) + sign * v)
    return Resources(
        cpu=max(0.0, a.cpu + sign * b.cpu),
        memory=max(0, int(a.memory + sign * b.memory)),
        gpu=max(0.0, a.gpu + sign * b.gpu),
        custom=tuple(sorted(custom.items())),
        gpu_memory=max(a.gpu_memory, b.gpu_memory),  # per device: the larger need, not a sum
    )


def total(vectors: Iterable[Resources]) -> Resources:
    out = Resources(cpu=0.0)
    for v in vectors:
        out = out + v
    return out
