"""``predict``: a task's duration (or peak memory) from its samples and its current input size.

The model, per task: ``log(y) = a + b * log(size) + noise`` where ``y`` is the quantity at
speed 1 (``Sample.work``) or the peak memory. The slope ``b`` is fitted only where the
samples' sizes vary (the largest at least ``SIZE_SPREAD`` times the smallest, at least
``MIN_SAMPLES`` of them); it is robust (Theil-Sen: the median of the pairwise slopes, so a few
outliers do not tilt it), and the intercept is the median of ``log(y) - b * log(size)``.
Elsewhere ``b = 0`` and the center is the median of ``log(y)``. Quantiles come from the
residuals around the fit: p50 for planning, p90/p95 for timeouts and memory.

Invariants: pure and deterministic; at most the newest ``MAX_SAMPLES`` samples count; fewer
than ``MIN_SAMPLES`` usable samples predict nothing (None): then the declared figure, or the
default, stands.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from podium.learn.profile import Sample

#: Samples a prediction needs before it overrides a declared figure.
MIN_SAMPLES = 3
#: The newest samples a fit uses.
MAX_SAMPLES = 200
#: Sizes must span this factor before duration is fitted on size.
SIZE_SPREAD = 1.5


@dataclass(frozen=True, slots=True)
class Prediction:
    p50: float
    p90: float
    p95: float
    samples: int  #: how many samples the fit used
    size: float | None = None  #: the input size it was made for, when the fit uses size


@dataclass(frozen=True, slots=True)
class Model:
    """A fitted ``log(y) = intercept + slope * log(size)`` with its residuals' quantiles
    (``slope`` 0: no size term, ``intercept`` the median of ``log(y)``)."""

    intercept: float
    slope: float
    q50: float
    q90: float
    q95: float
    samples: int

    def predict(self, size: float | None) -> Prediction:
        """At input ``size`` (None, or a model without a size term: the typical size)."""
        use = self.slope != 0.0 and size is not None and size > 0
        center = self.intercept + (self.slope * math.log(size) if use else self.typical)  # type: ignore[arg-type]
        return Prediction(
            math.exp(center + self.q50),
            math.exp(center + self.q90),
            math.exp(center + self.q95),
            self.samples,
            size if use else None,
        )

    typical: float = 0.0  #: slope * the median log(size) of the samples (used without a size)


def quantile(xs: Sequence[float], q: float) -> float:
    """The ``q`` quantile of ``xs`` (linear interpolation between order statistics)."""
    s = sorted(xs)
    pos = q * (len(s) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def fit(
    samples: Sequence[Sample], value: Callable[[Sample], float | None] = lambda s: s.work
) -> Model | None:
    """Fit ``value`` (default: the duration at speed 1) of a task's successful samples; None
    with fewer than ``MIN_SAMPLES`` usable ones."""
    pts: list[tuple[float | None, float]] = []
    for s in samples[-MAX_SAMPLES:]:
        y = value(s) if s.ok else None
        if y is not None and y > 0:
            pts.append((s.size, math.log(y)))
    if len(pts) < MIN_SAMPLES:
        return None
    sized = [(math.log(x), y) for x, y in pts if x]
    if len(sized) == len(pts):
        xs = [x for x, _ in sized]
        if max(xs) - min(xs) >= math.log(SIZE_SPREAD):
            slope = _theil_sen(sized)
            if slope != 0.0:
                intercept = _median([y - slope * x for x, y in sized])
                r = [y - (intercept + slope * x) for x, y in sized]
                q = quantile(r, 0.5), quantile(r, 0.9), quantile(r, 0.95)
                return Model(intercept, slope, *q, len(pts), typical=slope * _median(xs))
    ys = [y for _, y in pts]
    center = _median(ys)
    r = [y - center for y in ys]
    return Model(center, 0.0, quantile(r, 0.5), quantile(r, 0.9), quantile(r, 0.95), len(pts))


def predict(
    samples: Sequence[Sample],
    size: float | None = None,
    value: Callable[[Sample], float | None] = lambda s: s.work,
) -> Prediction | None:
    """``fit`` then ``Model.predict(size)``: None with fewer than ``MIN_SAMPLES`` samples."""
    m = fit(samples, value)
    return None if m is None else m.predict(size)


def _median(xs: Sequence[float]) -> float:
    return quantile(xs, 0.5)


def _theil_sen(pts: Sequence[tuple[float, float]]) -> float:
    """The median slope over pairs of points with distinct x (at most ``MAX_SAMPLES`` points:
    about 20,000 pairs)."""
    slopes = [
        (y2 - y1) / (x2 - x1)
        for i, (x1, y1) in enumerate(pts)
        for x2, y2 in pts[i + 1 :]
        if abs(x2 - x1) > 1e-12
    ]
    return _median(slopes) if slopes else 0.0
