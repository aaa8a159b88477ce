"""Reporting problems of a spec document with their positions (the base of the spec reader).

A ``Reporter`` holds the document and the problems found so far; ``err`` attaches
``file:line:col: dotted.path`` to a message; ``locate`` gives a position to a problem the model
reported by name only (``tasks.NAME.field``); ``position`` sorts problems in file order.
Invariant: a problem is only ever added, with the best position known; nothing here raises.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from podium.errors import Problem
from podium.load import options
from podium.load.schema import did_you_mean
from podium.load.yamlsafe import Document

P = tuple[str | int, ...]


class Reporter:
    def __init__(self, doc: Document) -> None:
        self.doc = doc
        self.problems: list[Problem] = list(doc.problems)

    def err(self, path: Sequence[str | int], message: str, key: bool = False) -> None:
        self.problems.append(Problem(self.doc.where(path, key), message))

    def issues(self, base: P, issues: options.Issues) -> None:
        for k, msg in issues:
            self.err((*base, k), msg)

    def unknown_keys(self, value: Mapping[str, Any], allowed: Sequence[str], path: P, what: str) -> None:
        for k in value:
            if k not in allowed:
                self.err((*path, k), f"unknown key {k!r} in {what}{did_you_mean(k, allowed)}", key=True)

    def expect(self, value: Any, types: type | tuple[type, ...], path: P, what: str) -> bool:
        ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in _as_tuple(types))
        if not ok:
            self.err(path, f"expected {what}, got {describe(value)}")
        return ok

    def already_reported(self, p: Problem) -> bool:
        """Model problems this reader already reported with a precise position."""
        m, w = p.message, p.where
        return (
            m.startswith(("refers to unknown task", "uses undeclared parameter", "map_over names"))
            or (m.startswith("unknown task") and w.endswith((".after", ".when")))
            or w.endswith((".call", ".url", ".argv", ".image", ".inputs"))
            or (w.startswith("params.") and w.endswith(".type"))
        )

    def locate(self, p: Problem) -> Problem:
        """Attach a file position to a problem the model reported as ``tasks.NAME.field``."""
        where = p.where
        tasks = self.doc.data.get("tasks") if isinstance(self.doc.data, dict) else None
        if where.startswith("tasks.") and isinstance(tasks, dict):
            rest = where[len("tasks.") :]
            for t in sorted(tasks, key=len, reverse=True):
                if rest == t or rest.startswith(t + "."):
                    field = rest[len(t) + 1 :]
                    path: P = ("tasks", t, field) if field else ("tasks", t)
                    return Problem(self.doc.where(path, key=bool(field)), p.message)
        path = tuple(where.split(".")) if where else ()
        return Problem(self.doc.where(path), p.message)


_POS = re.compile(r":(\d+):(\d+)(?::|$)")


def position(p: Problem) -> tuple[int, int]:
    """Sort key: problems in file order; those without a position last."""
    m = _POS.search(p.where)
    return (int(m.group(1)), int(m.group(2))) if m else (sys.maxsize, 0)


def _as_tuple(types: type | tuple[type, ...]) -> tuple[type, ...]:
    return types if isinstance(types, tuple) else (types,)


def describe(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    text = repr(value)
    if len(text) > 40:
        text = text[:37] + "..."
    return f"{type(value).__name__} {text}"
