"""Turning a task's expressions into values: upstream results, parameters, literals, templates.

Invariants: resolution is pure (values and params in, plain Python values out); read-only
mappings and tuples frozen in the spec come back as dicts and lists, so user code receives
ordinary JSON-like values; a missing key or index raises ``InputError`` naming the path.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from podium.errors import PodiumError
from podium.model.task import Const, Param, Ref, Template


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
        return _index(results[value.task], value)
    if isinstance(value, Param):
        return params[value.name]
    if isinstance(value, Const):
        return thaw(value.value)
    if isinstance(value, Template):
        return "".join(p if isinstance(p, str) else str(resolve(p, results, params)) for p in value.parts)
    if isinstance(value, MappingProxyType | dict):
        return {k: resolve(v, results, params) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [resolve(v, results, params) for v in value]
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
