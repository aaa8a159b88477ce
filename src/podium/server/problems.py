"""Errors at the HTTP edge: the server's own error classes and the one exception-to-status table.

``status_for(exc)`` walks the exception's MRO through ``STATUS`` (seeded from every
``PodiumError`` subclass's ``http_status``), so a new error class gets its status by
inheriting. ``error_body(exc)`` is the one-line JSON every error response carries:
``{"error": "..."}`` (plus ``problems`` for a spec error). Invariant: a request never gets a
500 for something it sent; an unexpected exception is a 500 with a generic line (the detail
goes to the server's log, not to the client).
"""

from __future__ import annotations

import json
from typing import Any

from podium.errors import (
    ConflictError,
    InfeasibleError,
    NotFoundError,
    PodiumError,
    SpecError,
    StoreError,
    UsageError,
)


class Forbidden(PodiumError):
    """The request is understood but not allowed (e.g. resuming an unregistered workflow)."""

    exit_code = 2
    http_status = 403


class TooBusy(PodiumError):
    """The server runs as many runs as it may; try again later."""

    exit_code = 3
    http_status = 429


class NotSupported(PodiumError):
    """A well-formed request for something this version cannot do yet."""

    exit_code = 2
    http_status = 422


class BodyTooLarge(PodiumError):
    exit_code = 2
    http_status = 413


STATUS: dict[type[BaseException], int] = {
    PodiumError: 500,
    UsageError: UsageError.http_status,
    SpecError: SpecError.http_status,
    NotFoundError: NotFoundError.http_status,
    ConflictError: ConflictError.http_status,
    InfeasibleError: InfeasibleError.http_status,
    StoreError: 503,  # the store is down or busy: the request itself was fine
    Forbidden: Forbidden.http_status,
    TooBusy: TooBusy.http_status,
    NotSupported: NotSupported.http_status,
    BodyTooLarge: BodyTooLarge.http_status,
    json.JSONDecodeError: 400,
    UnicodeDecodeError: 400,
}


def status_for(exc: BaseException) -> int:
    for cls in type(exc).__mro__:
        status = STATUS.get(cls)
        if status is not None:
            return status
    return 500


def one_line(text: str) -> str:
    lines = [s.strip() for s in str(text).splitlines() if s.strip()]
    return "; ".join(lines)[:2000]


def error_body(exc: BaseException) -> dict[str, Any]:
    status = status_for(exc)
    if status >= 500 and not isinstance(exc, PodiumError):
        return {"error": "internal error (see the server's log)"}
    if isinstance(exc, json.JSONDecodeError):
        return {"error": f"request body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"}
    if isinstance(exc, UnicodeDecodeError):
        return {"error": "request body is not UTF-8 text"}
    body: dict[str, Any] = {"error": one_line(str(exc))}
    if isinstance(exc, SpecError):
        body["problems"] = [{"where": p.where, "message": p.message} for p in exc.problems]
    return body
