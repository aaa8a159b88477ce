"""Podium: plan and run AI workflows to minimise alpha*T + beta*R.

The public API: declare tasks and flows with ``task``, ``flow``, ``each``, ``when``,
``http``, ``shell``, ``container``, ``service``, ``template`` and ``secret``; inside a running
task, ``context()`` tells which task it is and what it holds (node, GPUs, cpus, rank); the model
classes are re-exported for convenience.
Invariant: ``import podium`` stays light (no YAML parsing, no optional heavy dependencies).
"""

from __future__ import annotations

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
from podium.taskcontext import TaskContext, context

__version__ = "0.1.0"

__all__ = [
    "REQUIRED",
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
    "secret",
    "service",
    "shell",
    "task",
    "template",
    "when",
]
