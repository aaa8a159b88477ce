"""The Python front end: ``@podium.task``, ``@podium.flow``, ``podium.each``, ``podium.when``.

A ``@task`` function is registered under ``"module:qualname"`` and otherwise behaves like the
plain function, except while a ``@flow`` is being built: then a call records a ``TaskSpec``
and returns a ``Handle`` (a promise of the task's result; ``handle["key"]`` narrows it).
Handles passed as arguments become ``Ref``s, flow parameters are ``Param``s, other values
``Const``s. ``podium.http(...)`` and ``podium.shell(...)`` declare the other task kinds
(``podium.container(...)`` lives in ``podium.load.containers``).

Invariants:
- Building never runs task code; the flow function runs once with ``Param`` placeholders.
- Every problem found while building is collected and raised once, as one ``SpecError``,
  together with what ``Workflow.build`` finds.
- Settings go through ``podium.load.options`` exactly as YAML settings do, so a flow and a
  spec that describe the same pipeline build equal Workflows.
- Importing this module is light: no YAML, no heavy optional dependencies.
"""

from __future__ import annotations

import functools
import inspect
import string
import traceback
import typing
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, overload

from podium.errors import Problem, SpecError, UsageError
from podium.load import options
from podium.model.task import Const, Param, Ref, TaskSpec, Template, When
from podium.model.workflow import REQUIRED, Objective, ParamSpec, Workflow
from podium.registry import REGISTRY

F = TypeVar("F", bound=Callable[..., Any])

#: Settings a task accepts (decorator and ``.options``) with their defaults.
TASK_DEFAULTS: dict[str, Any] = {
    "name": None,
    "cpu": 1,
    "memory": 0,
    "gpu": 0,
    "resources": None,
    "retries": 0,
    "retry_delay": "1s",
    "backoff": 2.0,
    "max_delay": "5m",
    "jitter": 0.1,
    "retry_on": None,
    "timeout": None,
    "cache": False,
    "expected_duration": None,
    "isolation": "thread",
    "trigger": "all_success",
    "description": "",
    "after": (),
}


@dataclass
class _Build:
    """The state of one flow being built (held in a context variable)."""

    flow: str
    tasks: list[TaskSpec] = field(default_factory=list)
    names: set[str] = field(default_factory=set)
    problems: list[Problem] = field(default_factory=list)
    whens: list[When] = field(default_factory=list)

    def unique(self, base: str) -> str:
        if base not in self.names:
            return base
        i = 2
        while f"{base}_{i}" in self.names:
            i += 1
        return f"{base}_{i}"


_BUILD: ContextVar[_Build | None] = ContextVar("podium_flow_build", default=None)


def _current(what: str) -> _Build:
    build = _BUILD.get()
    if build is None:
        raise UsageError(f"{what} can only be used while a @podium.flow is being built")
    return build


class Handle:
    """The future result of a task inside a flow being built; ``h["key"]``/``h[0]`` narrows it."""

    __slots__ = ("path", "task")

    def __init__(self, task: str, path: tuple[str | int, ...] = ()):
        self.task = task
        self.path = path

    def __getitem__(self, key: str | int) -> Handle:
        if not isinstance(key, str | int) or isinstance(key, bool):
            raise TypeError(f"result of {self.task!r} can be indexed by a key or an index, not {key!r}")
        return Handle(self.task, (*self.path, key))

    @property
    def ref(self) -> Ref:
        return Ref(self.task, self.path)

    def __iter__(self) -> Iterator[Any]:
        raise TypeError(
            f"the result of {self.task!r} is not known while the flow is built: "
            "use podium.each(handle) to run a task once per item"
        )

    def __bool__(self) -> bool:
        raise TypeError(
            f"the result of {self.task!r} is not known while the flow is built: "
            "use `with podium.when(handle, equals=...)` to branch on it"
        )

    def __str__(self) -> str:
        raise TypeError(
            f"the result of {self.task!r} is not known while the flow is built: "
            "use podium.template('text {}', handle) instead of str() or an f-string"
        )

    def __format__(self, spec: str) -> str:
        return self.__str__()

    def __repr__(self) -> str:
        return f"Handle({self.task!r}{''.join(f'[{p!r}]' for p in self.path)})"


@dataclass(frozen=True, slots=True)
class _Each:
    value: Any


