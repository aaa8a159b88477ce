"""The server's own configuration: the ``[server]`` table of the project's ``podium.toml``.

The file is found as every command finds the project (``podium.project``): from the current
folder up to the nearest trusted folder holding ``podium.toml`` or ``.podium/``, so
``podium server`` started in a subfolder serves its project; ``--config FILE`` names another.

What the API may run is decided here and only here: workflow files the operator registered
(never code sent in a request), the modules their tasks may import, schedules and webhooks::

    [server]
    allow_modules = ["mytasks"]          # added to the top-level allow_modules
    max_active_runs = 8                  # runs the server's workers may run at once (0: none,
                                         # a server that only watches)
    max_body = 1048576                   # bytes a request body may have

    [[server.workflows]]
    path = "flows/nightly.yaml"          # or "flows/train.py:pipeline"; relative to this file

    [[server.workflows.schedules]]
    cron = "0 3 * * *"
    timezone = "Europe/Paris"            # default UTC
    params = {seed = 1}
    catchup = false                      # run slots missed while the server was down?

    [[server.webhooks]]
    url = "https://hooks.example.com/podium"
    on = ["failed", "succeeded"]         # default: both
    workflows = ["nightly"]              # default: every workflow

A plain string in ``workflows`` is a path. Invariants: every problem in the table is reported
at once (``SpecError``, each naming its key); nothing here imports or runs user code (the
workflows are loaded by ``podium.server.workflows``).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from podium.errors import Problem, SpecError
from podium.project import find_project, trust_problem, warn_ignored
from podium.server.cron import Cron

DEFAULT_MAX_BODY = 1 << 20
DEFAULT_MAX_ACTIVE = 8
NOTIFY_ON = ("failed", "succeeded", "cancelled")


@dataclass(frozen=True)
class Schedule:
    workflow_path: str
    cron: Cron
    timezone: str
    params: dict[str, Any]
    catchup: bool
    where: str  # "server.workflows[0].schedules[1]", for messages

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass(frozen=True)
class WorkflowEntry:
    path: str  # as written (may carry ":flow")
    resolved: str  # absolute file path, ":flow" kept
    schedules: tuple[Schedule, ...] = ()


@dataclass(frozen=True)
class Webhook:
    url: str
    on: tuple[str, ...] = ("failed", "succeeded")
    workflows: tuple[str, ...] = ()  # empty: every workflow


@dataclass(frozen=True)
class ServerConfig:
    base_dir: Path
    path: str | None = None
    allow_modules: tuple[str, ...] = ()
    workflows: tuple[WorkflowEntry, ...] = ()
    webhooks: tuple[Webhook, ...] = ()
    max_active_runs: int = DEFAULT_MAX_ACTIVE
    max_body: int = DEFAULT_MAX_BODY
    extra: dict[str, Any] = field(default_factory=dict)


def load_server_config(path: str | Path | None = None, cwd: str | Path | None = None) -> ServerConfig:
    """The ``[server]`` table of ``path`` (relative to ``cwd``), by default of the project's
    ``podium.toml``: the project ``cwd`` is in, found as every command finds it
    (``podium.project.find_project``: the nearest trusted folder up). An absent default file
    is an empty configuration (its base the project root, else ``cwd``), and so is one that
    someone else could have written (ignored with a warning, as the project's settings are);
    an absent explicit one is a ``SpecError``."""
    start = (Path(cwd) if cwd is not None else Path.cwd()).resolve()
    if path is None:
        base = find_project(start).root or start
        file = base / "podium.toml"
        if not file.is_file():
            return ServerConfig(base_dir=base)
        problem = trust_problem(file)
        if problem is not None:  # it would grant modules and workflows: never read
            warn_ignored(file, problem)
            return ServerConfig(base_dir=base)
    else:
        file = Path(path) if Path(path).is_absolute() else start / path
        if not file.is_file():
            raise SpecError(f"{path}: no such configuration file")
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise SpecError(f"{file.name}: cannot be read as TOML: {e}") from None
    except OSError as e:
        raise SpecError(f"{file.name}: cannot be read: {e.strerror}") from None
    table = data.get("server", {})
    if not isinstance(table, dict):
        raise SpecError(Problem(f"{file.name}: server", "expected a table ([server])"))
    return parse_server_table(table, file)


def parse_server_table(table: dict[str, Any], file: Path) -> ServerConfig:
    base = file.resolve().parent
    problems: list[Problem] = []

    def bad(where: str, message: str) -> None:
        problems.append(Problem(f"{file.name}: server.{where}" if where else f"{file.name}: server", message))

    known = {"allow_modules", "workflows", "webhooks", "max_active_runs", "max_body"}
    for key in sorted(set(table) - known):
        bad(key, f"unknown key (known: {', '.join(sorted(known))})")
    mods = table.get("allow_modules", [])
    if not isinstance(mods, list) or not all(isinstance(m, str) and m.strip() for m in mods):
        bad("allow_modules", "expected a list of module names")
        mods = []
    max_active = _count(table, "max_active_runs", DEFAULT_MAX_ACTIVE, bad, minimum=0)
    max_body = _count(table, "max_body", DEFAULT_MAX_BODY, bad)
    workflows = []
    raw = table.get("workflows", [])
    if not isinstance(raw, list):
        bad("workflows", "expected a list of paths or [[server.workflows]] tables")
        raw = []
    for i, entry in enumerate(raw):
        wf = _workflow(entry, f"workflows[{i}]", base, bad)
        if wf is not None:
            workflows.append(wf)
    hooks = []
    raw_hooks = table.get("webhooks", [])
    if not isinstance(raw_hooks, list):
        bad("webhooks", "expected [[server.webhooks]] tables")
        raw_hooks = []
    for i, entry in enumerate(raw_hooks):
        hook = _webhook(entry, f"webhooks[{i}]", bad)
        if hook is not None:
            hooks.append(hook)
    if problems:
        raise SpecError(problems)
    return ServerConfig(
        base_dir=base,
        path=str(file),
        allow_modules=tuple(m.strip() for m in mods),
        workflows=tuple(workflows),
        webhooks=tuple(hooks),
        max_active_runs=max_active,
        max_body=max_body,
    )


def _count(table: dict[str, Any], key: str, default: int, bad: Any, minimum: int = 1) -> int:
    v = table.get(key, default)
    if not isinstance(v, int) or isinstance(v, bool) or v < minimum:
        bad(key, f"expected an integer >= {minimum}, got {v!r}")
        return default
    return v


def _workflow(entry: Any, where: str, base: Path, bad: Any) -> WorkflowEntry | None:
    if isinstance(entry, str):
        entry = {"path": entry}
    if not isinstance(entry, dict):
        bad(where, "expected a path or a table with 'path'")
        return None
    for key in sorted(set(entry) - {"path", "schedules"}):
        bad(f"{where}.{key}", "unknown key (known: path, schedules)")
    path = entry.get("path")
    if not isinstance(path, str) or not path.strip():
        bad(f"{where}.path", "expected the path of a workflow file")
        return None
    file, sep, flow = _split(path)
    resolved = (base / file).resolve()
    if not resolved.is_file():
        bad(f"{where}.path", f"{path!r}: no such file (relative to {base})")
    full = f"{resolved}{sep}{flow}"
    schedules = []
    raw = entry.get("schedules", [])
    if not isinstance(raw, list):
        bad(f"{where}.schedules", "expected [[...schedules]] tables")
        raw = []
    for j, s in enumerate(raw):
        sch = _schedule(s, f"{where}.schedules[{j}]", full, bad)
        if sch is not None:
            schedules.append(sch)
    return WorkflowEntry(path=path, resolved=full, schedules=tuple(schedules))


def _split(path: str) -> tuple[str, str, str]:
    head, sep, tail = path.rpartition(":")
    if sep and head.lower().endswith(".py") and tail and "/" not in tail:
        return head, sep, tail
    return path, "", ""


def _schedule(s: Any, where: str, path: str, bad: Any) -> Schedule | None:
    if not isinstance(s, dict):
        bad(where, "expected a table with 'cron'")
        return None
    for key in sorted(set(s) - {"cron", "timezone", "params", "catchup"}):
        bad(f"{where}.{key}", "unknown key (known: cron, timezone, params, catchup)")
    ok = True
    try:
        cron = Cron.parse(s.get("cron", ""))
    except ValueError as e:
        bad(f"{where}.cron", str(e))
        ok = False
    tz = s.get("timezone", "UTC")
    try:
        if not isinstance(tz, str) or not tz or tz.startswith("/") or ".." in tz:
            raise ValueError
        ZoneInfo(tz)
    except (ValueError, ZoneInfoNotFoundError):
        bad(f"{where}.timezone", f"unknown time zone {tz!r} (use an IANA name like 'Europe/Paris')")
        ok = False
    params = s.get("params", {})
    if not isinstance(params, dict):
        bad(f"{where}.params", "expected a table of parameter values")
        ok = False
    catchup = s.get("catchup", False)
    if not isinstance(catchup, bool):
        bad(f"{where}.catchup", "expected true or false")
        ok = False
    if not ok:
        return None
    return Schedule(path, cron, tz, dict(params), catchup, where)


def _webhook(entry: Any, where: str, bad: Any) -> Webhook | None:
    if not isinstance(entry, dict):
        bad(where, "expected a table with 'url'")
        return None
    for key in sorted(set(entry) - {"url", "on", "workflows"}):
        bad(f"{where}.{key}", "unknown key (known: url, on, workflows)")
    url = entry.get("url")
    try:
        parts = urlsplit(url) if isinstance(url, str) else None
    except ValueError:
        parts = None
    if (
        not isinstance(url, str)
        or parts is None
        or parts.scheme not in ("http", "https")
        or not parts.hostname
    ):
        bad(f"{where}.url", f"expected an http:// or https:// URL, got {url!r}")
        return None
    on = entry.get("on", ["failed", "succeeded"])
    if not isinstance(on, list) or not on or not all(o in NOTIFY_ON for o in on):
        bad(f"{where}.on", f"expected a list of {', '.join(NOTIFY_ON)}")
        return None
    wfs = entry.get("workflows", [])
    if not isinstance(wfs, list) or not all(isinstance(w, str) for w in wfs):
        bad(f"{where}.workflows", "expected a list of workflow names")
        return None
    return Webhook(url, tuple(on), tuple(wfs))
