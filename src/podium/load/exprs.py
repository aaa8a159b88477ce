"""Expressions in spec strings, and telling expressions from plain values (both front ends).

``${task}`` / ``${task.key.0}`` is a ``Ref``, ``${params.n}`` a ``Param``,
``${secrets.NAME}`` a secret declared in the spec's ``secrets:`` section (a ``Secret`` whose
source the reader fills in), ``${env.NAME}`` the environment variable NAME (a ``Secret`` too:
its value is treated as one); text around them makes a ``Template``; ``$${`` is a literal ``${``.

Invariants: parsing is pure and raises ``ValueError`` with a message for the spec's problem
list; ``has_expr`` is the one test both front ends use to decide whether an argument needs
resolving at run time or is a ``Const``.
"""

from __future__ import annotations

from typing import Any

from podium.model.task import Const, Param, Ref, Template
from podium.secrets import Secret

#: The expressions a value may hold (a ``Template`` may hold all but ``Const``).
EXPRS = (Ref, Param, Const, Template, Secret)
#: ``${secrets.X}`` / ``${env.X}``: names that are not tasks.
SECRET_ROOTS = ("secrets", "env")


def has_expr(value: Any) -> bool:
    """Whether ``value`` is, or holds inside dicts, lists or tuples, an expression."""
    if isinstance(value, EXPRS):
        return True
    if isinstance(value, dict):
        return any(has_expr(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(has_expr(v) for v in value)
    return False


def parse_string(text: str) -> str | Ref | Param | Secret | Template:
    """Interpret ``${...}`` in ``text``: a plain ``str`` (escapes resolved), or an expression.

    Raises ``ValueError`` for an unterminated or malformed ``${...}``.
    """
    if "$" not in text:
        return text
    parts: list[Any] = []
    buf: list[str] = []
    i = 0
    while i < len(text):
        if text.startswith("$${", i):
            buf.append("${")
            i += 3
        elif text.startswith("${", i):
            end = text.find("}", i + 2)
            if end < 0:
                raise ValueError(f"unterminated '${{' in {text!r} (write $${{ for a literal '${{')")
            expr = parse_reference(text[i + 2 : end])
            if buf:
                parts.append("".join(buf))
                buf = []
            parts.append(expr)
            i = end + 1
        else:
            buf.append(text[i])
            i += 1
    if buf:
        parts.append("".join(buf))
    if not parts:
        return ""
    if all(isinstance(p, str) for p in parts):
        return "".join(parts)
    if len(parts) == 1:
        return parts[0]  # type: ignore[no-any-return]
    return Template(tuple(parts))


def parse_reference(body: str) -> Ref | Param | Secret:
    """``task.key.0`` -> ``Ref("task", ("key", 0))``; ``params.n`` -> ``Param("n")``;
    ``secrets.X`` -> ``Secret("X")`` (source filled in by the reader); ``env.X`` -> the
    environment variable X as a ``Secret``."""
    segs = body.split(".")
    if not body or any(not s or s != s.strip() for s in segs):
        raise ValueError(
            f"malformed expression '${{{body}}}': use ${{task}}, ${{task.key}}, ${{params.name}}, "
            "${secrets.NAME} or ${env.NAME}"
        )
    if segs[0] == "params":
        if len(segs) != 2:
            raise ValueError(f"malformed parameter reference '${{{body}}}': use ${{params.name}}")
        return Param(segs[1])
    if segs[0] in SECRET_ROOTS:
        if len(segs) != 2:
            raise ValueError(
                f"malformed reference '${{{body}}}': use ${{{segs[0]}.NAME}} "
                f"(a task named {segs[0]!r} cannot be referred to: rename it)"
            )
        if segs[0] == "env":
            return Secret(f"env.{segs[1]}", env=segs[1])
        return Secret(segs[1])
    path = tuple(int(s) if s.isascii() and s.isdigit() else s for s in segs[1:])
    return Ref(segs[0], path)
