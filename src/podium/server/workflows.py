"""The catalog of registered workflows: what the API may run, loaded once at start.

Each ``[[server.workflows]]`` entry is loaded with the same loader as ``podium run`` (same
validation, same allowed modules) when the server starts. Invariants: a request names a
registered workflow by name and never sends code or a path; parameters are checked exactly
like ``-p`` (the request's values are turned into the ``-p NAME=VALUE`` pairs the worker will
receive, parsed back with ``parse_params`` and resolved with ``Workflow.resolve_params``; a
value that would not survive that trip is refused); a workflow file edited after the server
started is refused until the server is restarted, so what runs is what was validated.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from podium.errors import ConflictError, NotFoundError, Problem, SpecError
from podium.model.workflow import REQUIRED, Workflow
from podium.server.config import ServerConfig, WorkflowEntry


@dataclass(frozen=True)
class Registered:
    name: str
    entry: WorkflowEntry
    workflow: Workflow
    source: dict[str, Any]  # the loader's source record (path, sha256, allow_modules, flow)

    @property
    def file(self) -> str:
        return str(self.source["path"])


class Catalog:
    """Registered workflows by name."""

    def __init__(self, config: ServerConfig, items: dict[str, Registered]) -> None:
        self.config = config
        self.items = items

    @classmethod
    def load(cls, config: ServerConfig) -> Catalog:
        from podium.load import load_workflow

        items: dict[str, Registered] = {}
        problems: list[Problem] = []
        for i, entry in enumerate(config.workflows):
            try:
                loaded = load_workflow(
                    entry.resolved, allow_modules=config.allow_modules, cwd=config.base_dir
                )
            except SpecError as e:
                problems += [Problem(f"server.workflows[{i}] ({entry.path})", str(p)) for p in e.problems]
                continue
            name = loaded.workflow.name
            if name in items:
                problems.append(
                    Problem(f"server.workflows[{i}]", f"workflow name {name!r} is registered twice")
                )
                continue
            items[name] = Registered(name, entry, loaded.workflow, loaded.source)
        if problems:
            raise SpecError(problems)
        return cls(config, items)

    def get(self, name: str) -> Registered:
        reg = self.items.get(name) if isinstance(name, str) else None
        if reg is None:
            known = ", ".join(sorted(self.items)) or "none"
            raise NotFoundError(f"workflow {name!r} is not registered (registered: {known})")
        return reg

    def for_run(self, source: dict[str, Any], workflow: str) -> Registered | None:
        """The registered workflow a run was started from (same file and content), if any."""
        reg = self.items.get(workflow)
        if reg is None or not isinstance(source, dict):
            return None
        if source.get("path") == reg.source["path"] and source.get("sha256") == reg.source["sha256"]:
            return reg
        return None

    def check_unchanged(self, reg: Registered) -> None:
        try:
            digest = hashlib.sha256(Path(reg.file).read_bytes()).hexdigest()
        except OSError as e:
            raise ConflictError(f"workflow {reg.name!r}: its file cannot be read: {e.strerror}") from None
        if digest != reg.source["sha256"]:
            raise ConflictError(
                f"workflow {reg.name!r}: {reg.entry.path} changed since the server started; "
                "restart the server to register the new version"
            )

    def check_params(self, reg: Registered, given: Any) -> tuple[dict[str, Any], list[str]]:
        """``(resolved params, the -p pairs a worker gets)``; ``SpecError`` like ``-p`` would give."""
        from podium.load.params import parse_params

        if given is None:
            given = {}
        if not isinstance(given, dict):
            raise SpecError(Problem("params", "expected an object of parameter values"))
        resolved = reg.workflow.resolve_params(given)
        pairs, problems = [], []
        for name, value in given.items():
            text = _as_text(value)
            if text is None:
                problems.append(Problem(f"param {name}", f"{value!r} cannot be given as -p {name}=VALUE"))
                continue
            pairs.append(f"{name}={text}")
        if problems:
            raise SpecError(problems)
        again = reg.workflow.resolve_params(parse_params(pairs))
        if again != resolved:
            diff = [k for k in resolved if again.get(k) != resolved[k]]
            raise SpecError(
                [
                    Problem(
                        f"param {k}",
                        "this value reads differently as -p NAME=VALUE (text that looks "
                        "like a JSON list or object?)",
                    )
                    for k in diff
                ]
            )
        return resolved, pairs

    def describe(self, reg: Registered) -> dict[str, Any]:
        params = []
        for p in reg.workflow.params.values():
            required = p.default is REQUIRED
            params.append(
                {
                    "name": p.name,
                    "type": p.type,
                    "required": required,
                    "default": None if required else _jsonable(p.default),
                    "description": p.description,
                }
            )
        return {
            "name": reg.name,
            "description": reg.workflow.description,
            "path": reg.entry.path,
            "params": params,
            "tasks": len(reg.workflow.tasks),
            "schedules": [
                {"cron": s.cron.text, "timezone": s.timezone, "params": s.params, "catchup": s.catchup}
                for s in reg.entry.schedules
            ],
        }

    def listing(self) -> list[dict[str, Any]]:
        return [self.describe(self.items[n]) for n in sorted(self.items)]


def graph_of(workflow: Workflow) -> list[dict[str, Any]]:
    """The spec-level DAG: one entry per task with its dependencies (maps are one node)."""
    return [
        {"name": t.name, "deps": list(t.deps), "kind": t.kind, "map": t.map_over is not None}
        for t in workflow.tasks.values()
    ]


def _as_text(value: Any) -> str | None:
    """The text after ``NAME=`` that ``parse_params`` reads back as ``value`` (or as text the
    declared type coerces to it); None for values ``-p`` cannot express."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return value if "\x00" not in value else None
    if isinstance(value, list | dict):
        try:
            return json.dumps(value, ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError):
            return None
    return None


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return repr(value)
    return value
