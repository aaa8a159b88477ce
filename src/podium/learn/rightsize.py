"""``suggest``: right-sized requests of a task from what its attempts really used.

Memory: the p95 of the measured peaks of successful attempts times ``margin`` (1.2 by
default), never below the largest peak of the newest ``RECENT`` successful attempts, never
below what an attempt that ran out of memory was granted times ``OOM_GROWTH`` (an OOM is
remembered: it does not recur), and, where peaks grow with the input size (``fit``), never
below the fitted p95 at the largest input seen times ``margin``. CPU: the p95 of CPU time over
wall time of the attempts that measured it, rounded up to a quarter core (at least a quarter).
With fewer than ``MIN_SAMPLES`` measured attempts there is no suggestion for that resource
(the declared request stands).

Invariants: pure; a suggestion only ever concerns ``cpu`` and ``memory``; it is made from
measurements only, never from requests.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from podium.learn.fit import MIN_SAMPLES, fit, quantile
from podium.learn.profile import Sample

RECENT = 10
OOM_GROWTH = 2.0
MIB = 1 << 20


@dataclass(frozen=True, slots=True)
class Suggestion:
    memory: int | None  #: bytes, or None: keep the declared request
    cpu: float | None  #: cores, or None
    peak_p50: int | None = None
    peak_p95: int | None = None
    cpu_p50: float | None = None  #: cores used on average (CPU time over wall time)
    samples: int = 0


def suggest(samples: Sequence[Sample], margin: float = 1.2) -> Suggestion:
    ok = [s for s in samples if s.ok]
    peaks = [s.peak_memory for s in ok if s.peak_memory]
    memory = p50m = p95m = None
    if len(peaks) >= MIN_SAMPLES:
        p50m, p95m = int(quantile(peaks, 0.5)), int(quantile(peaks, 0.95))
        floor = max(peaks[-RECENT:])
        ooms = [s.memory for s in samples if s.outcome == "oom" and s.memory]
        want = max(p95m * margin, floor, *(m * OOM_GROWTH for m in ooms))
        model = fit(ok, lambda s: s.peak_memory)
        sizes = [s.size for s in ok if s.size]
        if model is not None and model.slope > 0 and sizes:  # peaks grow with input size: cover
            want = max(want, model.predict(max(sizes)).p95 * margin)  # the largest input seen
        memory = math.ceil(want / MIB) * MIB
    cores = [s.cpu_time / s.duration for s in ok if s.cpu_time is not None and s.duration > 0]
    cpu = cpu50 = None
    if len(cores) >= MIN_SAMPLES:
        cpu50 = quantile(cores, 0.5)
        cpu = max(0.25, math.ceil(quantile(cores, 0.95) * 4 - 1e-9) / 4)
    return Suggestion(memory, cpu, p50m, p95m, cpu50, len(ok))
