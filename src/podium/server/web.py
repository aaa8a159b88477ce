"""Reading requests strictly and writing JSON responses.

Invariants: a query parameter that is not the declared type or range, a body that is not a
JSON object, or a body key the route does not know is a ``UsageError`` (400) naming it;
blocking work (the store, processes) runs in a thread so the event loop never waits on it;
JSON out never contains NaN or infinity (they become null), so every browser can parse it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any, TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from podium.errors import UsageError

T = TypeVar("T")


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def dumps(value: Any) -> bytes:
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except ValueError:
        text = json.dumps(_finite(value), ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return text.encode("utf-8")


class JSON(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return dumps(content)


def query_int(request: Request, name: str, default: int, lo: int, hi: int) -> int:
    values = request.query_params.getlist(name)
    if not values:
        return default
    if len(values) > 1:
        raise UsageError(f"query parameter {name!r} given {len(values)} times")
    text = values[0].strip()
    if not text.lstrip("-").isdigit() or len(text) > 19:
        raise UsageError(f"query parameter {name!r} must be an integer, got {values[0]!r}")
    v = int(text)
    if not lo <= v <= hi:
        raise UsageError(f"query parameter {name!r} must be between {lo} and {hi}, got {v}")
    return v


def query_str(
    request: Request, name: str, max_len: int = 200, choices: tuple[str, ...] | None = None
) -> str | None:
    values = request.query_params.getlist(name)
    if not values:
        return None
    if len(values) > 1:
        raise UsageError(f"query parameter {name!r} given {len(values)} times")
    v = values[0]
    if len(v) > max_len or "\x00" in v:
        raise UsageError(f"query parameter {name!r} is over {max_len} characters or holds a NUL")
    if choices is not None and v not in choices:
        raise UsageError(f"query parameter {name!r} must be one of {', '.join(choices)}, got {v!r}")
    return v


def check_query(request: Request, known: tuple[str, ...]) -> None:
    unknown = sorted(set(request.query_params) - set(known))
    if unknown:
        raise UsageError(
            f"unknown query parameter(s) {', '.join(map(repr, unknown))} "
            f"(known: {', '.join(known) or 'none'})"
        )


async def json_object(
    request: Request, known: tuple[str, ...], required: tuple[str, ...] = ()
) -> dict[str, Any]:
    body = await request.body()
    if not body.strip():
        if required:
            raise UsageError(f"request body must be a JSON object with {', '.join(required)}")
        return {}
    try:
        data = json.loads(body.decode("utf-8"))
    except RecursionError:
        raise UsageError("request body is nested too deeply") from None
    if not isinstance(data, dict):
        raise UsageError(f"request body must be a JSON object, got {type(data).__name__}")
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise UsageError(f"unknown field(s) {', '.join(map(repr, unknown))} (known: {', '.join(known)})")
    missing = [k for k in required if k not in data]
    if missing:
        raise UsageError(f"missing field(s) {', '.join(map(repr, missing))}")
    return data


async def blocking(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    return await run_in_threadpool(fn, *args, **kwargs)
