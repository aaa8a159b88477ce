"""Routes for runs: list, read, follow live, start, cancel, resume.

Every read goes through ``podium.server.data``; every start, cancel and resume through the
server's ``Workers``. Invariants: a run is started only from a registered workflow with
parameters checked like ``-p``; the event stream resumes after ``Last-Event-ID`` (or
``?after=``) so a client that reconnects misses nothing.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route

from podium.errors import UsageError
from podium.model import states as st
from podium.server import data
from podium.server.stream import KEEPALIVE_COMMENT, RETRY, sse
from podium.server.web import JSON, blocking, check_query, json_object, query_int, query_str

RUN_STATUSES = (st.RUN_CREATED_STATE, st.RUN_RUNNING, st.RUN_SUCCEEDED, st.RUN_FAILED, st.RUN_CANCELLED)
MAX_PAGE = 500


def _server(request: Request) -> Any:
    return request.app.state.server


async def list_runs(request: Request) -> JSON:
    check_query(request, ("status", "workflow", "q", "limit", "offset"))
    status = query_str(request, "status", choices=RUN_STATUSES)
    workflow = query_str(request, "workflow")
    q = query_str(request, "q")
    limit = query_int(request, "limit", 50, 1, MAX_PAGE)
    offset = query_int(request, "offset", 0, 0, 10**9)
    srv = _server(request)
    items, total = await blocking(
        data.list_runs, srv.store, status=status, workflow=workflow, q=q, limit=limit, offset=offset
    )
    return JSON({"items": items, "total": total, "limit": limit, "offset": offset})


async def get_run(request: Request) -> JSON:
    check_query(request, ())
    srv = _server(request)
    run_id = request.path_params["run_id"]
    detail = await blocking(srv.run_detail, run_id)
    return JSON(detail)


async def get_task(request: Request) -> JSON:
    check_query(request, ())
    srv = _server(request)
    p = request.path_params
    return JSON(await blocking(data.task_detail, srv.store, p["run_id"], p["task_id"]))


async def list_events(request: Request) -> JSON:
    check_query(request, ("after", "limit"))
    after = query_int(request, "after", 0, 0, 2**62)
    limit = query_int(request, "limit", 1000, 1, 10_000)
    srv = _server(request)
    run_id = request.path_params["run_id"]
    events = await blocking(data.events_after, srv.store, run_id, after, limit)
    return JSON({"events": events, "last_seq": events[-1]["seq"] if events else after})


def _after(request: Request) -> int:
    """Where a stream starts: after ``Last-Event-ID`` (a browser reconnecting sends it, with the
    original URL), else after ``?after=``, else from the start."""
    after = query_int(request, "after", 0, 0, 2**62)
    header = request.headers.get("last-event-id", "").strip()
    if header:
        if not header.isdigit() or len(header) > 18:
            raise UsageError(f"Last-Event-ID must be an event sequence number, got {header[:40]!r}")
        return int(header)
    return after


async def stream_events(request: Request) -> StreamingResponse:
    check_query(request, ("after",))
    srv = _server(request)
    run_id = request.path_params["run_id"]
    after = _after(request)
    head = await blocking(data.last_seq, srv.store, run_id)  # 404 for an unknown run, before streaming

    async def body() -> Any:
        yield RETRY
        async for batch in srv.hub.subscribe(run_id, after, head):
            if await request.is_disconnected():
                return
            yield sse(batch, event="events", id=batch[-1]["seq"]) if batch else KEEPALIVE_COMMENT

    return StreamingResponse(body(), media_type="text/event-stream", headers={"x-accel-buffering": "no"})


async def get_logs(request: Request) -> JSON:
    check_query(request, ("task", "attempt", "offset", "limit", "tail"))
    task = query_str(request, "task", max_len=400)
    if task is None:
        raise UsageError("query parameter 'task' is required")
    attempt = query_int(request, "attempt", 0, 0, 10**6) or None
    offset = query_int(request, "offset", 0, 0, 2**40)
    limit = query_int(request, "limit", data.LOG_CHUNK, 0, data.LOG_CHUNK)
    tail = query_int(request, "tail", -1, 0, data.LOG_CHUNK)
    srv = _server(request)
    run_id = request.path_params["run_id"]
    await blocking(data.check_task, srv.store, run_id, task)
    out = await blocking(
        data.log_range, srv.store, run_id, task, attempt, offset, limit, tail if tail >= 0 else None
    )
    return JSON(out)


async def get_results(request: Request) -> JSON:
    check_query(request, ("offset", "limit"))
    offset = query_int(request, "offset", 0, 0, 10**9)
    limit = query_int(request, "limit", 50, 1, 200)
    srv = _server(request)
    items, total = await blocking(
        data.result_previews, srv.store, request.path_params["run_id"], offset, limit
    )
    return JSON({"items": items, "total": total, "offset": offset, "limit": limit})


async def submit_run(request: Request) -> JSON:
    check_query(request, ())
    body = await json_object(request, ("workflow", "params"), required=("workflow",))
    srv = _server(request)
    name = body["workflow"]
    if not isinstance(name, str):
        raise UsageError("field 'workflow' must be a string")
    run_id = await blocking(srv.submit, name, body.get("params"))
    summary = await blocking(data.run_summary, srv.store, run_id)
    return JSON(summary, status_code=201)


async def cancel_run(request: Request) -> JSON:
    check_query(request, ())
    await json_object(request, ())
    srv = _server(request)
    run_id = request.path_params["run_id"]
    await blocking(srv.workers.cancel, run_id)
    return JSON({"run_id": run_id, "cancel_requested": True}, status_code=202)


async def resume_run(request: Request) -> JSON:
    check_query(request, ())
    body = await json_object(request, ("from",))
    start = body.get("from")
    if start is not None and (not isinstance(start, str) or not start or len(start) > 400):
        raise UsageError("field 'from' must be a task id")
    srv = _server(request)
    run_id = request.path_params["run_id"]
    await blocking(srv.resume, run_id, start)
    return JSON({"run_id": run_id, "resumed": True}, status_code=202)


async def runs(request: Request) -> JSON:
    """``/api/runs``: one route for both methods, so a 405 lists both in ``Allow``."""
    return await (submit_run(request) if request.method == "POST" else list_runs(request))


async def stream_runs(request: Request) -> StreamingResponse:
    check_query(request, ())
    srv = _server(request)

    async def body() -> Any:
        yield RETRY
        async for batch in srv.watcher.subscribe():
            if await request.is_disconnected():
                return
            yield sse(batch, event="runs") if batch else KEEPALIVE_COMMENT

    return StreamingResponse(body(), media_type="text/event-stream", headers={"x-accel-buffering": "no"})


ROUTES = [
    Route("/api/runs", runs, methods=["GET", "POST"], name="runs"),
    Route("/api/runs/{run_id}", get_run, methods=["GET"], name="get_run"),
    Route("/api/runs/{run_id}/events", list_events, methods=["GET"], name="list_events"),
    Route("/api/runs/{run_id}/stream", stream_events, methods=["GET"], name="stream_events"),
    Route("/api/runs/{run_id}/tasks/{task_id}", get_task, methods=["GET"], name="get_task"),
    Route("/api/runs/{run_id}/logs", get_logs, methods=["GET"], name="get_logs"),
    Route("/api/runs/{run_id}/results", get_results, methods=["GET"], name="get_results"),
    Route("/api/runs/{run_id}/cancel", cancel_run, methods=["POST"], name="cancel_run"),
    Route("/api/runs/{run_id}/resume", resume_run, methods=["POST"], name="resume_run"),
    Route("/api/stream/runs", stream_runs, methods=["GET"], name="stream_runs"),
]
