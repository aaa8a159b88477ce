"""Turning a task's expressions into values: upstream results, parameters, literals, templates,
and secrets.

Invariants: resolution is pure apart from secrets (values and params in, plain Python values
out); read-only mappings and tuples frozen in the spec come back as dicts and lists, so user
code receives ordinary JSON-like values; a missing key or index raises ``InputError`` naming
the path. A ``Secret`` is read here, when the call is built and not before, and becomes a
``Sensitive`` string (a template embedding one becomes a ``Sensitive`` carrying it), so
whoever runs the call can mask it in what comes back; one that cannot be read is an
``InputError`` naming the secret, never its value.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from podium.errors import PodiumError
from podium.model.task import Const, Param, Ref, Template
from podium.secrets import Secret, SecretError, Sensitive, reveal


class InputError(PodiumError):
    """An expression could not be resolved (bad path into an upstream result)."""


def thaw(value: Any) -> Any:
    if isinstance(value, MappingProxyType | dict):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [thaw(v) for v in value]
    return value


def resolve(value: Any, results: Mapping[str, Any], params: Mapping[str, Any]) -> Any:
    """Resolve every expression inside ``value`` (a frozen structure or a single expression)."""
    if isinstance(value, Ref):
        if value.task not in results:  # an upstream that did not succeed (``trigger: all_done``)
            raise InputError(f"task {value.task!r} has no result to read: it did not succeed")
        return _index(results[value.task], value)
    if isinstance(value, Param):
        return params[value.name]
    if isinstance(value, Const):
        return thaw(value.value)
    if isinstance(value, Template):
        parts = [p if isinstance(p, str) else resolve(p, results, params) for p in value.parts]
        text = "".join(p if isinstance(p, str) else str(p) for p in parts)
        hidden = [s for p in parts if isinstance(p, Sensitive) for s in p.secrets]
        return Sensitive(text, hidden) if hidden else text
    if isinstance(value, MappingProxyType | dict):
        return {k: resolve(v, results, params) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [resolve(v, results, params) for v in value]
    if isinstance(value, Secret):
        try:
            return reveal(value)
        except SecretError as e:
            raise InputError(str(e)) from None
    return value


def resolve_args(
    args: Mapping[str, Any], results: Mapping[str, Any], params: Mapping[str, Any]
) -> dict[str, Any]:
    return {k: resolve(v, results, params) for k, v in args.items()}


def _index(value: Any, ref: Ref) -> Any:
    for i, key in enumerate(ref.path):
        try:
            value = value[key]
        except (KeyError, IndexError, TypeError):
            where = ref.task + "".join(f"[{k!r}]" for k in ref.path[: i + 1])
            raise InputError(f"{where}: no such key or index in the result of {ref.task!r}") from None
    return value
