"""``Sample``: one measured attempt of a task, and ``samples_of``: a run's samples from its events.

A sample is what one attempt of a task told: its duration (seconds from submit to its end,
as the run loop measured it), the speed of the node it ran on (so durations of different
nodes compare: ``work = duration * speed``), its input size (``TaskStarted``'s ``size``: bytes
and item counts of its inputs, see ``input_size``), the estimate it started with, its measured
CPU time and peak memory (``model.usage``), the memory it was granted, and how it ended
(``"succeeded"`` or a failure kind such as ``"oom"``).

Invariants: pure (events in, samples out); a map item counts under its map's name; an attempt
without an end event (a crash) gives no sample; only attempts that really ran give samples
(a cache hit has no ``duration``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from podium.model import events as ev
from podium.model.usage import attempt_usage

_ENDS = {ev.TASK_SUCCEEDED, ev.TASK_FAILED, ev.TASK_RETRYING}


@dataclass(frozen=True, slots=True)
class Sample:
    duration: float  #: seconds, submit to end
    speed: float = 1.0  #: the relative speed of the node it ran on
    size: float | None = None  #: input size (``input_size``), None when unknown
    estimate: float | None = None  #: the duration estimate it started with
    cpu_time: float | None = None
    peak_memory: int | None = None
    memory: float | None = None  #: memory granted to the attempt, bytes
    outcome: str = "succeeded"
    node: str | None = None

    @property
    def ok(self) -> bool:
        return self.outcome == "succeeded"

    @property
    def work(self) -> float:
        """The duration at speed 1."""
        return self.duration * self.speed


def samples_of(events: Iterable[Any], speeds: Mapping[str, float] | None = None) -> dict[str, list[Sample]]:
    """Task name -> the samples of one run's attempts, in the order they ended. ``speeds``:
    node -> speed (else the run's own ``RunStarted`` record of them, else 1)."""
    speeds = dict(speeds or {})
    started: dict[str, Mapping[str, Any]] = {}
    out: dict[str, list[Sample]] = {}
    for e in events:
        tid, typ, data = e.task_id, e.type, e.data
        if tid is None:
            if typ == ev.RUN_STARTED and not speeds and isinstance(data.get("speeds"), Mapping):
                speeds = {str(k): float(v) for k, v in data["speeds"].items() if _positive(v)}
            continue
        if typ == ev.TASK_STARTED:
            started[tid] = data
            continue
        if typ not in _ENDS:
            continue
        d = data.get("duration")
        begun = started.pop(tid, None)
        if not _positive(d) or begun is None:
            continue
        node = begun.get("node")
        usage = attempt_usage(data)
        res = begun.get("res") or {}
        kind = (
            "succeeded" if typ == ev.TASK_SUCCEEDED else str((data.get("error") or {}).get("kind") or "user")
        )
        name = tid[: tid.index("[")] if tid.endswith("]") and "[" in tid else tid
        out.setdefault(name, []).append(
            Sample(
                duration=float(d),
                speed=speeds.get(node, 1.0) if isinstance(node, str) else 1.0,
                size=float(begun["size"]) if _positive(begun.get("size")) else None,
                estimate=float(begun["est"]) if _positive(begun.get("est")) else None,
                cpu_time=usage.cpu_time if usage is not None else None,
                peak_memory=usage.peak_memory if usage is not None else None,
                memory=float(res["memory"]) if _positive(res.get("memory")) else None,
                outcome=kind,
                node=node if isinstance(node, str) else None,
            )
        )
    return out


def _positive(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and v > 0 and v == v and v != float("inf")


def input_size(kwargs: Mapping[str, Any]) -> float | None:
    """The size of a call's inputs: the sum of ``len()`` of its sized arguments (bytes, text,
    lists, dicts...) and ``nbytes`` of arrays; None when no argument has a size. Cheap: one
    pass over the arguments, nothing serialised."""
    total, sized = 0, False
    for v in kwargs.values():
        n = getattr(v, "nbytes", None)
        if isinstance(n, int):
            total, sized = total + n, True
        elif isinstance(v, str | bytes | bytearray | list | tuple | dict | set | frozenset):
            total, sized = total + len(v), True
    return float(total) if sized and total > 0 else None
