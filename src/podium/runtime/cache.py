"""Result-cache keys: what makes two task runs interchangeable.

A task with ``cache: true`` is keyed by a sha256 of its kind, its code (the function's source
for Python tasks, else the kind's settings), and its resolved inputs; never its resources, its
name or the run. Same key, same result: a later run reuses the stored result (reported as
cached) instead of running the task. Invariants: a key is computed only from data that
determines the result; anything that cannot be fingerprinted (unpicklable inputs, a function
without source) disables caching for that call rather than risking a wrong hit. Keys are
computed from pickled inputs (pickling, never unpickling); the store authenticates what it
hands back under a key (see ``podium.runtime.codec``), so a planted entry is a miss.
"""

from __future__ import annotations

import hashlib
import inspect
import pickle
from collections.abc import Mapping
from typing import Any

from podium.model.task import TaskSpec
from podium.registry import Registry

#: call -> (the callable, its fingerprint): a flow file run again in the same process (a resume
#: after a fix) gives new callables, whose code is fingerprinted anew.
_code_cache: dict[str, tuple[Any, str]] = {}


def code_fingerprint(spec: TaskSpec, registry: Registry) -> str | None:
    if spec.kind != "python" or spec.call is None:
        return spec.kind
    fn = registry.resolve(spec.call)
    hit = _code_cache.get(spec.call)
    if hit is not None and hit[0] is fn:
        return hit[1]
    try:
        source = inspect.getsource(fn)
    except (OSError, TypeError, Exception):
        code = getattr(getattr(fn, "__code__", None), "co_code", None)
        if code is None:
            return None
        source = code.hex()
    fp = hashlib.sha256(f"{spec.call}\n{source}".encode()).hexdigest()
    _code_cache[spec.call] = (fn, fp)
    return fp


def cache_key(
    spec: TaskSpec, kwargs: Mapping[str, Any], config: Mapping[str, Any], registry: Registry
) -> str | None:
    """The cache key of one call, or None when it cannot be fingerprinted safely."""
    code = code_fingerprint(spec, registry)
    if code is None:
        return None
    try:
        inputs = pickle.dumps((sorted(kwargs.items()), sorted(config.items())), protocol=5)
    except Exception:
        return None
    h = hashlib.sha256()
    h.update(code.encode())
    h.update(inputs)
    return h.hexdigest()
