"""The task registry: how a name like ``"pkg.mod:func"`` becomes a callable, and what else a
run's tasks may use (the ``Policy``: programs, hosts, bounds).

Specs never carry code; they name Python tasks, and only names the registry knows (registered
on purpose, e.g. by ``@podium.task``) or functions *defined* in modules the user allowed
(config, ``--allow-module``, or a flow file the user ran) can be resolved.

Invariants:
- resolving never imports a module that was not allowed; a name is ``module:qualname`` where
  every part is an identifier without a leading double underscore; each step of the qualname
  is a class defined in that module and the callable reached is defined there too (its
  ``__module__`` and ``__qualname__`` are the name asked for; a decorated task's function
  counts): no walk into what the module imported, no dunders;
- a top-level module is loaded from the place recorded for it (a flow file, the project root,
  a module path) or else from the installed packages, never from the folder of a spec;
- worker processes rebuild the registry from ``snapshot()`` (a flat dict of strings: allowed
  modules with their file, where top-level modules are loaded from, and the policy), never
  from a request.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import sys
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from podium.errors import SpecError
from podium.policy import Policy

_LOCATION = "@"  # snapshot key prefix: where a top-level module is loaded from
_POLICY = "!policy"  # snapshot key of the policy (module names never start with '!')


def split_call(name: str) -> tuple[str, list[str]]:
    """``"pkg.mod:Cls.fn"`` -> ``("pkg.mod", ["Cls", "fn"])``; ``SpecError`` if malformed or if
    any part is not an identifier or starts with a double underscore."""
    module, sep, qual = name.partition(":") if isinstance(name, str) else ("", "", "")
    if not sep or not module or not qual:
        raise SpecError(f"task reference {name!r} is not of the form 'module:function'")
    mparts, qparts = module.split("."), qual.split(".")
    for part in (*mparts, *qparts):
        if not part.isidentifier():
            raise SpecError(f"task reference {name!r}: {part!r} is not a Python name")
        if part.startswith("__"):
            raise SpecError(f"task reference {name!r}: {part!r} is a dunder or private name")
    return module, qparts


class Registry:
    def __init__(self) -> None:
        self._fns: dict[str, Callable[..., Any]] = {}
        self._allowed: dict[str, str | None] = {}  # module name -> file path (None: importable)
        self._locations: dict[str, str] = {}  # top-level module -> folder it is loaded from
        self.policy = Policy()
        self._lock = threading.RLock()

    def register(self, name: str, fn: Callable[..., Any]) -> None:
        self._fns[name] = fn

    def forget(self, module: str) -> None:
        """Drop the callables resolved from ``module``: its file is about to run again (a flow
        file that changed, loaded anew in the same process)."""
        with self._lock:
            for name in [n for n in self._fns if n.partition(":")[0] == module]:
                del self._fns[name]

    def allow(self, module: str, path: str | None = None) -> None:
        """Allow tasks from ``module`` (a dotted name), optionally loaded from a file ``path``."""
        self._allowed[module] = path

    def locate(self, top: str, folder: str) -> None:
        """Load top-level module ``top`` from ``folder`` (the project root or a module path)
        when it is imported for a task; this allows nothing by itself."""
        self._locations[top] = folder

    def grant(self, policy: Policy) -> None:
        """Add ``policy``'s names to this registry's policy and take its settings."""
        self.policy = self.policy.merge(policy)

    def registered(self, name: str) -> bool:
        """Whether ``name`` was registered on purpose (or already resolved)."""
        return name in self._fns

    def allowed(self, module: str) -> bool:
        return any(module == m or module.startswith(m + ".") for m in self._allowed)

    def snapshot(self) -> dict[str, str | None]:
        snap: dict[str, str | None] = dict(self._allowed)
        snap.update({_LOCATION + top: folder for top, folder in self._locations.items()})
        if self.policy != Policy():
            snap[_POLICY] = self.policy.to_json()
        return snap

    def restore(self, allowed: dict[str, str | None]) -> None:
        for m, p in allowed.items():
            if m == _POLICY and p:
                self.grant(Policy.from_json(p))
            elif m.startswith(_LOCATION) and p:
                self.locate(m[len(_LOCATION) :], p)
            else:
                self.allow(m, p)

    def load_file(self, path: str | Path, module: str | None = None) -> Any:
        """Import a user's Python file as ``module`` (default: its stem) and allow it."""
        p = Path(path).resolve()
        name = module or p.stem
        with self._lock:
            if name in sys.modules and getattr(sys.modules[name], "__file__", None) == str(p):
                self.allow(name, str(p))
                return sys.modules[name]
            spec = importlib.util.spec_from_file_location(name, p)
            if spec is None or spec.loader is None:
                raise SpecError(f"{p}: cannot be loaded as a Python module")
            self.allow(name, str(p))
            return _execute(spec, name)

    def resolve(self, name: str) -> Callable[..., Any]:
        """The callable for ``"module:qualname"``; ``SpecError`` if unknown or not allowed."""
        fn = self._fns.get(name)
        if fn is not None:
            return fn
        module, parts = split_call(name)
        if not self.allowed(module):
            raise SpecError(
                f"task reference {name!r}: module {module!r} is not allowed "
                f"(allow it with --allow-module {module} or in podium.toml)"
            )
        obj = self._import(module, name)
        for i, part in enumerate(parts):
            if not isinstance(obj, type) and i > 0:
                raise SpecError(f"task reference {name!r}: {'.'.join(parts[:i])!r} is not a class")
            if part not in vars(obj):
                qual = ".".join(parts[: i + 1])
                hint = did_you_mean(part, [n for n, v in vars(obj).items() if callable(v)])
                raise SpecError(f"task reference {name!r}: {qual!r} is not defined in {module!r}{hint}")
            obj = getattr(obj, part)
            if i < len(parts) - 1:
                _check_defined(obj, module, ".".join(parts[: i + 1]), name)
        fn = getattr(obj, "__podium_fn__", obj)
        _check_defined(fn, module, ".".join(parts), name)
        if not callable(fn):
            raise SpecError(f"task reference {name!r} is not callable")
        self._fns[name] = fn
        return fn

    def _import(self, module: str, name: str) -> Any:
        loaded = sys.modules.get(module)
        if loaded is not None and not _initializing(loaded):
            return loaded
        # not imported yet, or still being imported by another thread: the import machinery
        # (and this registry's lock, for modules it executes itself) waits for it to finish
        with self._lock:
            path = self._allowed.get(module)
            if path and module not in sys.modules:
                self.load_file(path, module)
            top = module.partition(".")[0]
            folder = self._locations.get(top)
            if folder and top not in sys.modules:
                spec = importlib.machinery.PathFinder.find_spec(top, [folder])
                if spec is None:
                    raise SpecError(f"task reference {name!r}: module {top!r} is no longer in {folder}")
                _execute(spec, top)
        try:
            return importlib.import_module(module)
        except ImportError as e:
            raise SpecError(f"task reference {name!r}: cannot import {module!r} ({e})") from None

    def names(self) -> Iterable[str]:
        return self._fns.keys()


