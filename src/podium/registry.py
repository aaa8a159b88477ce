"""The task registry: how a name like ``"pkg.mod:func"`` becomes a callable.

Specs never carry code; they name Python tasks, and only names the registry knows or modules
the user allowed (config, ``--allow-module``, or a flow file the user ran) can be resolved.
Invariants: resolving never imports a module that was not allowed; a decorated task
registers under its ``module:qualname``; worker processes rebuild the registry from
``snapshot()`` (allowed modules and their file paths), never from a request.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from podium.errors import SpecError


class Registry:
    def __init__(self) -> None:
        self._fns: dict[str, Callable[..., Any]] = {}
        self._allowed: dict[str, str | None] = {}  # module name -> file path (None: importable)
        self._lock = threading.Lock()

    def register(self, name: str, fn: Callable[..., Any]) -> None:
        self._fns[name] = fn

    def allow(self, module: str, path: str | None = None) -> None:
        """Allow tasks from ``module`` (a dotted name), optionally loaded from a file ``path``."""
        self._allowed[module] = path

    def allowed(self, module: str) -> bool:
        return any(module == m or module.startswith(m + ".") for m in self._allowed)

    def snapshot(self) -> dict[str, str | None]:
        return dict(self._allowed)

    def restore(self, allowed: dict[str, str | None]) -> None:
        for m, p in allowed.items():
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
            mod = importlib.util.module_from_spec(spec)
            sys.modules[name] = mod
            self.allow(name, str(p))
            try:
                spec.loader.exec_module(mod)
            except BaseException:
                sys.modules.pop(name, None)
                raise
            return mod

    def resolve(self, name: str) -> Callable[..., Any]:
        """The callable for ``"module:qualname"``; ``SpecError`` if unknown or not allowed."""
        fn = self._fns.get(name)
        if fn is not None:
            return fn
        module, _, qual = name.partition(":")
        if not module or not qual:
            raise SpecError(f"task reference {name!r} is not of the form 'module:function'")
        if not self.allowed(module):
            raise SpecError(
                f"task reference {name!r}: module {module!r} is not allowed "
                f"(allow it with --allow-module {module} or in podium.toml)"
            )
        path = self._allowed.get(module)
        if module not in sys.modules and path:
            self.load_file(path, module)
        try:
            obj: Any = importlib.import_module(module)
        except ImportError as e:
            raise SpecError(f"task reference {name!r}: cannot import {module!r} ({e})") from None
        for part in qual.split("."):
            obj = getattr(obj, part, None)
            if obj is None:
                raise SpecError(f"task reference {name!r}: {module!r} has no {qual!r}")
        fn = getattr(obj, "__podium_fn__", obj)
        if not callable(fn):
            raise SpecError(f"task reference {name!r} is not callable")
        self._fns[name] = fn
        return fn

    def names(self) -> Iterable[str]:
        return self._fns.keys()


#: The process-wide registry decorators register into.
REGISTRY = Registry()
