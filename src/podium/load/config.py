"""Project configuration: what specs may use, granted by the user, never by a spec.

Read from ``podium.toml`` (top-level keys, or a ``[podium]`` table) or from ``[tool.podium]``
in ``pyproject.toml``, in the *project root*: the folder ``podium.project.find_project`` finds
from the directory given (the current directory for the CLI), i.e. the nearest trusted folder
up holding ``podium.toml`` or ``.podium/`` (the one the store is found in), else that directory
itself. Allowed modules are found there (after installed packages) and relative paths in the
file are taken from there. A settings file that someone else could have written (owned by
another user, or in or itself writable by everyone) is ignored with a warning. Keys (all
optional):

- ``allow_modules``: Python modules whose functions specs may call;
- ``module_paths``: more folders to find allowed modules in (e.g. a folder of specs whose
  task modules sit next to them; a spec's own folder is never searched otherwise);
- ``allow_programs``: what a shell task's ``argv[0]`` may be (``"*"``: anything);
- ``allow_images``: the container images container tasks may run;
- ``allow_hosts``: non-public hosts, addresses or networks HTTP tasks may reach;
- ``allow_env``: environment variables specs may read (``${env.NAME}``, secrets);
- ``secrets_dir``: the folder a spec's file secrets must be in;
- ``http_redirects`` (``same-host``, ``any``, ``none``), ``http_timeout`` (seconds),
  ``max_response_bytes``, ``max_output_bytes``, ``max_fanout``, ``http_breaker_failures``,
  ``http_breaker_cooldown`` (the circuit breaker of ``podium.executors.breaker``).

Invariants: only this configuration, command-line flags or the library caller can grant
anything; a malformed file is one ``SpecError`` naming every bad key; ``to_source`` /
``from_source`` round-trip what a run was granted so a resume gets the same.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from podium.errors import Problem, SpecError
from podium.load.options import MAX_SECONDS
from podium.model.resources import parse_size
from podium.policy import REDIRECTS, Policy, host_entry_problem
from podium.project import find_project, trust_problem, warn_ignored
from podium.registry import Registry

LIST_KEYS = ("allow_modules", "allow_programs", "allow_hosts", "allow_env", "module_paths", "allow_images")
SIZE_KEYS = ("max_response_bytes", "max_output_bytes")
CONFIG_KEYS = (
    *LIST_KEYS,
    "secrets_dir",
    "http_redirects",
    "http_timeout",
    "http_breaker_failures",
    "http_breaker_cooldown",
    *SIZE_KEYS,
    "max_fanout",
)


@dataclass(frozen=True, slots=True)
class Config:
    """What the user granted. ``root`` is the project root; paths are absolute."""

    allow_modules: tuple[str, ...] = ()
    path: str | None = None
    root: str | None = None
    module_paths: tuple[str, ...] = ()
    secrets_dir: str | None = None
    policy: Policy = field(default_factory=Policy)

    def widen(
        self,
        modules: Iterable[str] = (),
        module_paths: Iterable[str | Path] = (),
        programs: Iterable[str] = (),
        hosts: Iterable[str] = (),
        env: Iterable[str] = (),
        images: Iterable[str] = (),
    ) -> Config:
        """This configuration with more granted (command-line flags, library arguments)."""
        problems = [Problem(f"--allow-host {h}", m) for h in hosts if (m := host_entry_problem(h))]
        folders = tuple(str(Path(p).resolve()) for p in module_paths)
        problems += [
            Problem(f"--module-path {p}", "no such directory") for p in folders if not os.path.isdir(p)
        ]
        if problems:
            raise SpecError(problems)
        return replace(
            self,
            allow_modules=_union(self.allow_modules, (m.strip() for m in modules)),
            module_paths=_union(self.module_paths, folders),
            policy=self.policy.widen(programs, hosts, env, (i.strip() for i in images)),
        )

    def apply(self, registry: Registry) -> None:
        """Allow this configuration's modules in ``registry`` and make its policy the one the
        run uses (replaced, not merged: a long-lived process loading specs of several
        projects must not carry one project's grants into another's run)."""
        snapshot = registry.snapshot()
        for m in self.allow_modules:
            if m not in snapshot:
                registry.allow(m)
        registry.policy = self.policy

    def folders(self) -> tuple[Path, ...]:
        """Where allowed modules that are not installed packages are found, in order."""
        return tuple(Path(p) for p in (self.root or str(Path.cwd()), *self.module_paths))

    def to_source(self) -> dict[str, Any]:
        return {
            "modules": list(self.allow_modules),
            "root": self.root,
            "module_paths": list(self.module_paths),
            "secrets_dir": self.secrets_dir,
            "policy": self.policy.to_json(),
        }

    @classmethod
    def from_source(cls, data: Mapping[str, Any], modules: Iterable[str] = ()) -> Config:
        policy = data.get("policy")
        return cls(
            allow_modules=_union(tuple(modules), data.get("modules") or ()),
            root=data.get("root"),
            module_paths=tuple(data.get("module_paths") or ()),
            secrets_dir=data.get("secrets_dir"),
            policy=Policy.from_json(policy) if isinstance(policy, str) else Policy(),
        )


def load_config(cwd: str | Path | None = None) -> Config:
    """The configuration of the project ``cwd`` is in (``podium.toml`` first, then
    ``pyproject.toml``, in the project root; see the module docstring)."""
    start = (Path(cwd) if cwd is not None else Path.cwd()).resolve()
    base = find_project(start).root or start
    own, pyproject = base / "podium.toml", base / "pyproject.toml"
    for file in (own, pyproject):
        if not file.is_file():
            continue
        problem = trust_problem(file)
        if problem is not None:  # someone else could have written it: never read, never granted
            warn_ignored(file, problem)
            break
        data = _read(file)
        if file is own:
            table = data.get("podium", data) if isinstance(data.get("podium"), dict) else data
            return _config(table, own, "")
        tool = data.get("tool", {})
        table = tool.get("podium") if isinstance(tool, dict) else None
        if isinstance(table, dict):
            return _config(table, pyproject, "tool.podium.")
    return Config(root=str(base.resolve()))


def _read(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise SpecError(f"{path.name}: cannot be read as TOML: {e}") from None
    except OSError as e:
        raise SpecError(f"{path.name}: cannot be read: {e.strerror}") from None


def _config(table: dict[str, Any], path: Path, prefix: str) -> Config:
    problems: list[Problem] = []
    root = path.resolve().parent

    def bad(key: str, message: str) -> None:
        problems.append(Problem(f"{path.name}: {prefix}{key}", message))

    lists: dict[str, tuple[str, ...]] = {}
    for key in LIST_KEYS:
        value = table.get(key, [])
        if not isinstance(value, list) or not all(isinstance(m, str) and m.strip() for m in value):
            what = {"allow_modules": "module names", "allow_images": "image names"}.get(key, "strings")
            bad(key, f"expected a list of {what}")
            value = []
        lists[key] = tuple(m.strip() for m in value)
    for h in lists["allow_hosts"]:
        if (msg := host_entry_problem(h)) is not None:
            bad("allow_hosts", msg)
    folders = tuple(str((root / p).resolve()) for p in lists["module_paths"])
    for p in folders:
        if not Path(p).is_dir():
            bad("module_paths", f"{p} is not a directory")
    secrets_dir = table.get("secrets_dir")
    if secrets_dir is not None:
        if not isinstance(secrets_dir, str) or not (root / secrets_dir).is_dir():
            bad("secrets_dir", f"expected an existing directory, got {secrets_dir!r}")
            secrets_dir = None
        else:
            secrets_dir = str((root / secrets_dir).resolve())
    settings: dict[str, Any] = {}
    redirects = table.get("http_redirects", "same-host")
    if redirects not in REDIRECTS:
        bad("http_redirects", f"expected one of {', '.join(REDIRECTS)}, got {redirects!r}")
    else:
        settings["http_redirects"] = redirects
    if "http_timeout" in table:
        t = table["http_timeout"]
        if isinstance(t, bool) or not isinstance(t, int | float) or not 0 < t <= MAX_SECONDS:
            bad("http_timeout", f"expected seconds, more than 0 and at most {MAX_SECONDS:g}, got {t!r}")
        else:
            settings["http_timeout"] = float(t)
    for key in SIZE_KEYS:
        if key in table:
            try:
                size = parse_size(table[key])
            except ValueError as e:
                bad(key, str(e))
                continue
            if size < 1024:
                bad(key, f"expected at least 1KiB, got {table[key]!r}")
            else:
                settings[key] = size
    if "http_breaker_failures" in table:
        n = table["http_breaker_failures"]
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 10**6:
            bad("http_breaker_failures", f"expected a whole number from 1 to 1000000, got {n!r}")
        else:
            settings["http_breaker_failures"] = n
    if "http_breaker_cooldown" in table:
        t = table["http_breaker_cooldown"]
        if isinstance(t, bool) or not isinstance(t, int | float) or not 0 < t <= 3600:
            bad("http_breaker_cooldown", f"expected seconds, more than 0 and at most 3600, got {t!r}")
        else:
            settings["http_breaker_cooldown"] = float(t)
    if "max_fanout" in table:
        n = table["max_fanout"]
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 10**9:
            bad("max_fanout", f"expected a whole number from 1 to 1000000000, got {n!r}")
        else:
            settings["max_fanout"] = n
    for key in table:
        if key not in CONFIG_KEYS and not (key in ("podium", "server") and prefix == ""):
            from podium.load.schema import did_you_mean

            bad(key, f"unknown setting{did_you_mean(key, CONFIG_KEYS)}")
    if problems:
        raise SpecError(problems)
    policy = Policy(
        programs=lists["allow_programs"],
        hosts=lists["allow_hosts"],
        env=lists["allow_env"],
        images=lists["allow_images"],
        **settings,
    )
    return Config(
        allow_modules=lists["allow_modules"],
        path=str(path),
        root=str(root),
        module_paths=folders,
        secrets_dir=secrets_dir,
        policy=policy,
    )


def _union(old: tuple[str, ...], new: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys((*old, *new)))