def did_you_mean(missing: str, names: Iterable[str]) -> str:
    """``"; did you mean 'fit'?"`` naming the closest of the public ``names``, or ""."""
    import difflib

    found = [n for n in names if not n.rpartition(".")[2].startswith("_")]
    close = difflib.get_close_matches(missing, found, n=2, cutoff=0.7)
    return f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


def _execute(spec: importlib.machinery.ModuleSpec, name: str) -> Any:
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec._initializing = True  # type: ignore[attr-defined]  # as importlib marks a module being run
    try:
        spec.loader.exec_module(mod)  # type: ignore[union-attr]
    except BaseException:
        sys.modules.pop(name, None)
        raise
    finally:
        spec._initializing = False  # type: ignore[attr-defined]
    return mod


def _initializing(mod: Any) -> bool:
    """Whether ``mod`` is in ``sys.modules`` but its code is still running (in another thread):
    its functions may not be defined yet."""
    return bool(getattr(getattr(mod, "__spec__", None), "_initializing", False))


def _check_defined(obj: Any, module: str, qual: str, name: str) -> None:
    """``obj`` must be defined in ``module`` under ``qual``: not imported there, not an alias."""
    got_module = getattr(obj, "__module__", None)
    got_qual = getattr(obj, "__qualname__", None)
    if got_module != module or got_qual != qual:
        where = f"{got_module}:{got_qual}" if isinstance(got_qual, str) else type(obj).__name__
        raise SpecError(
            f"task reference {name!r}: {qual!r} is not a function defined in {module!r} (it is {where}); "
            "name the module that defines it, and allow that module"
        )


#: The process-wide registry decorators register into.
REGISTRY = Registry()
