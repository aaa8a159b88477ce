"""Measured resource usage of one task attempt: ``Usage``, ``usage_record`` (how an executor's
measurement becomes event data) and ``attempt_usage`` (its one reader).

An attempt's usage is what it really consumed: CPU seconds (user + system), peak resident memory
in bytes, seconds it ran on its worker, and the ``source`` that measured it:

- ``"process"``: the attempt's own worker process, from ``wait4`` (CPU time and peak RSS of
  that process and its reaped children: exact);
- ``"thread"``: the CPU clock of the thread that ran it (``time.thread_time``); the memory of a
  thread cannot be told from its process's, so ``peak_memory`` is unknown;
- ``"ray"``: the Ray worker process, CPU time from ``time.process_time`` around the call, peak
  memory the worker's peak RSS so far (an upper bound: a worker serves many tasks);
- ``"container"``: the cgroup the container ran in (``executors.container_usage``): its CPU
  time and its peak memory charge, read once the container is gone.

The executor puts ``cpu_time``, ``peak_rss``, ``seconds`` and ``measured`` (the source) in the
attempt future's ``podium_meta``; the run loop turns them into ``data["usage"]`` of the event
that ends the attempt (``TaskSucceeded``, ``TaskFailed``, ``TaskRetrying``, ``TaskCancelled``)
with ``usage_record``. Metrics, the report, ``podium show`` and learning read it back with
``attempt_usage`` only.

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
    if cpu_time is None and peak_f is None:
        return None  # a wall time alone is the event's duration: nothing was measured
    peak_memory = int(peak_f) if peak_f else None  # 0: the executor could not tell
    return Usage(cpu_time, peak_memory, wall_time, source if source in SOURCES else None)


def usage_record(meta: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The ``usage`` data of an attempt's end event from its future's ``podium_meta``, or None
    when the executor measured nothing (the loop then records no ``usage``)."""
    if not meta or ("cpu_time" not in meta and not meta.get("peak_rss")):
        return None
    source = meta.get("measured") or ("ray" if "node_id" in meta else "process" if "pid" in meta else None)
    usage = _usage(meta.get("cpu_time"), meta.get("peak_rss"), meta.get("seconds"), source)
    if usage is None:
        return None
    cpu, wall = usage.cpu_time, usage.wall_time
    return Usage(
        round(cpu, 6) if cpu is not None else None,
        usage.peak_memory,
        round(wall, 6) if wall is not None else None,
        usage.source,
    ).as_dict()


def attempt_usage(data: Mapping[str, Any] | None) -> Usage | None:
    """The measured usage of one attempt, from the data of the event that ended it, or None
    when nothing was measured (or the record is malformed)."""
    return record_usage(data.get(USAGE_KEY) if data else None)


def record_usage(record: Any) -> Usage | None:
    """The measured usage in one usage record (an end event's ``data["usage"]``), or None."""
    if not isinstance(record, Mapping):
        return None
    get = record.get
    return _usage(get("cpu_time"), get("peak_memory"), get("wall_time"), get("source"))
