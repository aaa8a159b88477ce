"""Compact JSON at C speed: ``orjson`` when it is installed (a dependency), else ``json``.

Used where a run's whole state is written or read at once (snapshots, ``podium show --json``
of a 100,000-task run), where formatting and parsing floats is most of the cost: orjson does
both several times faster than the standard library. Every function gives the same JSON values
with either (numbers may be spelled differently: ``1e-05`` or ``1e-5``), so nothing depends on
which one is there.

Invariants: a leaf (imports nothing of Podium); ``dumps`` raises ``TypeError`` on a value JSON
cannot hold (after ``default``), ``loads`` raises ``ValueError`` on text that is not JSON;
``tokens(values)`` is the JSON text of each value of a list of numbers, None and booleans, in
order.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

try:  # pragma: no cover - which branch runs depends on the environment
    import orjson as _orjson
except ImportError:  # pragma: no cover
    _orjson = None  # type: ignore[assignment]

_encoder = json.JSONEncoder(separators=(",", ":"))


def dumps(value: Any, default: Callable[[Any], Any] | None = None) -> bytes:
    """Compact JSON of ``value`` as UTF-8 (non-string keys written as strings, NaN as null with
    orjson, as ``NaN`` without it)."""
    if _orjson is not None:
        try:
            return _orjson.dumps(value, default=default, option=_orjson.OPT_NON_STR_KEYS)
        except _orjson.JSONEncodeError as e:
            raise TypeError(str(e)) from None
    return json.dumps(value, separators=(",", ":"), default=default).encode()


def loads(data: bytes | str) -> Any:
    """The value of JSON text; ``ValueError`` if it is not JSON."""
    if _orjson is not None:
        return _orjson.loads(data)
    return json.loads(data)


def tokens(values: Sequence[Any]) -> list[str]:
    """The JSON text of each of ``values`` (numbers, None, booleans: no commas inside), made in
    one call: ``[1.5, None]`` -> ``["1.5", "null"]``."""
    if not values:
        return []
    text = dumps(list(values)).decode("ascii")
    return text[1:-1].split(",")
