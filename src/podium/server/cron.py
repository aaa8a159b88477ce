"""Cron expressions: the five standard fields, evaluated in a time zone.

``Cron.parse("*/15 9-17 * * mon-fri")`` checks an expression (a ``ValueError`` naming the
field), ``cron.slots(tz, after, until)`` lists the instants it names in ``(after, until]``.

Fields: minute (0-59), hour (0-23), day of month (1-31), month (1-12 or jan-dec), day of
week (0-7 or sun-sat; 0 and 7 are Sunday), each ``*``, ``N``, ``A-B``, ``*/S``, ``A-B/S`` or
a comma list of those; shortcuts ``@hourly``, ``@daily``/``@midnight``, ``@weekly``,
``@monthly``, ``@yearly``/``@annually``. When both day fields are restricted a day matches
either (Vixie cron's rule). Slots are wall-clock times of the zone: a time that does not exist
there (the hour skipped when clocks go forward) names no slot; a time that occurs twice (the
hour repeated when clocks go back) names one slot, its first occurrence. Pure: no clock here.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_SHORTCUTS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
# (name, low, high, names offset by low)
_FIELDS = (
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day of month", 1, 31, ()),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 7, _DAYS),
)
#: How many years ahead a search for the next slot looks (``0 0 29 2 1`` is rare but exists).
_HORIZON_DAYS = 366 * 8


def _value(text: str, name: str, low: int, high: int, names: tuple[str, ...]) -> int:
    t = text.strip().lower()
    if t in names:
        return names.index(t) + (1 if name == "month" else 0)
    if not t.isdigit():
        raise ValueError(f"{name}: {text!r} is not a number{' or a name' if names else ''}")
    v = int(t)
    if not low <= v <= high:
        raise ValueError(f"{name}: {v} is outside {low}-{high}")
    return v


def _field(text: str, name: str, low: int, high: int, names: tuple[str, ...]) -> frozenset[int]:
    out: set[int] = set()
    for part in text.split(","):
        rng, _, step_text = part.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) == 0:
                raise ValueError(f"{name}: step {step_text!r} must be a positive number")
            step = int(step_text)
        if rng == "*":
            a, b = low, high
        elif "-" in rng:
            first, _, last = rng.partition("-")
            a, b = _value(first, name, low, high, names), _value(last, name, low, high, names)
            if a > b:
                raise ValueError(f"{name}: range {rng!r} goes backwards")
        else:
            a = _value(rng, name, low, high, names)
            b = high if step_text else a
        out.update(range(a, b + 1, step))
    return frozenset(out)


@dataclass(frozen=True)
class Cron:
    """A parsed cron expression (see the module docstring)."""

    text: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday .. 6 = Saturday
    any_day: bool  # day of month is '*'
    any_weekday: bool  # day of week is '*'

    @classmethod
    def parse(cls, text: str) -> Cron:
        if not isinstance(text, str) or not text.strip():
            raise ValueError("empty cron expression")
        expr = _SHORTCUTS.get(text.strip().lower(), text)
        parts = expr.split()
        if len(parts) != 5:
            raise ValueError(
                f"cron {text!r} has {len(parts)} fields; expected 5 (minute hour day month weekday)"
            )
        sets = [_field(p, *spec) for p, spec in zip(parts, _FIELDS, strict=True)]
        weekdays = frozenset(d % 7 for d in sets[4])
        return cls(
            text.strip(), sets[0], sets[1], sets[2], sets[3], weekdays, parts[2] == "*", parts[4] == "*"
        )

    def _day_matches(self, d: datetime) -> bool:
        if d.month not in self.months:
            return False
        dom = d.day in self.days
        dow = (d.weekday() + 1) % 7 in self.weekdays
        if self.any_day or self.any_weekday:
            return dom and dow
        return dom or dow

    def _local_times(self, after: datetime) -> Iterator[datetime]:
        """Naive wall-clock times that match, strictly after ``after`` (naive), in order."""
        day = after.replace(hour=0, minute=0, second=0, microsecond=0)
        hours, minutes = sorted(self.hours), sorted(self.minutes)
        for _ in range(_HORIZON_DAYS):
            if self._day_matches(day):
                for h in hours:
                    for m in minutes:
                        t = day.replace(hour=h, minute=m)
                        if t > after:
                            yield t
            day += timedelta(days=1)

    def slots(self, tz: ZoneInfo, after: float, until: float, limit: int = 10_000) -> list[float]:
        """Epoch seconds of the slots in ``(after, until]`` in zone ``tz``, oldest first (at
        most ``limit`` of them: the oldest)."""
        out: list[float] = []
        if until <= after:
            return out
        local_after = datetime.fromtimestamp(after, tz).replace(tzinfo=None)
        # one hour earlier: when clocks go back, a wall time after `after` may map before it
        for t in self._local_times(local_after - timedelta(hours=1)):
            aware = t.replace(tzinfo=tz, fold=0)
            if aware.astimezone(UTC).astimezone(tz).replace(tzinfo=None) != t:
                continue  # skipped by a clock change: no such wall time here
            ts = aware.timestamp()
            if ts <= after:
                continue
            if ts > until or len(out) >= limit:
                break
            if not out or ts > out[-1]:
                out.append(ts)
        return out

    def next_after(self, tz: ZoneInfo, after: float) -> float | None:
        """The first slot strictly after ``after``, or None if none within eight years."""
        local_after = datetime.fromtimestamp(after, tz).replace(tzinfo=None)
        for t in self._local_times(local_after - timedelta(hours=1)):
            aware = t.replace(tzinfo=tz, fold=0)
            if aware.astimezone(UTC).astimezone(tz).replace(tzinfo=None) != t:
                continue
            if aware.timestamp() > after:
                return aware.timestamp()
        return None
