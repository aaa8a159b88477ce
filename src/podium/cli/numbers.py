"""Number options that must be finite and within a range (click's ``float`` accepts ``nan``,
``inf`` and ``1e300``, which then break planning or overflow a clock far from the flag).

Invariant: a bad value is a usage error (exit 2) naming the option and the accepted range.
"""

from __future__ import annotations

import math
from typing import Any

import click

from podium.load.options import MAX_SECONDS


class Finite(click.ParamType):
    """A finite float in ``[low, high]``."""

    name = "number"

    def __init__(self, low: float | None = None, high: float | None = None) -> None:
        self.low, self.high = low, high

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        try:
            number = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number", param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        if (self.low is not None and number < self.low) or (self.high is not None and number > self.high):
            lo = "" if self.low is None else f"{self.low:g}"
            hi = "" if self.high is None else f"{self.high:g}"
            self.fail(f"{value!r} is not in the range {lo}..{hi}", param, ctx)
        return number


#: Weights and budgets: finite, not negative.
WEIGHT = Finite(0.0)
#: Seconds: finite, not negative, at most a year.
SECONDS = Finite(0.0, MAX_SECONDS)
