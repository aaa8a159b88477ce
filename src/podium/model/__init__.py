"""The model layer: frozen plain data (tasks, workflows, resources, clusters, events, states)."""

from podium.model.cluster import Cluster, Node
from podium.model.events import Event, ResultRecord, RunRecord
from podium.model.resources import Resources, parse_duration, parse_size
from podium.model.task import Const, Param, Ref, RetryPolicy, TaskCall, TaskSpec, Template, When
from podium.model.workflow import REQUIRED, Objective, ParamSpec, Workflow

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
