"""The model layer: frozen plain data (tasks, workflows, resources, clusters, events, states).

Invariant: importing one model module (``podium.model.states``) does not import the others: the
names below are imported on first use.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from podium.model.cluster import Cluster, Node
    from podium.model.events import Event, ResultRecord, RunRecord
    from podium.model.resources import Resources, parse_duration, parse_size
    from podium.model.task import Const, Param, Ref, RetryPolicy, TaskCall, TaskSpec, Template, When
    from podium.model.workflow import REQUIRED, Objective, ParamSpec, Workflow

_WHERE = {
    **dict.fromkeys(("Cluster", "Node"), "cluster"),
    **dict.fromkeys(("Event", "ResultRecord", "RunRecord"), "events"),
    **dict.fromkeys(("Resources", "parse_duration", "parse_size"), "resources"),
    **dict.fromkeys(
        ("Const", "Param", "Ref", "RetryPolicy", "TaskCall", "TaskSpec", "Template", "When"), "task"
    ),
    **dict.fromkeys(("REQUIRED", "Objective", "ParamSpec", "Workflow"), "workflow"),
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'podium.model' has no attribute {name!r}")
    value = getattr(import_module(f"podium.model.{module}"), name)
    globals()[name] = value
    return value


__all__ = [
    "REQUIRED",
    "Cluster",
    "Const",
    "Event",
    "Node",
    "Objective",
    "Param",
    "ParamSpec",
    "Ref",
    "Resources",
    "ResultRecord",
    "RetryPolicy",
    "RunRecord",
    "TaskCall",
    "TaskSpec",
    "Template",
    "When",
    "Workflow",
    "parse_duration",
    "parse_size",
]
