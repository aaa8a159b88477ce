"""The YAML/JSON front end: a spec document -> a validated ``Workflow``.

The format is documented in docs/spec.md and described by ``podium.load.schema``. Strings
holding ``${...}`` are expressions (``podium.load.exprs``): ``${task}`` / ``${task.key.0}``,
``${params.n}``, ``${secrets.NAME}`` (declared under ``secrets:``), ``${env.NAME}``, and
``Template``s of text around them. In ``args`` a value without expressions is a ``Const``; in
kind settings (http json, headers, shell argv, env) plain values stay plain.

Invariants:
- Every problem of a document is collected and raised once as a ``SpecError``; each carries
  ``file:line:col`` where known.
- Nothing is imported or executed for a spec: a ``call`` is checked against the source of an
  allowed module (``podium.load.calls``); programs, hosts, environment variables and secret
  files against what the user granted (``podium.load.grants``, ``podium.load.secrets``).
- The same description written with the Python decorators gives an equal Workflow: both
  front ends share ``podium.load.options`` for settings.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from podium.errors import SpecError
from podium.load import options
from podium.load.calls import check_call
from podium.load.config import Config
from podium.load.containers import read_container
from podium.load.exprs import has_expr, parse_string
from podium.load.grants import task_problems
from podium.load.kindspec import http_settings, service_settings, shell_settings
from podium.load.report import Reporter, describe, position
from podium.load.schema import (
    ALL_TASK_KEYS,
    COMMON_TASK_KEYS,
    KIND_KEYS,
    OBJECTIVE_KEYS,
    PARAM_KEYS,
    RETRY_KEYS,
    TOP_KEYS,
    WHEN_KEYS,
    did_you_mean,
)
from podium.load.secrets import check_secret, read_secrets
from podium.load.yamlsafe import Document, Limits, read_document
from podium.model.cluster import Node, unplaceable_tasks
from podium.model.task import KINDS, Const, Param, Ref, RetryPolicy, TaskSpec, Template, When
from podium.model.workflow import PARAM_TYPES, REQUIRED, Objective, ParamSpec, Workflow
from podium.registry import REGISTRY, Registry
from podium.secrets import Secret

__all__ = ["load_spec", "parse_string"]

P = tuple[str | int, ...]


def load_spec(
    data: bytes,
    name: str,
    fmt: str = "yaml",
    allow_modules: Iterable[str] = (),
    registry: Registry | None = None,
    limits: Limits | None = None,
    default_name: str | None = None,
    config: Config | None = None,
    allow_images: Iterable[str] = (),
    nodes: Sequence[Node] | None = None,
) -> Workflow:
    """Bytes of a spec document -> validated Workflow. ``SpecError`` lists every problem.

    ``config`` is what the user granted (default: the ``allow_modules`` and ``allow_images``
    given, nothing else, modules found in the installed packages and the current folder).
    With ``nodes``, a task no node can ever hold is one more problem of the same list."""
    lim = limits or Limits()
    cfg = (config or Config()).widen(allow_modules, images=allow_images)
    reg = registry or REGISTRY
    cfg.apply(reg)
    doc = read_document(data, name, fmt, lim)
    fallback = default_name or Path(name).stem or "workflow"
    return _SpecReader(doc, cfg, reg, lim, fallback, nodes).workflow()


class _SpecReader(Reporter):
    def __init__(
        self,
        doc: Document,
        config: Config,
        registry: Registry,
        limits: Limits,
        default_name: str | None,
        nodes: Sequence[Node] | None = None,
    ):
        super().__init__(doc)
        self.nodes = nodes
        self.config = config
        self.allow = config.allow_modules
        self.registry = registry
        self.limits = limits
        self.default_name = default_name or "workflow"
        self.secrets: dict[str, Secret] = {}
        self.refs: list[tuple[P, str]] = []  # (where, task name) to check once all tasks are known
        self.params_used: list[tuple[P, str]] = []
        self.allow_images = config.policy.images  # container images the user granted

    # -- the document ----------------------------------------------------------------------
    def workflow(self) -> Workflow:
        data = self.doc.data
        if data is None:
            raise SpecError(f"{self.doc.name}: the spec is empty: it needs at least 'tasks:'")
        if not isinstance(data, dict):
            raise SpecError(
                f"{self.doc.where(())}: a spec must be a mapping with 'name:' and 'tasks:', "
                f"got {describe(data)}"
            )
        self.unknown_keys(data, TOP_KEYS, (), "the spec")
        name = data.get("name", self.default_name)
        if not isinstance(name, str) or not name.strip():
            self.err(("name",), f"expected a non-empty string, got {describe(name)}")
            name = self.default_name
        description = data.get("description", "")
        if not self.expect(description, str, ("description",), "a string"):
            description = ""
        fail_fast = data.get("fail_fast", True)
        if not self.expect(fail_fast, bool, ("fail_fast",), "true or false"):
            fail_fast = True
        objective = self._objective(data.get("objective"))
        if "secrets" in data:
            self.secrets, found = read_secrets(data["secrets"], self.config)
            for sub, msg in found:
                self.err(("secrets", *sub), msg)
        params = self._params(data.get("params"))
        tasks = self._tasks(data.get("tasks"))
        self._check_refs({t.name for t in tasks}, {p.name for p in params})
        if self.nodes is not None:
            self.problems += [self.locate(p) for p in unplaceable_tasks(tasks, self.nodes)]
        try:
            wf = Workflow.build(name, tasks, params, objective, fail_fast, description)
        except SpecError as e:
            self.problems += [self.locate(p) for p in e.problems if not self.already_reported(p)]
            wf = None
        if self.problems or wf is None:
            raise SpecError(sorted(dict.fromkeys(self.problems), key=position))
        return wf

    def _objective(self, value: Any) -> Objective:
        if value is None:
            return Objective()
        path: P = ("objective",)
        if not self.expect(value, dict, path, "a mapping like {alpha: 1, beta: 0.5}"):
            return Objective()
        self.unknown_keys(value, OBJECTIVE_KEYS, path, "objective")
        out: dict[str, Any] = {}
        for k in ("alpha", "beta", "budget"):
            if k in value:
                v = value[k]
                if options.is_number(v) and v >= 0:
                    out[k] = float(v)
                else:
                    self.err((*path, k), f"expected a non-negative number, got {describe(v)}")
        if "deadline" in value:
            issues: options.Issues = []
            out["deadline"] = options.duration(value["deadline"], "deadline", issues)
            self.issues(path, issues)
        return Objective(**out)

    def _params(self, value: Any) -> list[ParamSpec]:
        if value is None:
            return []
        if not self.expect(value, dict, ("params",), "a mapping of parameter name to type or settings"):
            return []
        out = []
        for pname, spec in value.items():
            path: P = ("params", pname)
            if isinstance(spec, str):
                if spec not in PARAM_TYPES:
                    self.err(path, f"unknown type {spec!r} (use {', '.join(PARAM_TYPES)})")
                    spec = "any"
                out.append(ParamSpec(pname, spec))
                continue
            if not isinstance(spec, dict):
                self.err(path, f"expected a type name or {{type:, default:}}, got {describe(spec)}")
                continue
            self.unknown_keys(spec, PARAM_KEYS, path, "a parameter")
            default = spec.get("default", REQUIRED)
            ptype = spec.get("type", options.infer_param_type(default))
            if not isinstance(ptype, str) or ptype not in PARAM_TYPES:
                self.err((*path, "type"), f"unknown type {ptype!r} (use {', '.join(PARAM_TYPES)})")
                ptype = "any"
            desc = spec.get("description", "")
            if not self.expect(desc, str, (*path, "description"), "a string"):
                desc = ""
            out.append(ParamSpec(pname, ptype, default, desc))
        return out

    def _tasks(self, value: Any) -> list[TaskSpec]:
        if value is None:
            return []
        if not self.expect(value, dict, ("tasks",), "a mapping of task name to task"):
            return []
        if len(value) > self.limits.max_tasks:
            raise SpecError(
                f"{self.doc.where(('tasks',))}: {len(value)} tasks, over the limit of "
                f"{self.limits.max_tasks} (raise it with --max-tasks)"
            )
        out = []
        for tname, body in value.items():
            path: P = ("tasks", tname)
            if not isinstance(body, dict):
                self.err(path, f"a task must be a mapping (call:, args:, ...), got {describe(body)}")
                continue
            out.append(self._task(tname, body, path))
        return out

    # -- one task --------------------------------------------------------------------------
    def _task(self, name: str, body: dict[str, Any], path: P) -> TaskSpec:
        kind = body.get("kind")
        if kind is None:
            if "call" in body:
                kind = "python"
            elif "url" in body:
                kind = "http"
            elif "argv" in body:
                kind = "container" if "image" in body else "shell"
            elif "image" in body:
                kind = "container"
            else:
                self.err(
                    path, "a task needs 'call: module:function' (python) or 'kind: http' / 'kind: shell'"
                )
                kind = "python"
        known_kind = isinstance(kind, str) and kind in KINDS
        if not known_kind:
            hint = did_you_mean(kind, KINDS) if isinstance(kind, str) else ""
            self.err((*path, "kind"), f"unknown kind {kind!r} (use {', '.join(KINDS)}){hint}")
            kind = "shell"  # checked no further: only the settings every kind shares
        allowed = (*COMMON_TASK_KEYS, *KIND_KEYS[kind]) if known_kind else ALL_TASK_KEYS
        for k in body:
            if k in allowed:
                continue
            if k in ALL_TASK_KEYS:
                self.err((*path, k), f"key {k!r} does not apply to a {kind} task", key=True)
            else:
                self.err((*path, k), f"unknown key {k!r} in task{did_you_mean(k, allowed)}", key=True)
        fields: dict[str, Any] = {"kind": kind}
        if not known_kind:
            fields["config"] = {"argv": ["-"]}
        elif kind == "python":
            fields.update(self._python(body, path))
        elif kind == "http":
            fields["config"] = http_settings(self, body, path)
        elif kind == "container":
            fields.update(read_container(self, body, path))
        elif kind == "service":
            fields["config"] = service_settings(self, body, path)
        else:
            fields["config"] = shell_settings(self, body, path)
        if known_kind:
            for sub, msg in task_problems(kind, fields.get("config", {}), self.config.policy):
                self.err((*path, *sub), msg)
        issues: options.Issues = []
        res = body.get("resources", {})
        if self.expect(res, dict, (*path, "resources"), "a mapping like {cpu: 1, memory: 512MiB}"):
            rissues: options.Issues = []
            fields["resources"] = options.resources(res, rissues)
            self.issues((*path, "resources"), rissues)
        if "retries" in body:
            fields["retry"] = self._retry(body["retries"], (*path, "retries"))
        fields["timeout"] = options.duration(body.get("timeout"), "timeout", issues)
        fields["expected_duration"] = options.duration(
            body.get("expected_duration"), "expected_duration", issues
        )
        if "workers" in body:
            fields["workers"] = options.workers(body["workers"], issues)
        self.issues(path, issues)
        for key, typ, what in (
            ("cache", bool, "true or false"),
            ("isolation", str, "'thread' or 'process'"),
            ("trigger", str, "'all_success', 'none_failed', 'one_failed' or 'all_done'"),
            ("description", str, "a string"),
        ):
            if key in body and self.expect(body[key], typ, (*path, key), what):
                fields[key] = body[key]
        if "after" in body:
            fields["after"] = self._after(body["after"], (*path, "after"))
        if "when" in body:
            fields["when"] = self._when(body["when"], (*path, "when"))
        return TaskSpec(name=name, **fields)

    def _python(self, body: dict[str, Any], path: P) -> dict[str, Any]:
        out: dict[str, Any] = {}
        call = body.get("call")
        if call is None:
            self.err(path, "a python task needs 'call: module:function'")
        elif self.expect(call, str, (*path, "call"), "'module:function'"):
            out["call"] = call
            self._resolve(call, (*path, "call"))
        args = body.get("args", {})
        if self.expect(args, dict, (*path, "args"), "a mapping of argument name to value"):
            out["args"] = {k: self._arg(v, (*path, "args", k)) for k, v in args.items()}
        out.update(self._map(body, args, path, "argument", "args"))
        return out

    def _map(self, body: dict[str, Any], given: Any, path: P, what: str, key: str) -> dict[str, Any]:
        """``map: NAME`` naming one of ``given`` (the task's args or inputs, called ``key``)."""
        if "map" not in body:
            return {}
        m = body["map"]
        if not self.expect(m, str, (*path, "map"), f"the name of an {what}"):
            return {}
        if isinstance(given, dict) and m not in given:
            known = ", ".join(given) or "none"
            self.err((*path, "map"), f"map names {m!r}, which is not an {what} ({key}: {known})")
        return {"map_over": m}

    def _retry(self, value: Any, path: P) -> RetryPolicy:
        issues: options.Issues = []
        if isinstance(value, int) and not isinstance(value, bool):
            if value < 0:
                self.err(path, f"retries must be >= 0, got {value}")
                return RetryPolicy()
            return options.retry_policy(attempts=value + 1, issues=issues)
        if not isinstance(value, dict):
            self.err(
                path, f"expected a number of retries or {{attempts:, delay:, ...}}, got {describe(value)}"
            )
            return RetryPolicy()
        self.unknown_keys(value, RETRY_KEYS, path, "retries")
        known = {k: v for k, v in value.items() if k in RETRY_KEYS}
        policy = options.retry_policy(**known, issues=issues)
        self.issues(path, issues)
        return policy

    def _after(self, value: Any, path: P) -> tuple[str, ...]:
        names = [value] if isinstance(value, str) else value
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            self.err(path, f"expected a task name or a list of task names, got {describe(value)}")
            return ()
        for i, n in enumerate(names):
            self.refs.append(((*path, i) if isinstance(value, list) else path, n))
        return tuple(names)

    def _when(self, value: Any, path: P) -> When | None:
        if not self.expect(value, dict, path, "{task: NAME, equals: VALUE} or {ref: '${task.key}', equals:}"):
            return None
        self.unknown_keys(value, WHEN_KEYS, path, "when")
        if "equals" not in value:
            self.err(path, "when needs 'equals:' (the value the upstream result must have)")
        task, tpath = value.get("task"), value.get("path", [])
        if not isinstance(tpath, list) or not all(
            isinstance(p, str | int) and not isinstance(p, bool) for p in tpath
        ):
            self.err((*path, "path"), "expected a list of keys and indexes")
            tpath = []
        if ("task" in value) == ("ref" in value):
            self.err(path, "when needs exactly one of 'task: NAME' or 'ref: ${task.key}'")
            return None
        if "ref" in value:
            try:
                ref = parse_string(value["ref"]) if isinstance(value["ref"], str) else None
            except ValueError as e:
                self.err((*path, "ref"), str(e))
                return None
            if not isinstance(ref, Ref):
                self.err(
                    (*path, "ref"),
                    f"expected exactly one task reference like '${{route.label}}', got {value['ref']!r}",
                )
                return None
            task, tpath = ref.task, [*ref.path, *tpath]
            self.refs.append(((*path, "ref"), task))
        elif not isinstance(task, str):
            self.err((*path, "task"), f"expected a task name, got {describe(task)}")
            return None
        else:
            self.refs.append(((*path, "task"), task))
        return When(task=task, equals=value.get("equals"), path=tuple(tpath))

    # -- values ----------------------------------------------------------------------------
    def _expr_of(self, text: str, path: P) -> Any:
        try:
            value = parse_string(text)
        except ValueError as e:
            self.err(path, str(e))
            return text
        for part in value.parts if isinstance(value, Template) else (value,):
            if isinstance(part, Ref):
                self.refs.append((path, part.task))
            elif isinstance(part, Param):
                self.params_used.append((path, part.name))
        if isinstance(value, Secret):
            return self._secret(value, path)
        if isinstance(value, Template) and any(isinstance(p, Secret) for p in value.parts):
            return Template(tuple(self._secret(p, path) if isinstance(p, Secret) else p for p in value.parts))
        return value

    def _secret(self, ref: Secret, path: P) -> Secret:
        """``${secrets.X}`` -> the secret declared as X; ``${env.X}`` checked against allow_env."""
        secret = ref if ref.env is not None else self.secrets.get(ref.name)
        if secret is None:
            known = ", ".join(self.secrets) or "none"
            self.err(path, f"uses undeclared secret {ref.name!r} (declared in secrets: {known})")
            return ref
        if ref.env is not None:
            msg = check_secret(secret, self.config)
            if msg is not None:
                self.err(path, msg)
        return secret

    def plain(self, value: Any, path: P) -> Any:
        """Kind settings: strings may hold expressions, other values stay as they are."""
        if isinstance(value, str):
            return self._expr_of(value, path)
        if isinstance(value, dict):
            return {k: self.plain(v, (*path, k)) for k, v in value.items()}
        if isinstance(value, list):
            return [self.plain(v, (*path, i)) for i, v in enumerate(value)]
        return value

    def _arg(self, value: Any, path: P) -> Any:
        """An argument: an expression, a structure holding expressions, or a ``Const``."""
        converted = self.plain(value, path)
        if has_expr(converted):
            return converted
        return Const(converted)

    # -- cross checks ----------------------------------------------------------------------
    def _resolve(self, call: str, path: P) -> None:
        module, _, fn = call.partition(":")
        if not module or not fn:
            self.err(path, f"expected 'module:function', got {call!r}")
            return
        if not any(module == m or module.startswith(m + ".") for m in self.allow):
            self.err(
                path,
                f"module {module!r} is not allowed: allow it with --allow-module {module.split('.')[0]} "
                "or allow_modules in podium.toml",
            )
            return
        problem = check_call(call, self.config.folders(), self.registry)
        if problem is not None:
            self.err(path, problem)

    def _check_refs(self, tasks: set[str], params: set[str]) -> None:
        for path, name in self.refs:
            if name not in tasks:
                self.err(path, f"refers to unknown task {name!r}{did_you_mean(name, tasks)}")
        for path, name in self.params_used:
            if name not in params:
                self.err(path, f"uses undeclared parameter {name!r}{did_you_mean(name, params)}")
