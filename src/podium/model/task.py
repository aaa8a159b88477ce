"""Task specifications: what a task is, what it consumes, what it needs, how it is retried.

A ``TaskSpec`` is frozen plain data. Its inputs are expressions (``Ref`` to an upstream
result, ``Param`` for a run parameter, ``Const`` for a literal, ``Template`` for a string
interpolating those); its dependencies are exactly the tasks its expressions, ``when`` and
``after`` name. Python tasks are named ``"module:qualname"`` and resolved through the registry
at run time, so a spec never carries code.

Invariants: two specs built from the same description (Python decorators or YAML) compare
equal; ``deps`` is derived, never set by hand; a ``TaskCall`` is what crosses to an executor.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, NamedTuple

from podium.model.resources import Resources

KINDS = ("python", "http", "shell", "container", "service")
ISOLATIONS = ("thread", "process")
#: Kinds a gang-scheduled task (``workers`` > 1) may be: each worker is a process.
GANG_KINDS = ("python", "shell")
#: The most workers one gang-scheduled task may have.
MAX_WORKERS = 1024
#: When a task runs, given how its upstream tasks ended: all succeeded (default); none failed
#: (skipped upstreams allowed: joins after branches); at least one failed (failure handlers);
#: all finished whatever the outcome (clean-up).
TRIGGERS = ("all_success", "none_failed", "one_failed", "all_done")


@dataclass(frozen=True, slots=True)
class Ref:
    """The result of upstream task ``task``, optionally indexed by ``path`` (keys / indexes)."""

    task: str
    path: tuple[str | int, ...] = ()


@dataclass(frozen=True, slots=True)
class Param:
    """The value of run parameter ``name``."""

    name: str


@dataclass(frozen=True, slots=True)
class Const:
    """A literal JSON-like value."""

    value: Any


@dataclass(frozen=True, slots=True)
class Template:
    """A string made by concatenating literal parts and the ``str()`` of expressions."""

    parts: tuple[str | Ref | Param, ...]


Expr = Ref | Param | Const | Template


def freeze(value: Any) -> Any:
    """Deep-freeze a JSON-like structure: dicts become read-only mappings, lists tuples."""
    if isinstance(value, Mapping):
        return MappingProxyType({k: freeze(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return tuple(freeze(v) for v in value)
    return value


def walk_exprs(value: Any) -> Iterator[Expr]:
    """Every expression inside a (frozen) structure of mappings, tuples and expressions."""
    if isinstance(value, Ref | Param | Const):
        yield value
    elif isinstance(value, Template):
        yield value
        for p in value.parts:
            if not isinstance(p, str):
                yield p
    elif isinstance(value, Mapping):
        for v in value.values():
            yield from walk_exprs(v)
    elif isinstance(value, tuple):
        for v in value:
            yield from walk_exprs(v)


@dataclass(frozen=True, slots=True)
class When:
    """Run the task only if upstream ``task``'s result (at ``path``) equals ``equals``;
    otherwise the task is skipped. This is how a result-driven branch is written."""

    task: str
    equals: Any
    path: tuple[str | int, ...] = ()


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how soon a failed task is tried again.

    ``attempts`` counts every try (1 = no retry). The delay before try ``n`` (n >= 2) is
    ``min(max_delay, delay * backoff**(n-2))`` stretched by up to ``jitter`` (a fraction).
    ``retry_on`` lists the failure kinds that retry (see ``podium.errors.FAILURE_KINDS``).
    """

    attempts: int = 1
    delay: float = 1.0
    backoff: float = 2.0
    max_delay: float = 300.0
    jitter: float = 0.1
    retry_on: tuple[str, ...] = ("user", "worker_lost", "timeout", "oom", "gpu_oom", "corrupt")

    def delay_before(self, attempt: int, rng: random.Random) -> float:
        """Seconds to wait before ``attempt`` (2 = first retry). The rng is injected."""
        if attempt <= 1:
            return 0.0
        base = min(self.max_delay, self.delay * self.backoff ** (attempt - 2))
        return base * (1.0 + self.jitter * rng.random()) if self.jitter else base


@dataclass(frozen=True)
class TaskSpec:
    """One node of the DAG.

    ``args`` maps the callable's keyword arguments to expressions. ``config`` holds kind
    specific settings (http: method, url, json, headers; shell: argv, env, cwd; container:
    image, argv, env, workdir, network) which may contain expressions. ``map_over`` names an
    argument whose runtime value is a list: the task then runs once per item and its result is
    the list of item results. ``workers`` > 1 makes the task a gang: that many worker processes,
    each holding ``resources``, placed all or none and started together (``RANK``,
    ``WORLD_SIZE``...); its result is rank 0's and it is retried as one attempt.
    """

    name: str
    kind: str = "python"
    call: str | None = None
    args: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    config: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    resources: Resources = Resources()
    expected_duration: float | None = None
    retry: RetryPolicy = RetryPolicy()
    timeout: float | None = None
    cache: bool = False
    isolation: str = "thread"
    map_over: str | None = None
    when: When | None = None
    after: tuple[str, ...] = ()
    trigger: str = "all_success"
    description: str = ""
    workers: int = 1
    deps: tuple[str, ...] = field(init=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "args", freeze(self.args))
        object.__setattr__(self, "config", freeze(self.config))
        object.__setattr__(self, "after", tuple(self.after))
        seen: dict[str, None] = {}
        for e in (*walk_exprs(self.args), *walk_exprs(self.config)):
            if isinstance(e, Ref):
                seen[e.task] = None
        if self.when is not None:
            seen[self.when.task] = None
        for a in self.after:
            seen[a] = None
        object.__setattr__(self, "deps", tuple(seen))

    def params_used(self) -> tuple[str, ...]:
        names: dict[str, None] = {}
        for e in (*walk_exprs(self.args), *walk_exprs(self.config)):
            if isinstance(e, Param):
                names[e.name] = None
        return tuple(names)


class Grant(NamedTuple):
    """What one worker of an attempt holds: its node, its resources there, its GPUs (the
    device indices it sees as ``CUDA_VISIBLE_DEVICES``) and the memory it holds on a shared one."""

    node: str
    need: Mapping[str, float]
    gpus: tuple[int, ...] = ()
    gpu_memory: int = 0


class TaskCall(NamedTuple):
    """One attempt of one task instance, as handed to an executor.

    ``task_id`` is the instance id: the spec name, or ``name[i]`` for item ``i`` of a map.
    ``kwargs`` are the resolved argument values; ``config`` the resolved kind settings.
    ``resources`` may exceed the spec's (e.g. more memory after an out-of-memory retry).
    ``grants`` is empty for a task that holds no GPU and has one worker; otherwise one
    ``Grant`` per worker, in rank order (the first is on ``node``).
    """

    run_id: str
    task_id: str
    attempt: int
    spec: TaskSpec
    kwargs: Mapping[str, Any]
    config: Mapping[str, Any]
    resources: Resources
    node: str = "local"
    timeout: float | None = None
    grants: tuple[Grant, ...] = ()

    @property
    def gpus(self) -> tuple[int, ...]:
        """The GPUs this call (its first worker) holds on its node."""
        return self.grants[0].gpus if self.grants else ()
