"""The Workflow: a frozen, validated DAG of TaskSpecs with typed parameters and an objective.

Build one with ``Workflow.build(...)``, which checks everything and raises one ``SpecError``
listing every problem (unknown references, cycles with their path, bad parameters, bad map
or branch settings). Invariants: a built Workflow is acyclic, every reference resolves, and
every parameter a task uses is declared; two workflows built from the same description are
equal (``==``), whichever front end (Python or YAML) built them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType
from typing import Any

from podium.errors import InvalidValueError, Problem, SpecError
from podium.model import graph
from podium.model.container import container_problems
from podium.model.devices import request_problem
from podium.model.task import GANG_KINDS, ISOLATIONS, KINDS, TRIGGERS, Const, Param, Ref, TaskSpec, walk_exprs

PARAM_TYPES: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "int": (int,),
    "float": (int, float),
    "bool": (bool,),
    "list": (list, tuple),
    "dict": (dict, Mapping),
    "any": (object,),
}


class _Missing:
    def __repr__(self) -> str:
        return "REQUIRED"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Missing)

    def __hash__(self) -> int:
        return 0


REQUIRED: Any = _Missing()


@dataclass(frozen=True, slots=True)
class ParamSpec:
    """A typed run parameter; ``default`` is ``REQUIRED`` when the run must supply it."""

    name: str
    type: str = "any"
    default: Any = REQUIRED
    description: str = ""

    def check(self, value: Any) -> Any:
        """Coerce a value (strings from the command line included) or raise ``InvalidValueError``."""
        t = self.type
        if isinstance(value, str) and t in ("int", "float", "bool"):
            value = _from_text(value, t)
        if t in ("int", "float") and isinstance(value, bool):
            raise InvalidValueError(f"expected {t}, got a boolean")
        if not isinstance(value, PARAM_TYPES[t]):
            raise InvalidValueError(f"expected {t}, got {type(value).__name__} {value!r}")
        # a float is an int or a float by now; the isinstance says so to the type checker
        return float(value) if t == "float" and isinstance(value, int | float) else value


def _from_text(text: str, t: str) -> Any:
    try:
        if t == "int":
            return int(text)
        if t == "float":
            return float(text)
    except ValueError:
        raise InvalidValueError(f"expected {t}, got {text!r}") from None
    low = text.strip().lower()
    if low in ("true", "yes", "1", "on"):
        return True
    if low in ("false", "no", "0", "off"):
        return False
    raise InvalidValueError(f"expected bool (true/false), got {text!r}")


@dataclass(frozen=True, slots=True)
class Objective:
    """What a run minimises: ``alpha*T + beta*R``, or R under a deadline, or T under a budget."""

    alpha: float = 1.0
    beta: float = 0.0
    deadline: float | None = None
    budget: float | None = None


@dataclass(frozen=True, slots=True)
class Graph:
    """The shape of a workflow's DAG: each task's deps, its dependents, a topological order.
    Treat the containers as read-only."""

    deps: dict[str, tuple[str, ...]]
    down: dict[str, list[str]]
    order: list[str]


@dataclass(frozen=True)
class Workflow:
    """A validated DAG. ``tasks`` keeps declaration order."""

    name: str
    tasks: Mapping[str, TaskSpec]
    params: Mapping[str, ParamSpec] = field(default_factory=lambda: MappingProxyType({}))
    objective: Objective = Objective()
    fail_fast: bool = True
    description: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "tasks", MappingProxyType(dict(self.tasks)))
        object.__setattr__(self, "params", MappingProxyType(dict(self.params)))

    @classmethod
    def build(
        cls,
        name: str,
        tasks: Iterable[TaskSpec],
        params: Iterable[ParamSpec] = (),
        objective: Objective = Objective(),
        fail_fast: bool = True,
        description: str = "",
        source: str | None = None,
    ) -> Workflow:
        """Validate and freeze. Raises ``SpecError`` listing every problem found."""
        problems: list[Problem] = []
        by_name: dict[str, TaskSpec] = {}
        for t in tasks:
            if t.name in by_name:
                problems.append(Problem(f"tasks.{t.name}", "duplicate task name"))
            by_name[t.name] = t
        pmap: dict[str, ParamSpec] = {}
        for p in params:
            if p.name in pmap:
                problems.append(Problem(f"params.{p.name}", "duplicate parameter name"))
            pmap[p.name] = p
        wf = cls(name, by_name, pmap, objective, fail_fast, description)
        problems += validate(wf)
        if problems:
            raise SpecError(problems, source)
        return wf

    def deps(self) -> dict[str, tuple[str, ...]]:
        return {n: t.deps for n, t in self.tasks.items()}

    def order(self) -> list[str]:
        return self.graph.order

    @cached_property
    def graph(self) -> Graph:
        """Dependencies, dependents and a topological order, computed once per workflow (a
        built Workflow is acyclic; this raises ``ValueError`` on an unvalidated cyclic one)."""
        deps = self.deps()
        return Graph(deps, graph.dependents(deps), graph.topological_order(deps))

    def resolve_params(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """Check ``given`` against the declared parameters, fill defaults. ``SpecError`` lists
        unknown, missing and mistyped parameters together."""
        problems: list[Problem] = []
        out: dict[str, Any] = {}
        for k in given:
            if k not in self.params:
                known = ", ".join(self.params) or "none"
                problems.append(Problem(f"param {k}", f"unknown parameter (declared: {known})"))
        for name, spec in self.params.items():
            if name in given:
                try:
                    out[name] = spec.check(given[name])
                except ValueError as e:
                    problems.append(Problem(f"param {name}", str(e)))
            elif spec.default is REQUIRED:
                problems.append(Problem(f"param {name}", "required parameter not given (-p NAME=VALUE)"))
            else:
                out[name] = spec.default
        if problems:
            raise SpecError(problems)
        return out


def validate(wf: Workflow) -> list[Problem]:
    """Every problem with a workflow's graph and settings (not its fit on a cluster)."""
    problems: list[Problem] = []
    names = set(wf.tasks)
    if not wf.name or not isinstance(wf.name, str):
        problems.append(Problem("name", "workflow needs a non-empty name"))
    if not wf.tasks:
        problems.append(Problem("tasks", "workflow has no tasks"))
    for pname, p in wf.params.items():
        if p.type not in PARAM_TYPES:
            problems.append(
                Problem(f"params.{pname}.type", f"unknown type {p.type!r} (use {', '.join(PARAM_TYPES)})")
            )
        elif p.default is not REQUIRED:
            try:
                p.check(p.default)
            except ValueError as err:
                problems.append(Problem(f"params.{pname}.default", str(err)))
    for n, t in wf.tasks.items():
        where = f"tasks.{n}"
        if not n or any(c in n for c in "[]${}") or n.startswith("params"):
            problems.append(
                Problem(where, "task names may not be empty, contain []${} or start with 'params'")
            )
        if t.kind not in KINDS:
            problems.append(Problem(f"{where}.kind", f"unknown kind {t.kind!r} (use {', '.join(KINDS)})"))
        if t.kind == "python" and not t.call:
            problems.append(Problem(f"{where}.call", "python task needs call: 'module:function'"))
        if t.kind == "python" and t.call and ":" not in t.call:
            problems.append(Problem(f"{where}.call", f"expected 'module:function', got {t.call!r}"))
        if t.kind == "http" and "url" not in t.config:
            problems.append(Problem(f"{where}.url", "http task needs a url"))
        if t.kind == "shell" or (t.kind == "service" and "image" not in t.config):
            argv = t.config.get("argv")
            if not isinstance(argv, tuple) or not argv:
                problems.append(Problem(f"{where}.argv", f"{t.kind} task needs argv: a non-empty list"))
        if t.kind == "container":
            problems += [Problem(f"{where}.{k}", m) for k, m in container_problems(t)]
        if t.isolation not in ISOLATIONS:
            problems.append(Problem(f"{where}.isolation", f"use one of {', '.join(ISOLATIONS)}"))
        if t.workers != 1 and t.kind not in GANG_KINDS:
            problems.append(Problem(f"{where}.workers", f"a {t.kind} task has one worker (workers: 1)"))
        if (gpu_problem := request_problem(t.resources.gpu)) is not None:
            problems.append(Problem(f"{where}.resources.gpu", gpu_problem))
        if t.trigger not in TRIGGERS:
            problems.append(Problem(f"{where}.trigger", f"use one of {', '.join(TRIGGERS)}"))
        if t.retry.attempts < 1:
            problems.append(Problem(f"{where}.retries", "attempts must be at least 1"))
        if t.timeout is not None and t.timeout <= 0:
            problems.append(Problem(f"{where}.timeout", "timeout must be positive"))
        if t.expected_duration is not None and t.expected_duration < 0:
            problems.append(Problem(f"{where}.expected_duration", "must not be negative"))
        if t.map_over is not None and t.map_over not in t.args:
            problems.append(Problem(f"{where}.map", f"map_over names {t.map_over!r}, not an argument"))
        for e in (*walk_exprs(t.args), *walk_exprs(t.config)):
            if isinstance(e, Ref) and e.task not in names:
                problems.append(Problem(f"{where}", f"refers to unknown task {e.task!r}"))
            elif isinstance(e, Ref) and e.task == n:
                problems.append(Problem(f"{where}", "refers to its own result"))
            elif isinstance(e, Param) and e.name not in wf.params:
                problems.append(Problem(f"{where}", f"uses undeclared parameter {e.name!r}"))
            elif isinstance(e, Const):
                pass
        for a in t.after:
            if a not in names:
                problems.append(Problem(f"{where}.after", f"unknown task {a!r}"))
        if t.when is not None and t.when.task not in names:
            problems.append(Problem(f"{where}.when", f"unknown task {t.when.task!r}"))
    cycle = graph.find_cycle(wf.deps())
    if cycle:
        problems.append(Problem("tasks", "dependency cycle: " + " -> ".join(cycle)))
    o = wf.objective
    if o.alpha < 0 or o.beta < 0 or (o.alpha == 0 and o.beta == 0):
        problems.append(Problem("objective", "alpha and beta must be >= 0 and not both 0"))
    if o.deadline is not None and o.budget is not None:
        problems.append(Problem("objective", "give a deadline or a budget, not both"))
    return problems
