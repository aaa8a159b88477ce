"""Measured resource usage of one task attempt: ``Usage``, and ``attempt_usage``, its one reader.

An attempt's usage is what it really consumed: CPU seconds (user + system), peak resident memory
in bytes, seconds it ran on its worker, and the ``source`` that measured it (``"process"``: the
attempt's own process; ``"ray"``: its Ray worker; ``"thread"``: what can be known of a thread,
labelled so; ``"container"``). The runtime records it as ``data["usage"]`` of the event that
ends the attempt (``TaskSucceeded``, ``TaskFailed``, ``TaskRetrying``, ``TaskCancelled``). Until
it does, the executor's ``podium_meta`` on the attempt's future (the process executor's
``peak_rss``) is the only source. ``attempt_usage`` reads both, the event first, so metrics,
reports and right-sizing need no change when the runtime records more.

Invariants: a field is ``None`` when unknown, never a guessed 0; numbers are finite and
non-negative; a malformed record reads as ``None`` (usage informs, it never decides a run).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: The key of ``Usage.as_dict()`` in the data of an event that ends an attempt.
USAGE_KEY = "usage"
SOURCES = frozenset({"process", "thread", "ray", "container"})


@dataclass(frozen=True, slots=True)
class Usage:
    cpu_time: float | None = None  #: CPU seconds, user + system, of the attempt
    peak_memory: int | None = None  #: peak resident memory, bytes
    wall_time: float | None = None  #: seconds the task ran on its worker
    source: str | None = None  #: what measured it (see ``SOURCES``)

    def as_dict(self) -> dict[str, Any]:
        return {
            "cpu_time": self.cpu_time,
            "peak_memory": self.peak_memory,
            "wall_time": self.wall_time,
            "source": self.source,
        }


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    return value if math.isfinite(value) and value >= 0.0 else None


def _usage(cpu: Any, peak: Any, wall: Any, source: Any) -> Usage | None:
    cpu_time, wall_time, peak_f = _number(cpu), _number(wall), _number(peak)
    if cpu_time is None and wall_time is None and peak_f is None:
        return None
    peak_memory = int(peak_f) if peak_f is not None else None
    return Usage(cpu_time, peak_memory, wall_time, source if source in SOURCES else None)


def attempt_usage(data: Mapping[str, Any] | None, meta: Mapping[str, Any] | None = None) -> Usage | None:
    """The measured usage of one attempt, or None when nothing was measured.

    ``data`` is the data of the event that ended the attempt (its ``usage`` record wins);
    ``meta`` is the attempt future's ``podium_meta``, when the caller saw the future."""
    record = data.get(USAGE_KEY) if data else None
    if isinstance(record, Mapping):
        found = _usage(
            record.get("cpu_time"), record.get("peak_memory"), record.get("wall_time"), record.get("source")
        )
        if found is not None:
            return found
    if not meta:
        return None
    # podium_meta: ``peak_rss`` (process and Ray workers), ``seconds`` (time on the worker),
    # ``node_id`` only from Ray, ``pid`` from a worker process
    source = "ray" if "node_id" in meta else "process" if "pid" in meta else None
    return _usage(meta.get("cpu_time"), meta.get("peak_rss") or None, meta.get("seconds"), source)