def each(values: Any) -> Any:
    """Mark an argument whose (runtime) list value the task is mapped over, one run per item."""
    return _Each(values)


@contextmanager
def when(result: Handle, *, equals: Any) -> Iterator[None]:
    """Tasks created inside run only if ``result`` equals ``equals``; otherwise they are skipped."""
    build = _current("podium.when")
    if not isinstance(result, Handle):
        raise TypeError(f"podium.when needs a task result (a handle), got {type(result).__name__}")
    if build.whens:
        raise SpecError(Problem(f"flow {build.flow}", "podium.when blocks cannot be nested"))
    build.whens.append(When(task=result.task, equals=equals, path=result.path))
    try:
        yield
    finally:
        build.whens.pop()


def template(fmt: str, *values: Any) -> Template | str:
    """``template("model-{}.pkl", h)`` -> a Template joining text and results/params at run time."""
    parts: list[str | Ref | Param] = []
    auto = 0
    for literal, fieldname, spec, conv in string.Formatter().parse(fmt):
        if literal:
            parts.append(literal)
        if fieldname is None:
            continue
        if spec or conv:
            raise ValueError("podium.template supports only '{}' and '{0}' fields")
        if fieldname == "":
            index, auto = auto, auto + 1
        elif fieldname.isdigit():
            index = int(fieldname)
        else:
            raise ValueError(f"podium.template: use positional fields, not {{{fieldname}}}")
        v = _expr(values[index])
        parts.append(v if isinstance(v, Ref | Param) else str(v.value if isinstance(v, Const) else v))
    merged: list[str | Ref | Param] = []
    for p in parts:
        if isinstance(p, str) and merged and isinstance(merged[-1], str):
            merged[-1] += p
        else:
            merged.append(p)
    if all(isinstance(p, str) for p in merged):
        return "".join(merged)  # type: ignore[arg-type]
    return Template(tuple(merged))


