"""Podium: plan and run AI workflows to minimise alpha*T + beta*R.

The public API: declare tasks and flows with ``task``, ``flow``, ``each``, ``when``,
``http``, ``shell``, ``container``, ``service``, ``template`` and ``secret``; a task returns
``Artifact(path)`` to keep a file or folder it wrote as an artifact; inside a running task,
``context()`` tells which task it is and what it holds (node, GPUs, cpus, rank); the model
classes are re-exported for convenience. ``run``, ``open_run``, ``runs`` and ``RunResult`` run
and read runs from Python (``podium.api``).
Invariant: ``import podium`` stays light: every public name is imported on first use (no loader,
engine or store until one is asked for); ``__all__`` and ``_WHERE`` name the same things.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from podium.errors import PodiumError, SpecError

if TYPE_CHECKING:
    from podium.api import RunResult, open_run, run, runs
    from podium.load.containers import container
    from podium.load.declare import http, service, shell
    from podium.load.flow import Flow, flow
    from podium.load.python import Handle, Task, each, secret, task, template, when
    from podium.model import (
        REQUIRED,
        Cluster,
        Const,
        Node,
        Objective,
        Param,
        ParamSpec,
        Ref,
        Resources,
        RetryPolicy,
        TaskSpec,
        Template,
        When,
        Workflow,
    )
    from podium.model.artifact import Artifact
    from podium.taskcontext import TaskContext, context

__version__ = "0.1.0"
#: Where each public name lives: imported on first use, so that ``import podium`` (and every
#: ``podium`` command, which starts with it) pays only for what it uses.
_WHERE = {
    **dict.fromkeys(("RunResult", "open_run", "run", "runs"), "podium.api"),
    "container": "podium.load.containers",
    **dict.fromkeys(("http", "service", "shell"), "podium.load.declare"),
    **dict.fromkeys(("Flow", "flow"), "podium.load.flow"),
    **dict.fromkeys(("Handle", "Task", "each", "secret", "task", "template", "when"), "podium.load.python"),
    **dict.fromkeys(
        (
            "REQUIRED",
            "Cluster",
            "Const",
            "Node",
            "Objective",
            "Param",
            "ParamSpec",
            "Ref",
            "Resources",
            "RetryPolicy",
            "TaskSpec",
            "Template",
            "When",
            "Workflow",
        ),
        "podium.model",
    ),
    "Artifact": "podium.model.artifact",
    **dict.fromkeys(("TaskContext", "context"), "podium.taskcontext"),
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'podium' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value  # found once: later lookups do not come here
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_WHERE})


__all__ = [
    "REQUIRED",
    "Artifact",
    "Cluster",
    "Const",
    "Flow",
    "Handle",
    "Node",
    "Objective",
    "Param",
    "ParamSpec",
    "PodiumError",
    "Ref",
    "Resources",
    "RetryPolicy",
    "RunResult",
    "SpecError",
    "Task",
    "TaskContext",
    "TaskSpec",
    "Template",
    "When",
    "Workflow",
    "container",
    "context",
    "each",
    "flow",
    "http",
    "open_run",
    "run",
    "runs",
    "secret",
    "service",
    "shell",
    "task",
    "template",
    "when",
]
