"""The OpenAPI 3.1 document of the server's HTTP API, written by hand and checked by tests.

Shapes follow the run read model (schema ``podium.run/1``). Invariants: every route of the
app is described (a test compares this document with the router), every response a route can
give is listed with its schema, and every route except ``/healthz`` requires the bearer token
or the session cookie.
"""

from __future__ import annotations

from typing import Any

from podium.server.schemas import (
    ERROR,
    EVENT,
    LOG,
    OBJ,
    PREVIEW,
    RUN_DETAIL,
    RUN_ID,
    RUN_SUMMARY,
    STATUS,
    TASK_DETAIL,
    TASK_ROW,
    WORKFLOW,
)

STR = {"type": "string"}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    words = {
        400: "Bad request",
        401: "Not authenticated",
        403: "Forbidden",
        404: "Not found",
        409: "Conflict",
        413: "Body too large",
        422: "Invalid parameters",
        429: "Too many runs",
        503: "Store unavailable",
    }
    return {str(c): _json(_ref("Error"), words[c]) for c in (400, 401, *codes, 503)}


def _q(name: str, schema: dict[str, Any], description: str = "") -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


_RUN_PATH = {"name": "run_id", "in": "path", "required": True, "schema": RUN_ID}
_SSE = {"description": "Server-sent events", "content": {"text/event-stream": {"schema": {"type": "string"}}}}


def _body(schema: dict[str, Any], required: bool) -> dict[str, Any]:
    return {"required": required, "content": {"application/json": {"schema": schema}}}


