"""JSON Schemas of the API's bodies (the run read model, schema ``podium.run/1``), for the
OpenAPI document. Fields may be added to these shapes, never renamed or removed.
"""

from __future__ import annotations

NUM = {"type": ["number", "null"]}
STR = {"type": ["string", "null"]}
INT = {"type": ["integer", "null"]}
OBJ = {"type": "object"}
RUN_ID = {"type": "string", "minLength": 1, "maxLength": 200}
STATUS = ["created", "running", "succeeded", "failed", "cancelled"]
TASK_STATES = [
    "pending",
    "queued",
    "running",
    "retrying",
    "expanded",
    "succeeded",
    "failed",
    "skipped",
    "cancelled",
]

ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {"type": "string"},
        "problems": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"where": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}

ERR_SCHEMA = {
    "type": "object",
    "required": ["type", "message", "kind"],
    "properties": {
        "type": {"type": "string"},
        "message": {"type": "string"},
        "kind": {"type": "string"},
        "frame": STR,
        "traceback": {"type": "string"},
    },
}
USAGE = {
    "type": "object",
    "properties": {"cpu_time": NUM, "peak_memory": NUM, "wall_time": NUM, "source": STR},
}

RUN_SUMMARY = {
    "type": "object",
    "required": ["schema", "run_id", "workflow", "status", "params", "T", "R", "F", "counts", "tasks_total"],
    "properties": {
        "schema": {"const": "podium.run/1"},
        "run_id": {"type": "string"},
        "workflow": {"type": "string"},
        "status": {"enum": STATUS},
        "attention": STR,
        "params": OBJ,
        "created_at": NUM,
        "started_at": NUM,
        "finished_at": NUM,
        "updated_at": NUM,
        "wall_time": NUM,
        "T": {"type": "number"},
        "R": {"type": "number"},
        "F": {"type": "number"},
        "alpha": {"type": "number"},
        "beta": {"type": "number"},
        "counts": {"type": "object", "additionalProperties": {"type": "integer"}},
        "tasks_total": {"type": "integer"},
        "owner": {"type": "string"},
    },
}

TASK_ROW = {
    "type": "object",
    "required": ["task_id", "name", "status", "attempts"],
    "properties": {
        "task_id": {"type": "string"},
        "name": {"type": "string"},
        "map_index": INT,
        "status": {"enum": TASK_STATES},
        "attempts": {"type": "integer"},
        "node": STR,
        "queued_at": NUM,
        "started_at": NUM,
        "finished_at": NUM,
        "duration": NUM,
        "estimate": NUM,
        "resources": {"type": "object", "additionalProperties": {"type": "number"}},
        "usage": USAGE,
        "cached": {"type": "boolean"},
        "skip_reason": STR,
        "children": INT,
        "error": {"oneOf": [{"type": "null"}, ERR_SCHEMA]},
    },
}

PREVIEW = {
    "type": "object",
    "required": ["bytes"],
    "properties": {
        "bytes": {"type": "integer"},
        "encoding": {"type": "string"},
        "value": {},
        "truncated": {"type": "boolean"},
        "note": {"type": "string"},
    },
}

RUN_DETAIL = {
    "allOf": [{"$ref": "#/components/schemas/RunSummary"}],
    "type": "object",
    "required": ["tasks", "maps", "spans", "nodes", "last_seq"],
    "properties": {
        "plan": {"type": ["object", "null"]},
        "nodes": {"type": "array", "items": OBJ},
        "tasks": {"type": "array", "items": {"$ref": "#/components/schemas/TaskRow"}},
        "maps": {"type": "array", "items": OBJ},
        "spans": {"type": "array", "items": {"type": "array", "minItems": 6, "maxItems": 6}},
        "graph": {"type": ["array", "null"], "items": OBJ},
        "critical_path": {"type": "array", "items": {"type": "string"}},
        "planned": {"type": ["object", "null"]},
        "last_seq": {"type": "integer"},
        "worker": {"type": ["object", "null"]},
    },
}

TASK_DETAIL = {
    "allOf": [{"$ref": "#/components/schemas/TaskRow"}],
    "type": "object",
    "required": ["attempts_detail", "log_tail"],
    "properties": {
        "attempts_detail": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "attempt": {"type": "integer"},
                    "node": STR,
                    "started_at": NUM,
                    "finished_at": NUM,
                    "duration": NUM,
                    "outcome": STR,
                    "error": {"oneOf": [{"type": "null"}, ERR_SCHEMA]},
                    "resources": OBJ,
                    "usage": USAGE,
                    "log_bytes": {"type": "integer"},
                },
            },
        },
        "log_tail": {"type": "string"},
        "result": {"oneOf": [{"type": "null"}, PREVIEW]},
    },
}

EVENT = {
    "type": "object",
    "required": ["seq", "type", "attempt", "ts", "data"],
    "properties": {
        "seq": {"type": "integer"},
        "type": {"type": "string"},
        "task_id": STR,
        "attempt": {"type": "integer"},
        "ts": {"type": "number"},
        "data": OBJ,
    },
}

LOG = {
    "type": "object",
    "required": ["text", "offset", "next_offset", "size"],
    "properties": {
        "run_id": {"type": "string"},
        "task_id": {"type": "string"},
        "attempt": INT,
        "offset": {"type": "integer"},
        "next_offset": {"type": "integer"},
        "size": {"type": "integer"},
        "text": {"type": "string"},
        "available": {"type": "boolean"},
    },
}

PARAM = {
    "type": "object",
    "required": ["name", "type", "required"],
    "properties": {
        "name": {"type": "string"},
        "type": {"type": "string"},
        "required": {"type": "boolean"},
        "default": {},
        "description": {"type": "string"},
    },
}

WORKFLOW = {
    "type": "object",
    "required": ["name", "params", "tasks"],
    "properties": {
        "name": {"type": "string"},
        "description": {"type": "string"},
        "path": {"type": "string"},
        "params": {"type": "array", "items": PARAM},
        "tasks": {"type": "integer"},
        "schedules": {"type": "array", "items": OBJ},
        "graph": {"type": "array", "items": OBJ},
    },
}
