"""Podium: plan and run AI workflows to minimise alpha*T + beta*R.

The public API: declare tasks and flows with ``task``, ``flow``, ``each``, ``when``,
``http``, ``shell``, ``container``, ``service``, ``template`` and ``secret``; a task returns
``Artifact(path)`` to keep a file or folder it wrote as an artifact; inside a running task,
``context()`` tells which task it is and what it holds (node, GPUs, cpus, rank); the model
classes are re-exported for convenience. ``run``, ``open_run``, ``runs`` and ``RunResult`` run
and read runs from Python (``podium.api``, imported on first use).
Invariant: ``import podium`` stays light (no YAML parsing, no optional heavy dependencies, no
engine or store until a run is asked for).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from podium.errors import PodiumError, SpecError
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

if TYPE_CHECKING:
    from podium.api import RunResult, open_run, run, runs

__version__ = "0.1.0"
_API = frozenset({"RunResult", "open_run", "run", "runs"})


def __getattr__(name: str) -> Any:
    if name in _API:  # the run API pulls in the engine, executors and stores: only when used
        from podium import api

        return getattr(api, name)
    raise AttributeError(f"module 'podium' has no attribute {name!r}")


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