# -- converting Python values to expressions ------------------------------------------------
def _expr(v: Any) -> Any:
    """Handles/params/templates become expressions; structures are converted inside."""
    if isinstance(v, Handle):
        return v.ref
    if isinstance(v, Ref | Param | Const | Template):
        return v
    if isinstance(v, _Each):
        raise TypeError("podium.each(...) must be passed directly as an argument")
    if isinstance(v, Mapping):
        return {k: _expr(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_expr(x) for x in v]
    return v


def _has_expr(v: Any) -> bool:
    if isinstance(v, Ref | Param | Template | Const):
        return True
    if isinstance(v, dict):
        return any(_has_expr(x) for x in v.values())
    if isinstance(v, list):
        return any(_has_expr(x) for x in v)
    return False


def _arg(v: Any) -> Any:
    e = _expr(v)
    if isinstance(e, Ref | Param | Template | Const) or _has_expr(e):
        return e
    return Const(e)


def arguments(
    given: Mapping[str, Any], problems: list[Problem], what: str = "argument"
) -> tuple[dict[str, Any], str | None]:
    """Expressions for a task's arguments, and the one marked ``podium.each`` (mapped over)."""
    mapped = [k for k, v in given.items() if isinstance(v, _Each)]
    if len(mapped) > 1:
        problems.append(Problem("", f"at most one podium.each(...) per call, got {', '.join(mapped)}"))
    exprs: dict[str, Any] = {}
    for k, v in given.items():
        try:
            exprs[k] = _arg(v.value if isinstance(v, _Each) else v)
        except TypeError as e:
            problems.append(Problem("", f"{what} {k!r}: {e}"))
    return exprs, mapped[0] if mapped else None


# -- settings -> TaskSpec fields ------------------------------------------------------------
def _fields(settings: Mapping[str, Any], where: str, problems: list[Problem]) -> dict[str, Any]:
    s = {**TASK_DEFAULTS, **settings}
    issues: options.Issues = []
    amounts = {"cpu": s["cpu"], "memory": s["memory"], "gpu": s["gpu"], **(s["resources"] or {})}
    rissues: options.Issues = []
    res = options.resources(amounts, rissues)
    issues += [(f"resources.{k}", m) for k, m in rissues]
    retries = s["retries"]
    if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
        issues.append(("retries", f"expected a whole number >= 0, got {retries!r}"))
        retries = 0
    rissues = []
    retry = options.retry_policy(
        attempts=retries + 1,
        delay=s["retry_delay"],
        backoff=s["backoff"],
        max_delay=s["max_delay"],
        jitter=s["jitter"],
        on=s["retry_on"],
        issues=rissues,
    )
    names = {"delay": "retry_delay", "on": "retry_on"}
    issues += [(names.get(k, k), m) for k, m in rissues]
    timeout = options.duration(s["timeout"], "timeout", issues)
    expected = options.duration(s["expected_duration"], "expected_duration", issues)
    for k, m in issues:
        problems.append(Problem(f"{where}.{k}", m))
    after = s["after"]
    if isinstance(after, Handle | str):
        after = [after]
    names_after: list[str] = []
    for a in after or ():
        if isinstance(a, Handle):
            names_after.append(a.task)
        elif isinstance(a, str):
            names_after.append(a)
        else:
            problems.append(Problem(f"{where}.after", f"expected task results or names, got {a!r}"))
    return {
        "resources": res,
        "retry": retry,
        "timeout": timeout,
        "expected_duration": expected,
        "cache": bool(s["cache"]),
        "isolation": s["isolation"],
        "trigger": s["trigger"],
        "description": s["description"] or "",
        "after": tuple(names_after),
    }


def _check_settings(settings: Mapping[str, Any], what: str) -> None:
    unknown = [k for k in settings if k not in TASK_DEFAULTS]
    if unknown:
        from podium.load.schema import did_you_mean

        k = unknown[0]
        raise TypeError(f"{what}: unknown setting {k!r}{did_you_mean(k, TASK_DEFAULTS)}")


def _record(
    build: _Build,
    default_name: str,
    settings: Mapping[str, Any],
    kind: str,
    call: str | None = None,
    args: Mapping[str, Any] | None = None,
    config: Mapping[str, Any] | None = None,
    map_over: str | None = None,
    problems: list[Problem] | None = None,
    exact_name: str | None = None,
) -> Handle:
    name = exact_name or build.unique(default_name)
    build.names.add(name)
    where = f"tasks.{name}"
    build.problems += [Problem(where, p.message) for p in problems or ()]
    fields = _fields(settings, where, build.problems)
    spec = TaskSpec(
        name=name,
        kind=kind,
        call=call,
        args=args or {},
        config=config or {},
        map_over=map_over,
        when=build.whens[-1] if build.whens else None,
        **fields,
    )
    build.tasks.append(spec)
    return Handle(name)


# -- @task ------------------------------------------------------------------------------------
class Task:
    """A registered task function. Called outside a flow build it is just the function."""

    def __init__(self, fn: Callable[..., Any], settings: Mapping[str, Any]):
        functools.update_wrapper(self, fn)
        self.__podium_fn__ = fn
        self.fn = fn
        self.settings = dict(settings)
        self.exact_name: str | None = None  # set by .options(name=...): no numbering
        self.call = f"{fn.__module__}:{fn.__qualname__}"
        self._signature = inspect.signature(fn)

    def options(self, **overrides: Any) -> Task:
        """The same task with settings overridden for one call (name, after, cpu, timeout, ...)."""
        _check_settings(overrides, f"{self.fn.__name__}.options")
        twin = Task.__new__(Task)
        twin.__dict__.update(self.__dict__)
        twin.settings = {**self.settings, **overrides}
        if overrides.get("name"):
            twin.exact_name = overrides["name"]
        return twin

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        build = _BUILD.get()
        if build is None:
            return self.fn(*args, **kwargs)
        problems: list[Problem] = []
        try:
            bound = self._signature.bind(*args, **kwargs).arguments
        except TypeError as e:
            problems.append(Problem("", f"bad arguments for {self.fn.__name__}: {e}"))
            bound = dict(kwargs)
        given: dict[str, Any] = {}
        for pname, value in bound.items():
            kind = self._signature.parameters[pname].kind if pname in self._signature.parameters else None
            if kind is inspect.Parameter.VAR_KEYWORD:
                given.update(value)
            elif kind is inspect.Parameter.VAR_POSITIONAL:
                if value:
                    problems.append(Problem("", f"*{pname}: pass task arguments by name"))
            else:
                given[pname] = value
        exprs, mapped = arguments(given, problems)
        return _record(
            build,
            self.settings.get("name") or self.fn.__name__,
            self.settings,
            "python",
            call=self.call,
            args=exprs,
            map_over=mapped,
            problems=problems,
            exact_name=self.exact_name,
        )

    def __repr__(self) -> str:
        return f"<podium task {self.call}>"


@overload
def task(fn: F) -> F: ...
@overload
def task(fn: None = None, **settings: Any) -> Callable[[F], F]: ...
def task(fn: Callable[..., Any] | None = None, **settings: Any) -> Any:
    """Declare a task: ``@podium.task`` or ``@podium.task(cpu=2, memory="1GiB", retries=3, ...)``.

    Settings: name, cpu, memory, gpu, resources (custom amounts), retries (extra attempts),
    retry_delay, backoff, max_delay, jitter, retry_on, timeout, cache, expected_duration,
    isolation ("thread" | "process"), trigger ("all_success" | "none_failed" | "one_failed" |
    "all_done"), description.
    """
    _check_settings(settings, "@podium.task")

    def wrap(f: Callable[..., Any]) -> Any:
        problems: list[Problem] = []
        _fields(settings, f"task {f.__qualname__}", problems)
        if problems:
            raise SpecError(problems)
        t = Task(f, settings)
        REGISTRY.register(t.call, f)
        return t

    return wrap(fn) if fn is not None else wrap


def http(
    url: Any,
    *,
    method: str | None = None,
    json: Any = None,
    body: Any = None,
    headers: Mapping[str, Any] | None = None,
    **settings: Any,
) -> Handle:
    """Declare an HTTP task inside a flow (``url``/``json``/``body``/``headers`` may hold results
    or params). Without ``method`` the request is a POST when it has a body, else a GET."""
    build = _current("podium.http")
    _check_settings(settings, "podium.http")
    issues: options.Issues = []
    config: dict[str, Any] = {"url": _expr(url)}
    if method is not None:
        config["method"] = options.normalize_http(method, issues)
    if json is not None and body is not None:
        issues.append(("body", "give json or body, not both"))
    if json is not None:
        config["json"] = _expr(json)
    if body is not None:
        config["body"] = _expr(body)
    if headers is not None:
        config["headers"] = _expr(dict(headers))
    problems = [Problem("", f"{k}: {m}") for k, m in issues]
    name = settings.get("name")
    return _record(build, name or "http", settings, "http", config=config, problems=problems, exact_name=name)


def shell(
    argv: list[Any],
    *,
    env: Mapping[str, Any] | None = None,
    cwd: Any = None,
    **settings: Any,
) -> Handle:
    """Declare a shell task inside a flow: ``argv`` items may be results, params or templates."""
    build = _current("podium.shell")
    _check_settings(settings, "podium.shell")
    config: dict[str, Any] = {"argv": [_expr(options.argv_item(a)) for a in argv]}
    if env is not None:
        config["env"] = {k: _expr(options.argv_item(v)) for k, v in env.items()}
    if cwd is not None:
        config["cwd"] = _expr(cwd)
    name = settings.get("name")
    return _record(build, name or "shell", settings, "shell", config=config, exact_name=name)


# -- @flow ------------------------------------------------------------------------------------
_TYPE_NAMES = {
    str: "str",
    int: "int",
    float: "float",
    bool: "bool",
    list: "list",
    dict: "dict",
    tuple: "list",
}


def _param_type(annotation: Any, default: Any) -> str:
    if annotation is inspect.Parameter.empty:
        return options.infer_param_type(None if default is inspect.Parameter.empty else default)
    if isinstance(annotation, str):
        base = annotation.split("[", 1)[0].strip()
        base = {"tuple": "list", "Any": "any", "typing.Any": "any"}.get(base, base)
        return base if base in ("str", "int", "float", "bool", "list", "dict", "any") else "any"
    if annotation is typing.Any:
        return "any"
    origin = typing.get_origin(annotation)
    return _TYPE_NAMES.get(annotation) or _TYPE_NAMES.get(origin) or "any"  # type: ignore[arg-type]


def _normal(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_normal(v) for v in value]
    if isinstance(value, dict):
        return {k: _normal(v) for k, v in value.items()}
    return value


def _user_frame(exc: BaseException) -> str:
    """`` (at file.py:12)`` for the innermost frame outside Podium, if any."""
    here = str(Path(__file__).resolve().parents[1])
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if not f.filename.startswith(here)]
    if not frames:
        return ""
    f = frames[-1]
    return f" (at {Path(f.filename).name}:{f.lineno})"


