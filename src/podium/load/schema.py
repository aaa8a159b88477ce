"""The vocabulary of the YAML/JSON spec format and its JSON Schema.

This module is the single place that says which keys a spec, a task of each kind, a
parameter, a retry policy and an objective may have; the spec loader checks against these
sets (with did-you-mean suggestions) and ``podium schema`` prints ``json_schema()``.
Invariants: every key the loader accepts is listed here, and every example spec validates
against the schema (a test checks both).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

from podium.errors import FAILURE_KINDS
from podium.model.container import NETWORKS
from podium.model.task import GANG_KINDS, ISOLATIONS, KINDS, MAX_WORKERS, TRIGGERS
from podium.model.workflow import PARAM_TYPES

TOP_KEYS = ("name", "description", "objective", "fail_fast", "params", "secrets", "tasks")
OBJECTIVE_KEYS = ("alpha", "beta", "deadline", "budget")
PARAM_KEYS = ("type", "default", "description")
RETRY_KEYS = ("attempts", "delay", "backoff", "max_delay", "jitter", "on")
WHEN_KEYS = ("task", "ref", "equals", "path")
COMMON_TASK_KEYS = (
    "kind",
    "description",
    "resources",
    "retries",
    "timeout",
    "cache",
    "expected_duration",
    "isolation",
    "when",
    "after",
    "trigger",
)
KIND_KEYS: dict[str, tuple[str, ...]] = {
    "python": ("call", "args", "map", "workers"),
    "http": ("method", "url", "json", "body", "headers"),
    "shell": ("argv", "env", "cwd", "workers"),
    "container": ("image", "argv", "env", "workdir", "network", "inputs", "map"),
    "service": ("argv", "env", "cwd", "ready", "image"),
}
ALL_TASK_KEYS = tuple(dict.fromkeys((*COMMON_TASK_KEYS, *(k for ks in KIND_KEYS.values() for k in ks))))
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD")


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'timeout'?)`` or an empty string."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


_DURATION = {
    "description": "seconds, or a duration like '500ms', '30s', '10m', '1h30m'",
    "oneOf": [
        {"type": "number", "minimum": 0},
        {"type": "string", "pattern": r"^\s*([0-9]+(\.[0-9]+)?(ms|s|m|h|d)?\s*)+$"},
    ],
}
_SIZE = {
    "description": "bytes, or a size like '512MiB', '2GB'",
    "oneOf": [
        {"type": "number", "minimum": 0},
        {"type": "string", "pattern": r"^\s*[0-9]+(\.[0-9]+)?\s*[a-zA-Z]*\s*$"},
    ],
}
_NAMES = {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}


def _task_schema(kind: str) -> dict[str, Any]:
    props: dict[str, Any] = {
        "kind": {"const": kind} if kind != "python" else {"enum": ["python"]},
        "description": {"type": "string"},
        "resources": {
            "type": "object",
            "description": "cpu, memory, gpu (a share below 1 or whole GPUs), gpu_memory (per GPU);"
            " any other key is a custom resource amount",
            "properties": {
                "cpu": {"type": "number", "minimum": 0},
                "memory": _SIZE,
                "gpu": {"type": "number", "minimum": 0},
                "gpu_memory": _SIZE,
            },
            "additionalProperties": {"type": "number", "minimum": 0},
        },
        "retries": {
            "oneOf": [
                {"type": "integer", "minimum": 0, "description": "extra attempts after the first"},
                {
                    "type": "object",
                    "properties": {
                        "attempts": {"type": "integer", "minimum": 1},
                        "delay": _DURATION,
                        "backoff": {"type": "number", "minimum": 1},
                        "max_delay": _DURATION,
                        "jitter": {"type": "number", "minimum": 0},
                        "on": {"type": "array", "items": {"enum": list(FAILURE_KINDS)}},
                    },
                    "additionalProperties": False,
                },
            ]
        },
        "timeout": _DURATION,
        "cache": {"type": "boolean"},
        "expected_duration": _DURATION,
        "isolation": {"enum": list(ISOLATIONS)},
        "when": {
            "type": "object",
            "properties": {
                "task": {"type": "string"},
                "ref": {"type": "string", "pattern": r"^\$\{.+\}$"},
                "equals": {},
                "path": {"type": "array", "items": {"type": ["string", "integer"]}},
            },
            "required": ["equals"],
            "oneOf": [{"required": ["task"]}, {"required": ["ref"]}],
            "additionalProperties": False,
        },
        "after": _NAMES,
        "trigger": {"enum": list(TRIGGERS)},
    }
    required: list[str] = []
    if kind in GANG_KINDS:
        props["workers"] = {
            "type": "integer",
            "minimum": 1,
            "maximum": MAX_WORKERS,
            "description": "gang-scheduled workers, placed all or none and started together",
        }
    if kind == "python":
        props["call"] = {"type": "string", "pattern": r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$"}
        props["args"] = {"type": "object", "description": "keyword arguments; strings may hold ${...}"}
        props["map"] = {"type": "string", "description": "the argument whose list value is fanned out"}
        required = ["call"]
    elif kind == "http":
        props["method"] = {"type": "string"}
        props["url"] = {"type": "string"}
        props["json"] = {}
        props["body"] = {"type": "string"}
        props["headers"] = {"type": "object", "additionalProperties": {"type": "string"}}
        required = ["url"]
    elif kind == "container":
        props.update(_container_props())
        required = ["image"]
    else:
        props["argv"] = {"type": "array", "minItems": 1, "items": {"type": ["string", "number"]}}
        props["env"] = {"type": "object", "additionalProperties": {"type": ["string", "number"]}}
        props["cwd"] = {"type": "string"}
        required = ["argv"]
        if kind == "service":
            required = ["kind"]  # only an explicit kind: service makes one; argv or image
            props["image"] = {"type": "string", "description": "run the service as this (allowed) image"}
            props["ready"] = {
                "type": "object",
                "description": "readiness probe: GET http://127.0.0.1:$PORT + path until 2xx",
                "properties": {"path": {"type": "string", "pattern": "^/"}, "timeout": _DURATION},
                "additionalProperties": False,
            }
    return {
        "title": f"{kind} task",
        "type": "object",
        "properties": props,
        "required": required,
        "additionalProperties": False,
    }


def _container_props() -> dict[str, Any]:
    return {
        "image": {"type": "string", "description": "an image allowed by allow_images / --allow-image"},
        "argv": {"type": "array", "items": {"type": ["string", "number"]}},
        "env": {
            "type": "object",
            "propertyNames": {"pattern": r"^[A-Za-z_][A-Za-z0-9_]*$"},
            "additionalProperties": {"type": ["string", "number", "boolean"]},
        },
        "workdir": {"type": "string", "pattern": "^/"},
        "network": {"enum": list(NETWORKS)},
        "inputs": {
            "type": "object",
            "description": "each input NAME is written to /podium/in/NAME.json; strings may hold ${...}",
            "propertyNames": {"pattern": r"^[A-Za-z_][A-Za-z0-9_-]*$"},
        },
        "map": {"type": "string", "description": "the input whose list value is fanned out"},
    }


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a Podium spec document."""
    param = {
        "oneOf": [
            {"enum": list(PARAM_TYPES), "description": "shorthand: a required parameter of this type"},
            {
                "type": "object",
                "properties": {
                    "type": {"enum": list(PARAM_TYPES)},
                    "default": {},
                    "description": {"type": "string"},
                },
                "additionalProperties": False,
            },
        ]
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://podium.dev/schema/spec.json",
        "title": "Podium workflow spec",
        "type": "object",
        "properties": {
            "name": {"type": "string", "minLength": 1},
            "description": {"type": "string"},
            "objective": {
                "type": "object",
                "properties": {
                    "alpha": {"type": "number", "minimum": 0},
                    "beta": {"type": "number", "minimum": 0},
                    "deadline": _DURATION,
                    "budget": {"type": "number", "minimum": 0},
                },
                "additionalProperties": False,
            },
            "fail_fast": {"type": "boolean"},
            "params": {"type": "object", "additionalProperties": param},
            "secrets": {
                "type": "object",
                "description": "secrets the spec uses as ${secrets.NAME}: {env: VARIABLE} or {file: PATH}",
                "propertyNames": {"pattern": r"^[A-Za-z_][A-Za-z0-9_\-]*$"},
                "additionalProperties": {
                    "oneOf": [
                        {"type": "object", "properties": {"env": {"type": "string"}}, "required": ["env"]},
                        {"type": "object", "properties": {"file": {"type": "string"}}, "required": ["file"]},
                    ],
                    "additionalProperties": False,
                },
            },
            "tasks": {
                "type": "object",
                "minProperties": 1,
                "propertyNames": {"pattern": r"^[^\[\]${}]+$"},
                "additionalProperties": {"oneOf": [_task_schema(k) for k in KINDS]},
            },
        },
        "required": ["tasks"],
        "additionalProperties": False,
    }
