"""The usage of one node (or one device) over time, for the list scheduler.

A ``Profile`` is a step function: ``us[i]`` (one amount per resource dimension) is in force on
``[ts[i], ts[i+1])``. ``fit`` finds the earliest start at which a request fits for a duration,
``add`` records a placed task. Invariants: ``ts`` is strictly increasing and starts at -inf;
usage never changes outside ``add``; pure (no I/O).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence

from podium.planner.instance import EPS

INF = float("inf")


class Profile:
    """Usage of one node over time: ``us[i]`` is in force on ``[ts[i], ts[i+1])``."""

    __slots__ = ("floor", "horizon", "ts", "us")

    def __init__(self, k: int, floor: float = 0.0) -> None:
        self.floor = floor  # no start is ever asked for before this
        self.ts: list[float] = [-INF]
        self.us: list[list[float]] = [[0.0] * k]
        self.horizon = 0.0  # the node is empty from here on

    def fit(self, r: float, d: float, lim: Sequence[float], kd: Sequence[int], scan_limit: int) -> float:
        """Earliest start >= r where usage + request <= capacity (``lim = cap - req``) for ``d``.

        After ``scan_limit`` failed segments, falls back to the earliest time from which the
        request fits for ever (found scanning back from the node's last end).
        """
        if d <= 0.0 or r >= self.horizon:
            return r
        s = self._scan(r, d, lim, kd, scan_limit)
        return self._tail_fit(r, lim, kd, scan_limit) if s is None else s

    def _tail_fit(self, r: float, lim: Sequence[float], kd: Sequence[int], scan_limit: int) -> float:
        """The earliest time >= r from which the request fits for ever (scanning back from the end)."""
        ts, us = self.ts, self.us
        j = len(ts) - 1
        steps = 0
        while j > 0 and ts[j] > r:
            u = us[j - 1]
            for k in kd:
                if u[k] > lim[k]:
                    return ts[j]
            j -= 1
            steps += 1
            if steps > scan_limit:
                return self.horizon
        return r if r > ts[j] else ts[j]

    def _scan(
        self, r: float, d: float, lim: Sequence[float], kd: Sequence[int], scan_limit: int
    ) -> float | None:
        ts, us = self.ts, self.us
        j = bisect_right(ts, r) - 1
        s = r
        last = len(ts) - 1
        steps = 0
        while True:
            u = us[j]
            for k in kd:
                if u[k] > lim[k]:
                    j += 1
                    s = ts[j]
                    steps += 1
                    if steps > scan_limit:
                        return None
                    break
            else:
                if j == last or ts[j + 1] >= s + d - EPS:
                    return s
                j += 1

    def add(self, s: float, e: float, q: Sequence[float], kd: Sequence[int]) -> None:
        if e <= s:
            return
        ts, us = self.ts, self.us
        i = bisect_right(ts, s) - 1
        if ts[i] != s:
            i += 1
            ts.insert(i, s)
            us.insert(i, list(us[i - 1]))
        j = bisect_left(ts, e, i)
        if j == len(ts) or ts[j] != e:
            ts.insert(j, e)
            us.insert(j, list(us[j - 1]))
        for x in range(i, j):
            u = us[x]
            for k in kd:
                u[k] += q[k]
        if e > self.horizon:
            self.horizon = e


__all__ = ["INF", "Profile"]