class Flow:
    """A function describing a workflow; ``build()`` turns it into a validated ``Workflow``."""

    def __init__(
        self,
        fn: Callable[..., Any],
        name: str | None = None,
        alpha: float = 1.0,
        beta: float = 0.0,
        deadline: Any = None,
        budget: float | None = None,
        fail_fast: bool = True,
        description: str | None = None,
    ):
        functools.update_wrapper(self, fn)
        self.fn = fn
        self.name = name or fn.__name__
        self.alpha, self.beta, self.deadline, self.budget = alpha, beta, deadline, budget
        self.fail_fast = fail_fast
        doc = inspect.getdoc(fn) or ""
        self.description = description if description is not None else doc.strip()
        self._built: Workflow | None = None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    def _params(self, problems: list[Problem]) -> list[ParamSpec]:
        try:
            sig = inspect.signature(self.fn, eval_str=True)
        except Exception:  # an annotation that cannot be evaluated: fall back to its text
            sig = inspect.signature(self.fn)
        out = []
        for p in sig.parameters.values():
            if p.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
                problems.append(
                    Problem(f"flow {self.name}", f"parameter {p.name!r}: *args/**kwargs not supported")
                )
                continue
            default = REQUIRED if p.default is inspect.Parameter.empty else _normal(p.default)
            annotation, description = p.annotation, ""
            if typing.get_origin(annotation) is typing.Annotated:
                annotation, *extra = typing.get_args(annotation)
                description = next((e for e in extra if isinstance(e, str)), "")
            out.append(ParamSpec(p.name, _param_type(annotation, p.default), default, description))
        return out

    def _objective(self, problems: list[Problem]) -> Objective:
        out: dict[str, Any] = {}
        for k in ("alpha", "beta", "budget"):
            v = getattr(self, k)
            if v is None:
                continue
            if options.is_number(v):
                out[k] = float(v)
            else:
                problems.append(Problem(f"objective.{k}", f"expected a number, got {v!r}"))
        issues: options.Issues = []
        out["deadline"] = options.duration(self.deadline, "deadline", issues)
        problems += [Problem(f"objective.{k}", m) for k, m in issues]
        return Objective(**out)

    def build(self) -> Workflow:
        """Run the flow function with parameter placeholders and validate what it declared."""
        problems: list[Problem] = []
        params = self._params(problems)
        objective = self._objective(problems)
        state = _Build(self.name)
        token = _BUILD.set(state)
        try:
            self.fn(**{p.name: Param(p.name) for p in params})
        except SpecError as e:
            state.problems += e.problems
        except Exception as e:
            state.problems.append(Problem(f"flow {self.name}", f"{type(e).__name__}: {e}{_user_frame(e)}"))
        finally:
            _BUILD.reset(token)
        problems += state.problems
        try:
            wf = Workflow.build(self.name, state.tasks, params, objective, self.fail_fast, self.description)
        except SpecError as e:
            problems += e.problems
        if problems:
            raise SpecError(list(dict.fromkeys(problems)))
        return wf

    @property
    def workflow(self) -> Workflow:
        """The built Workflow (built once, then cached)."""
        if self._built is None:
            self._built = self.build()
        return self._built

    def __repr__(self) -> str:
        return f"<podium flow {self.name}>"


def flow(
    fn: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    alpha: float = 1.0,
    beta: float = 0.0,
    deadline: Any = None,
    budget: float | None = None,
    fail_fast: bool = True,
    description: str | None = None,
) -> Any:
    """Declare a flow: ``@podium.flow`` or ``@podium.flow(alpha=1, beta=0.5, deadline="10m")``.

    The function's parameters become the workflow's typed parameters (from annotations or
    defaults; no default means required); ``Annotated[int, "text"]`` gives a description.
    """

    def wrap(f: Callable[..., Any]) -> Flow:
        return Flow(f, name, alpha, beta, deadline, budget, fail_fast, description)

    return wrap(fn) if fn is not None else wrap
