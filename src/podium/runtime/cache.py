"""Result-cache keys: what makes two task runs interchangeable.

A task with ``cache: true`` is keyed by a sha256 of its kind, its code (the function's source
for Python tasks, else the kind's settings: a container's image, command and environment, a
shell command...), its resolved inputs (parameters included) and its number of workers; never
its resources, retries, timeout, placement, name or run. Same key, same result: a later run
reuses the stored result (reported as cached) instead of running the task.

Invariants: a key is computed only from data that determines the result; so the settings of
``@podium.task(...)`` (cpu, memory, retries, timeout, cache...) are left out of a function's
source, while any other decorator stays in it. Anything that cannot be fingerprinted
(unpicklable inputs, a function without source or bytecode) disables caching for that call
rather than risking a wrong hit; a decorator that cannot be recognised stays in the source
(a miss, never a wrong hit). Keys are computed from pickled inputs (pickling, never
unpickling); the store authenticates what it hands back under a key (see
``podium.runtime.codec``), so a planted entry is a miss.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import pickle
import textwrap
import types
from collections.abc import Callable, Mapping
from typing import Any

from podium.model.task import TaskSpec
from podium.registry import Registry

#: call -> (the callable, its fingerprint): a flow file run again in the same process (a resume
#: after a fix) gives new callables, whose code is fingerprinted anew.
_code_cache: dict[str, tuple[Any, str]] = {}
#: Where ``@podium.task`` is defined: a decorator that resolves to it is left out of the source.
_TASK_DECORATOR = ("podium.load.python", "task")


def _target(expr: ast.expr, scope: Mapping[str, Any]) -> Any:
    """What a decorator's dotted name (``task``, ``podium.task``, ``pd.task(...)``) refers to in
    ``scope``, following attributes of modules only; None if it is anything else."""
    if isinstance(expr, ast.Call):
        expr = expr.func
    names: list[str] = []
    while isinstance(expr, ast.Attribute):
        names.append(expr.attr)
        expr = expr.value
    if not isinstance(expr, ast.Name):
        return None
    obj = scope.get(expr.id)
    for name in reversed(names):
        if not isinstance(obj, types.ModuleType):
            return None
        obj = getattr(obj, name, None)
    return obj


def _is_task_decorator(obj: Any) -> bool:
    return (getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)) == _TASK_DECORATOR


def function_source(fn: Callable[..., Any]) -> str:
    """The source of ``fn`` without its ``@podium.task(...)`` decorator (whose settings say how
    the function is run, not what it computes); other decorators are kept. ``OSError`` or
    ``TypeError`` if there is no source."""
    source = textwrap.dedent(inspect.getsource(fn))
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return source
    node = tree.body[0] if tree.body else None
    if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) or not node.decorator_list:
        return source
    scope = getattr(fn, "__globals__", {})
    kept = [
        "@" + (ast.get_source_segment(source, d) or ast.dump(d))
        for d in node.decorator_list
        if not _is_task_decorator(_target(d, scope))
    ]
    lines = source.splitlines(keepends=True)
    return "".join(line + "\n" for line in kept) + "".join(lines[node.lineno - 1 :])


def code_fingerprint(spec: TaskSpec, registry: Registry) -> str | None:
    if spec.kind != "python" or spec.call is None:
        return spec.kind
    try:
        fn = registry.resolve(spec.call)
    except Exception:
        return None
    hit = _code_cache.get(spec.call)
    if hit is not None and hit[0] is fn:
        return hit[1]
    try:
        source = function_source(fn)
    except Exception:
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
    if spec.kind == "service" and "ready" in config:  # how long to wait for it, not what it is
        config = {k: v for k, v in config.items() if k != "ready"}
    try:
        inputs = pickle.dumps((sorted(kwargs.items()), sorted(config.items())), protocol=5)
    except Exception:
        return None
    h = hashlib.sha256()
    h.update(code.encode())
    if spec.workers != 1:  # a gang's result may depend on its world size
        h.update(f"\0workers={spec.workers}".encode())
    h.update(inputs)
    return h.hexdigest()
