"""What leaves the server: secrets redacted, sizes bounded, nothing from the store executed.

``redact(value)`` is ``podium.secrets.redact_value``: the value of every key that names a
secret (password, token, api key, ...) becomes ``"***"`` and every string passes through the
one text redaction (URL passwords, secret query values, bearer tokens, known secret values).
``preview(record)`` turns a stored result into a small JSON value without running anything:
results are pickles, and an unpickler that refuses every global (so no class, function or
reduce can be reached) reads only plain containers, strings, numbers and bytes; anything else
is shown as its size.
Invariants: every run parameter, event payload, error, log text and result preview the API or
the UI shows passes through ``redact``; a preview is at most ``PREVIEW_CHARS`` of JSON.
"""

from __future__ import annotations

import io
import json
import pickle
from typing import Any

from podium.secrets import redact_value

PREVIEW_CHARS = 16 * 1024
#: Results larger than this are described, not read.
PREVIEW_MAX_BYTES = 4 << 20


def redact(value: Any, depth: int = 0) -> Any:
    """A copy of a JSON-like ``value`` with secrets replaced by ``***`` (``podium.secrets.redact_value``)."""
    return redact_value(value, depth)


class _PlainUnpickler(pickle.Unpickler):
    """Reads plain data only: any global (class, function, reduce target) is refused."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"{module}.{name}")


class _Budget:
    def __init__(self, items: int) -> None:
        self.items = items


def _plain(value: Any, budget: _Budget, depth: int = 0) -> Any:
    """A JSON value for ``value``, cut to a budget of items (shared structures stay bounded)."""
    budget.items -= 1
    if budget.items < 0:
        return "..."
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else repr(value)
    if isinstance(value, str):
        return value if len(value) <= 2000 else value[:2000] + f"... ({len(value)} characters)"
    if isinstance(value, bytes | bytearray):
        return f"<{len(value)} bytes>"
    if depth >= 8:
        return "..."
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for i, (k, v) in enumerate(value.items()):
            if i >= 100:
                out["..."] = f"{len(value) - 100} more keys"
                break
            out[str(k)] = _plain(v, budget, depth + 1)
        return out
    if isinstance(value, list | tuple | set | frozenset):
        items = list(value) if not isinstance(value, list | tuple) else value
        shown = [_plain(v, budget, depth + 1) for v in items[:100]]
        if len(items) > 100:
            shown.append(f"... {len(items) - 100} more items")
        return shown
    return f"<{type(value).__name__}>"


def preview(data: bytes, encoding: str = "pickle") -> dict[str, Any]:
    """``{"bytes": n, "value": ..., "truncated": bool}`` or ``{"bytes": n, "note": why not}``."""
    out: dict[str, Any] = {"bytes": len(data), "encoding": encoding}
    if len(data) > PREVIEW_MAX_BYTES:
        out["note"] = f"not previewed: {len(data)} bytes"
        return out
    try:
        if encoding == "json":
            value = json.loads(data)
        elif encoding == "pickle":
            value = _PlainUnpickler(io.BytesIO(data)).load()
        else:
            out["note"] = f"not previewed: unknown encoding {encoding!r}"
            return out
    except pickle.UnpicklingError as e:
        out["note"] = f"not previewed: the result is an object ({e}), not plain data"
        return out
    except Exception as e:  # a malformed or truncated result: describe it, never fail the page
        out["note"] = f"not previewed: {type(e).__name__}"
        return out
    shown = redact(_plain(value, _Budget(2000)))
    text = json.dumps(shown, ensure_ascii=False)
    if len(text) > PREVIEW_CHARS:
        out["value"] = text[:PREVIEW_CHARS]
        out["truncated"] = True
    else:
        out["value"] = shown
        out["truncated"] = False
    return out
