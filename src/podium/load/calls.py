"""Checking a spec's ``call:`` without running any code.

Where an allowed module comes from, in this order: a module already imported; the installed
packages (``sys.path`` as the process has it); the project root (the folder of ``podium.toml``,
else the current folder); the module paths the user listed (``module_paths``,
``--module-path``). Never the folder of the spec itself, unless the user lists it.

The module is found with importlib's finders, which run no module code (for ``a.b.c`` the
packages ``a`` and ``a.b`` are searched through their folders, not imported), and its source
is parsed with ``ast``: the qualname must be a function or class defined at the top level of
the module, or nested in classes defined there (``Tools.double``). A module without Python
source (compiled or built in) is accepted here and checked by the registry when the run
imports it; the registry applies the same rule to the live objects (``__module__`` and
``__qualname__``), so a name that passes here but is re-bound at import time still fails then.

Invariants: nothing is imported or executed; every failure is a message for the spec's
problem list; a module found in the project root or a module path is recorded in the
registry (``locate``) so the run imports that same file.
"""

from __future__ import annotations

import ast
import importlib
import importlib.machinery
import importlib.util
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from podium.errors import SpecError
from podium.registry import Registry, did_you_mean, split_call

_DEFINED: dict[tuple[str, int, int], frozenset[str] | str] = {}


def check_call(call: str, folders: Sequence[Path], registry: Registry) -> str | None:
    """Why ``call`` cannot be run (a message), or None. The module must already be allowed."""
    try:
        module, parts = split_call(call)
    except SpecError as e:
        return str(e)
    if registry.registered(call):
        return None  # registered on purpose (``@podium.task`` or ``registry.register``)
    found = _find(module, folders)
    if isinstance(found, str):
        return found
    spec, folder = found
    if folder is not None:
        registry.locate(module.partition(".")[0], str(folder))
    origin = spec.origin
    if spec.submodule_search_locations is not None and origin in (None, "namespace"):
        return f"module {module!r} is a namespace package: it defines no functions"
    if not origin or not origin.endswith(".py"):
        return None  # no source to read (built in or compiled): checked when the run imports it
    defined = _definitions(origin)
    if isinstance(defined, str):
        return f"module {module!r} cannot be checked: {defined}"
    qual = ".".join(parts)
    if qual not in defined:
        return (
            f"{qual!r} is not defined in module {module!r} ({origin}); a task names a function "
            f"defined in an allowed module, not one it imports{did_you_mean(qual, defined)}"
        )
    return None


def _find(module: str, folders: Sequence[Path]) -> tuple[Any, Path | None] | str:
    """(the module's spec, the folder it was found in if not installed) or a message."""
    top, *rest = module.split(".")
    spec, folder = _find_top(top, folders)
    if spec is None:
        where = ", ".join(str(f) for f in folders)
        return (
            f"module {module!r} was not found in the installed packages or in {where} "
            "(a module next to a spec is used only if its folder is given with --module-path "
            "or module_paths in podium.toml)"
        )
    name = top
    for part in rest:
        name = f"{name}.{part}"
        loaded = sys.modules.get(name)
        if loaded is not None and getattr(loaded, "__spec__", None) is not None:
            spec = loaded.__spec__
            continue
        locations = spec.submodule_search_locations
        sub = importlib.machinery.PathFinder.find_spec(name, list(locations)) if locations else None
        if sub is None:
            return f"module {module!r} was not found ({name!r} does not exist)"
        spec = sub
    return spec, folder


def _find_top(top: str, folders: Sequence[Path]) -> tuple[Any, Path | None]:
    loaded = sys.modules.get(top)
    if loaded is not None:
        return getattr(loaded, "__spec__", None) or _file_spec(top, loaded), None
    importlib.invalidate_caches()
    try:
        spec = importlib.util.find_spec(top)  # a top-level name: finds, imports nothing
    except (ImportError, ValueError):
        spec = None
    if spec is not None:
        return spec, None
    for folder in folders:
        spec = importlib.machinery.PathFinder.find_spec(top, [str(folder)])
        if spec is not None:
            return spec, folder
    return None, None


def _file_spec(name: str, mod: Any) -> Any:
    path = getattr(mod, "__file__", None)
    return importlib.machinery.ModuleSpec(name, None, origin=path) if path else None


def _definitions(path: str) -> frozenset[str] | str:
    """Qualnames of the functions and classes a module's source defines (cached per file
    version), or why the source cannot be read."""
    p = Path(path)
    try:
        st = p.stat()
    except OSError as e:
        return e.strerror or str(e)
    key = (str(p), st.st_mtime_ns, st.st_size)
    got = _DEFINED.get(key)
    if got is None:
        try:
            tree = ast.parse(p.read_bytes(), filename=str(p))
        except SyntaxError as e:
            got = f"Python syntax error at line {e.lineno}: {e.msg}"
        except (OSError, ValueError) as e:
            got = str(e)
        else:
            names: set[str] = set()
            _collect(tree.body, "", names)
            got = frozenset(names)
        if len(_DEFINED) > 256:
            _DEFINED.clear()
        _DEFINED[key] = got
    return got


def _collect(body: list[ast.stmt], prefix: str, out: set[str]) -> None:
    for stmt in body:
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            qual = prefix + stmt.name
            out.add(qual)
            if isinstance(stmt, ast.ClassDef):
                _collect(stmt.body, qual + ".", out)
        elif isinstance(stmt, ast.If | ast.Try | ast.With):
            # definitions made at module level under a condition or a context still count
            for block in _blocks(stmt):
                _collect(block, prefix, out)


def _blocks(stmt: ast.If | ast.Try | ast.With) -> list[list[ast.stmt]]:
    if isinstance(stmt, ast.If):
        return [stmt.body, stmt.orelse]
    if isinstance(stmt, ast.Try):
        return [stmt.body, *(h.body for h in stmt.handlers), stmt.orelse, stmt.finalbody]
    return [stmt.body]
