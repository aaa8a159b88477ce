"""The Python front end: ``@podium.task``, ``podium.each``, ``podium.when``, ``podium.template``
and ``podium.secret``, and the state of a flow being built (``@podium.flow`` is in
``podium.load.flow``, ``podium.http`` / ``podium.shell`` in ``podium.load.declare``).

A ``@task`` function is registered under ``"module:qualname"`` and otherwise behaves like the
plain function, except while a ``@flow`` is being built: then a call records a ``TaskSpec``
and returns a ``Handle`` (a promise of the task's result; ``handle["key"]`` narrows it).
Handles passed as arguments become ``Ref``s, flow parameters are ``Param``s, secrets
``Secret``s, other values ``Const``s. ``podium.http(...)`` and ``podium.shell(...)`` declare
the other task kinds in ``podium.load.declare``, ``podium.container(...)`` in
``podium.load.containers``.

Invariants:
- Building never runs task code; the flow function runs once with ``Param`` placeholders.
- Every problem found while building is collected and raised once, as one ``SpecError``,
  together with what ``Workflow.build`` finds.
- Settings go through ``podium.load.options`` exactly as YAML settings do, so a flow and a
  spec that describe the same pipeline build equal Workflows; both decide what is an
  expression with ``podium.load.exprs.has_expr``.
- Importing this module is light: no YAML, no heavy optional dependencies.
"""

from __future__ import annotations

import functools
import inspect
import string
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, overload

from podium.errors import Problem, SpecError, UsageError
from podium.load import options
from podium.load.exprs import has_expr
from podium.model.task import Const, Param, Ref, TaskSpec, Template, When
from podium.registry import REGISTRY
from podium.secrets import Secret

F = TypeVar("F", bound=Callable[..., Any])


class FlowError(SpecError, TypeError, ValueError):
    """A misuse of the Python API while writing a flow (a ``SpecError``, exit 2; also a
    ``TypeError``/``ValueError`` for code and Python protocols that expect one)."""


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
    "workers": 1,
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
            raise FlowError(f"result of {self.task!r} can be indexed by a key or an index, not {key!r}")
        return Handle(self.task, (*self.path, key))

    @property
    def ref(self) -> Ref:
        return Ref(self.task, self.path)

    def __iter__(self) -> Iterator[Any]:
        raise FlowError(
            f"the result of {self.task!r} is not known while the flow is built: "
            "use podium.each(handle) to run a task once per item"
        )

    def __bool__(self) -> bool:
        raise FlowError(
            f"the result of {self.task!r} is not known while the flow is built: "
            "use `with podium.when(handle, equals=...)` to branch on it"
        )

    def _compared(self, other: object) -> bool:
        raise TypeError(
            f"the result of {self.task!r} is not known while the flow is built, so it cannot be "
            "compared: branch on it with `with podium.when(handle, equals=...)` (to branch on an "
            "ordering, let a task return the comparison and branch on that)"
        )

    __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = _compared  # type: ignore[assignment]
    __hash__ = object.__hash__  # handles stay usable as keys although == refuses

    def __str__(self) -> str:
        raise FlowError(
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
        raise FlowError(f"podium.when needs a task result (a handle), got {type(result).__name__}")
    if build.whens:
        raise SpecError(Problem(f"flow {build.flow}", "podium.when blocks cannot be nested"))
    build.whens.append(When(task=result.task, equals=equals, path=result.path))
    try:
        yield
    finally:
        build.whens.pop()


def secret(name: str, *, env: str | None = None, file: str | None = None) -> Secret:
    """A secret for a task's arguments or settings, read only when the task's call is built
    and masked in what the task sends back: the environment variable ``env`` (default: ``name``)
    or the file ``file``. A flow is code the user runs, so it may read any variable or file."""
    if not isinstance(name, str) or not name:
        raise SpecError(Problem("podium.secret", f"expected a secret name, got {name!r}"))
    if env is not None and file is not None:
        raise SpecError(Problem(f"podium.secret({name!r})", "give env or file, not both"))
    if file is not None:
        return Secret(name, file=str(Path(file).resolve()))
    return Secret(name, env=env or name)


def template(fmt: str, *values: Any) -> Template | str:
    """``template("model-{}.pkl", h)`` -> a Template joining text and results/params at run time."""
    parts: list[Any] = []
    auto = 0
    for literal, fieldname, spec, conv in string.Formatter().parse(fmt):
        if literal:
            parts.append(literal)
        if fieldname is None:
            continue
        if spec or conv:
            raise FlowError("podium.template supports only '{}' and '{0}' fields")
        if fieldname == "":
            index, auto = auto, auto + 1
        elif fieldname.isdigit():
            index = int(fieldname)
        else:
            raise FlowError(f"podium.template: use positional fields, not {{{fieldname}}}")
        v = _expr(values[index])
        literal = v.value if isinstance(v, Const) else v
        parts.append(v if isinstance(v, Ref | Param | Secret) else str(literal))
    merged: list[Any] = []
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
    if isinstance(v, Ref | Param | Const | Template | Secret):
        return v
    if isinstance(v, _Each):
        raise FlowError("podium.each(...) must be passed directly as an argument")
    if isinstance(v, Mapping):
        return {k: _expr(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_expr(x) for x in v]
    return v


def _arg(v: Any) -> Any:
    e = _expr(v)
    return e if has_expr(e) else Const(e)


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
    workers = options.workers(s["workers"], issues)
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
        "workers": workers,
    }


def _check_settings(settings: Mapping[str, Any], what: str) -> None:
    unknown = [k for k in settings if k not in TASK_DEFAULTS]
    if unknown:
        from podium.load.schema import did_you_mean

        k = unknown[0]
        raise FlowError(f"{what}: unknown setting {k!r}{did_you_mean(k, TASK_DEFAULTS)}")


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
    "all_done"), description, workers (a gang: that many worker processes placed all or none
    and started together, with torch.distributed's ``RANK``, ``WORLD_SIZE``... set).
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
