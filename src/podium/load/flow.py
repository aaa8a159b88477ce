"""``@podium.flow``: a function that describes a workflow, built into a validated ``Workflow``.

``Flow.build()`` runs the function once with ``Param`` placeholders for its parameters while
``podium.load.python`` records the tasks it calls (a flow build), then validates the result.

Invariants: building never runs task code; every problem found while building is collected
and raised once, as one ``SpecError``, together with what ``Workflow.build`` finds; a flow's
parameters come from its signature (annotations or defaults; no default means required).
"""

from __future__ import annotations

import functools
import inspect
import traceback
import typing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from podium.errors import Problem, SpecError
from podium.load import options
from podium.load.python import _BUILD, FlowError, _Build
from podium.model.cluster import Node, unplaceable_tasks
from podium.model.task import Param
from podium.model.workflow import REQUIRED, Objective, ParamSpec, Workflow

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

    def build(self, nodes: Sequence[Node] | None = None) -> Workflow:
        """Run the flow function with parameter placeholders and validate what it declared;
        with ``nodes``, a task no node can ever hold is one more of the problems reported."""
        problems: list[Problem] = []
        params = self._params(problems)
        objective = self._objective(problems)
        state = _Build(self.name)
        token = _BUILD.set(state)
        try:
            self.fn(**{p.name: Param(p.name) for p in params})
        except FlowError as e:  # a misuse of the API: say where in the user's code
            state.problems.append(Problem(f"flow {self.name}", f"{e}{_user_frame(e)}"))
        except SpecError as e:
            state.problems += e.problems
        except Exception as e:
            state.problems.append(Problem(f"flow {self.name}", f"{type(e).__name__}: {e}{_user_frame(e)}"))
        finally:
            _BUILD.reset(token)
        problems += state.problems
        if nodes is not None:
            problems += unplaceable_tasks(state.tasks, nodes)
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