def document(version: str, port: int = 8765) -> dict[str, Any]:
    page = {
        "type": "object",
        "required": ["items", "total", "limit", "offset"],
        "properties": {
            "items": {"type": "array", "items": _ref("RunSummary")},
            "total": {"type": "integer"},
            "limit": {"type": "integer"},
            "offset": {"type": "integer"},
        },
    }
    paths: dict[str, Any] = {
        "/healthz": {
            "get": {
                "operationId": "healthz",
                "summary": "Liveness (no credentials needed)",
                "security": [],
                "responses": {"200": _json({"type": "object"})},
            }
        },
        "/metrics": {
            "get": {
                "operationId": "metrics",
                "summary": "Prometheus metrics of the store's runs (text exposition format)",
                "responses": {
                    "200": {"description": "Metrics", "content": {"text/plain": {"schema": STR}}},
                    "401": {"description": "Not authenticated"},
                },
            }
        },
        "/": {
            "get": {
                "operationId": "ui",
                "summary": "The web UI",
                "responses": {
                    "200": {"description": "HTML", "content": {"text/html": {"schema": {"type": "string"}}}},
                    "401": {"description": "Not authenticated"},
                },
            }
        },
        "/static/{path}": {
            "get": {
                "operationId": "static",
                "summary": "The web UI's assets",
                "parameters": [
                    {
                        "name": "path",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "pattern": "^[a-z0-9_-]+\\.(js|css|svg)$"},
                    }
                ],
                "responses": {
                    "200": {"description": "An asset"},
                    "401": {"description": "Not authenticated"},
                    "404": {"description": "No such asset"},
                },
            }
        },
        "/api/openapi.json": {
            "get": {
                "operationId": "openapi",
                "summary": "This document",
                "responses": {"200": _json(OBJ), **_errors()},
            }
        },
        "/api/server": {
            "get": {
                "operationId": "server_info",
                "summary": "Server version, store and workers",
                "responses": {"200": _json(OBJ), **_errors()},
            }
        },
        "/api/runs": {
            "get": {
                "operationId": "list_runs",
                "summary": "Runs, newest first, filtered and paginated",
                "parameters": [
                    _q("status", {"enum": STATUS}),
                    _q("workflow", {"type": "string", "maxLength": 200}),
                    _q("q", {"type": "string", "maxLength": 200}, "text in the run id or workflow"),
                    _q("limit", {"type": "integer", "minimum": 1, "maximum": 500}),
                    _q("offset", {"type": "integer", "minimum": 0, "maximum": 10**9}),
                ],
                "responses": {"200": _json(page), **_errors()},
            },
            "post": {
                "operationId": "submit_run",
                "summary": "Start a run of a registered workflow",
                "requestBody": _body(
                    {
                        "type": "object",
                        "required": ["workflow"],
                        "additionalProperties": False,
                        "properties": {"workflow": {"type": "string"}, "params": OBJ},
                    },
                    True,
                ),
                "responses": {
                    "201": _json(_ref("RunSummary"), "Started"),
                    **_errors(404, 409, 413, 422, 429),
                },
            },
        },
        "/api/runs/{run_id}": {
            "get": {
                "operationId": "get_run",
                "summary": "A run with its tasks, spans and plan",
                "parameters": [_RUN_PATH],
                "responses": {"200": _json(_ref("RunDetail")), **_errors(404)},
            }
        },
        "/api/runs/{run_id}/events": {
            "get": {
                "operationId": "list_events",
                "summary": "A page of the run's events after a sequence number",
                "parameters": [
                    _RUN_PATH,
                    _q("after", {"type": "integer", "minimum": 0, "maximum": 2**62}),
                    _q("limit", {"type": "integer", "minimum": 1, "maximum": 10000}),
                ],
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["events", "last_seq"],
                            "properties": {
                                "events": {"type": "array", "items": _ref("Event")},
                                "last_seq": {"type": "integer"},
                            },
                        }
                    ),
                    **_errors(404),
                },
            }
        },
        "/api/runs/{run_id}/stream": {
            "get": {
                "operationId": "stream_events",
                "summary": "The run's events as server-sent events (event 'events', a JSON array)",
                "parameters": [
                    _RUN_PATH,
                    _q("after", {"type": "integer", "minimum": 0, "maximum": 2**62}),
                    {
                        "name": "Last-Event-ID",
                        "in": "header",
                        "required": False,
                        "schema": {"type": "string", "pattern": "^[0-9]{1,18}$"},
                    },
                ],
                "responses": {"200": _SSE, **_errors(404)},
            }
        },
        "/api/runs/{run_id}/tasks/{task_id}": {
            "get": {
                "operationId": "get_task",
                "summary": "A task: attempts, errors, log tail, result preview",
                "parameters": [
                    _RUN_PATH,
                    {
                        "name": "task_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "minLength": 1, "maxLength": 400},
                    },
                ],
                "responses": {"200": _json(_ref("TaskDetail")), **_errors(404)},
            }
        },
        "/api/runs/{run_id}/logs": {
            "get": {
                "operationId": "get_logs",
                "summary": "Captured output of a task attempt: a range or the tail",
                "parameters": [
                    _RUN_PATH,
                    {
                        "name": "task",
                        "in": "query",
                        "required": True,
                        "schema": {"type": "string", "minLength": 1, "maxLength": 400},
                    },
                    _q(
                        "attempt",
                        {"type": "integer", "minimum": 0, "maximum": 10**6},
                        "0 or absent: the last",
                    ),
                    _q("offset", {"type": "integer", "minimum": 0, "maximum": 2**40}),
                    _q("limit", {"type": "integer", "minimum": 0, "maximum": 262144}),
                    _q("tail", {"type": "integer", "minimum": 0, "maximum": 262144}),
                ],
                "responses": {"200": _json(_ref("Log")), **_errors(404)},
            }
        },
        "/api/runs/{run_id}/results": {
            "get": {
                "operationId": "get_results",
                "summary": "Previews of the run's committed results (size-capped, redacted)",
                "parameters": [
                    _RUN_PATH,
                    _q("offset", {"type": "integer", "minimum": 0, "maximum": 10**9}),
                    _q("limit", {"type": "integer", "minimum": 1, "maximum": 200}),
                ],
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["items", "total"],
                            "properties": {
                                "items": {
                                    "type": "array",
                                    "items": {
                                        "type": "object",
                                        "properties": {"task_id": {"type": "string"}, "preview": PREVIEW},
                                    },
                                },
                                "total": {"type": "integer"},
                                "offset": {"type": "integer"},
                                "limit": {"type": "integer"},
                            },
                        }
                    ),
                    **_errors(404),
                },
            }
        },
        "/api/runs/{run_id}/cancel": {
            "post": {
                "operationId": "cancel_run",
                "summary": "Ask the run to stop (it can be resumed)",
                "parameters": [_RUN_PATH],
                "requestBody": _body(
                    {"type": "object", "additionalProperties": False, "properties": {}}, False
                ),
                "responses": {"202": _json(OBJ, "Cancel requested"), **_errors(403, 404, 409, 413)},
            }
        },
        "/api/runs/{run_id}/resume": {
            "post": {
                "operationId": "resume_run",
                "summary": "Resume the run; with from: that task and everything downstream of it run again",
                "parameters": [_RUN_PATH],
                "requestBody": _body(
                    {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {"from": {"type": "string", "minLength": 1, "maxLength": 400}},
                    },
                    False,
                ),
                "responses": {"202": _json(OBJ, "Resumed"), **_errors(403, 404, 409, 413, 422, 429)},
            }
        },
        "/api/stream/runs": {
            "get": {
                "operationId": "stream_runs",
                "summary": "Changed run summaries as server-sent events (event 'runs')",
                "responses": {"200": _SSE, **_errors()},
            }
        },
        "/api/workflows": {
            "get": {
                "operationId": "list_workflows",
                "summary": "Registered workflows",
                "responses": {"200": _json({"type": "array", "items": _ref("Workflow")}), **_errors()},
            }
        },
        "/api/workflows/{name}": {
            "get": {
                "operationId": "get_workflow",
                "summary": "A registered workflow with its graph",
                "parameters": [
                    {
                        "name": "name",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "minLength": 1, "maxLength": 200},
                    }
                ],
                "responses": {"200": _json(_ref("Workflow")), **_errors(404)},
            }
        },
        "/api/schedules": {
            "get": {
                "operationId": "list_schedules",
                "summary": "Schedules with their next slot",
                "responses": {"200": _json({"type": "array", "items": OBJ}), **_errors()},
            }
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Podium server",
            "version": version,
            "description": "Watch and steer Podium runs. Every route except /healthz needs "
            "Authorization: Bearer TOKEN (or the session cookie the login URL sets).",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}, {"session": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "session": {"type": "apiKey", "in": "cookie", "name": f"podium_session_{port}"},
            },
            "schemas": {
                "Error": ERROR,
                "RunSummary": RUN_SUMMARY,
                "RunDetail": RUN_DETAIL,
                "TaskRow": TASK_ROW,
                "TaskDetail": TASK_DETAIL,
                "Event": EVENT,
                "Log": LOG,
                "Workflow": WORKFLOW,
            },
        },
    }
