"""Run parameters given on the command line as ``-p key=value``.

Values stay text unless they parse as a JSON list or object; ``Workflow.resolve_params``
coerces text to the declared type (int, float, bool). Invariant: a malformed pair is a
``UsageError`` naming it; nothing else is interpreted here.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from podium.errors import UsageError


def parse_params(pairs: Iterable[str]) -> dict[str, Any]:
    """``["n=10", "tags=[\\"a\\"]"]`` -> ``{"n": "10", "tags": ["a"]}``."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep:
            raise UsageError(f"parameter {pair!r}: expected NAME=VALUE (e.g. -p n=10)")
        if not key:
            raise UsageError(f"parameter {pair!r}: the name before '=' is empty")
        try:
            out[key] = _decode(value)
        except RecursionError:
            raise UsageError(f"parameter {key!r}: its JSON value is nested too deeply") from None
    return out


def _decode(value: str) -> Any:
    text = value.strip()
    if text[:1] in ("[", "{"):
        try:
            decoded = json.loads(text)
        except ValueError:
            return value
        if isinstance(decoded, list | dict):
            return decoded
    return value
