"""The server: its parts wired together (``Server``) and the ASGI app over them (``build_app``).

``Server`` owns the store, the catalog of registered workflows, the server's own records, the
workers, the event hub, the run watcher, the notifier and the scheduler; ``build_app`` puts
the routes behind the ``Guard`` middleware and maps every exception to a status through one
table (``problems.status_for``). The background loops (workers, watcher, scheduler) start and
stop with the app's lifespan; at start the server adopts or resumes the runs its workers were
running when it last stopped. Invariants: a request never gets a traceback; a failing
background pass is logged and retried, never fatal to the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request

from podium.errors import PodiumError, Problem, SpecError
from podium.server import data
from podium.server.auth import Guard
from podium.server.config import ServerConfig
from podium.server.notifier import Notifier
from podium.server.openapi import document
from podium.server.problems import error_body, one_line, status_for
from podium.server.scheduler import Scheduler
from podium.server.state import ServerState
from podium.server.stream import EventHub
from podium.server.watch import RunWatcher
from podium.server.web import JSON
from podium.server.workers import Workers
from podium.server.workflows import Catalog, graph_of

log = logging.getLogger("podium.server")
WORKER_POLL = 0.5
SCHEDULER_TICK = 2.0


class Server:
    """Everything one ``podium server`` process holds."""

    def __init__(
        self,
        *,
        store_url: str,
        config: ServerConfig,
        state_dir: Path,
        host: str,
        port: int,
        token: str,
        store: Any = None,
    ) -> None:
        from podium.store import open_store

        self.store_url = store_url
        self.config = config
        self.host, self.port, self.token = host, port, token
        self.state_dir = state_dir
        self.catalog = Catalog.load(config)
        self._check_schedules()
        self.store = store if store is not None else open_store(store_url)
        self.state = ServerState(state_dir / "server.db")
        self.workers = Workers(
            self.store,
            store_url,
            self.state,
            self.catalog,
            log_dir=state_dir / "workers",
            cwd=config.base_dir,
            max_active=config.max_active_runs,
        )
        shown = f"[{host}]" if ":" in host else host
        self.notifier = Notifier(config.webhooks, self.state, base_url=f"http://{shown}:{port}")
        self.watcher = RunWatcher(self.store, on_finished=self.notifier.notify)
        self.hub = EventHub(lambda run_id, after, limit: data.events_after(self.store, run_id, after, limit))
        self.scheduler = Scheduler.of(self.catalog, self.state, self.submit)
        from podium import __version__

        self.version = __version__
        self.openapi = document(__version__, port)
        self.started_at = time.time()
        self.adopted: tuple[list[str], list[str]] = ([], [])
        self._capacity: dict[str, float] | None = None
        self._metrics: Any = None

    @property
    def metrics(self) -> Any:
        """The ``/metrics`` feed (made at the first scrape)."""
        if self._metrics is None:
            from podium.server.metricsfeed import StoreMetrics

            self._metrics = StoreMetrics(self.store, self.started_at)
        return self._metrics

    def _check_schedules(self) -> None:
        problems = []
        for reg in self.catalog.items.values():
            for s in reg.entry.schedules:
                try:
                    self.catalog.check_params(reg, s.params)
                except SpecError as e:
                    problems += [Problem(f"server.{s.where}.params", str(p)) for p in e.problems]
        if problems:
            raise SpecError(problems)

    # -- what the routes call (blocking; run in threads) ---------------------------------
    def submit(self, workflow: str, params: Any) -> str:
        reg = self.catalog.get(workflow)
        _resolved, pairs = self.catalog.check_params(reg, params)
        run_id = self.workers.launch(reg, pairs)
        self.workers.wait_created(run_id)
        return run_id

    def resume(self, run_id: str, from_task: str | None) -> None:
        self.workers.resume(run_id, from_task)

    def run_detail(self, run_id: str) -> dict[str, Any]:
        record = self.store.get_run(run_id) if isinstance(run_id, str) and 0 < len(run_id) <= 200 else None
        if record is None:
            from podium.errors import NotFoundError

            raise NotFoundError(f"run {run_id!r} not found")
        reg = self.catalog.for_run(record.source, record.workflow)
        out = data.run_detail(self.store, run_id, graph_of(reg.workflow) if reg is not None else None)
        for node in out["nodes"]:
            if node["name"] == "local" and not node["capacity"]:
                node["capacity"] = self.local_capacity()  # runs on "local" ran on this machine
        launch = self.state.launch(run_id)
        out["worker"] = (
            None
            if launch is None
            else {
                "pid": launch.pid,
                "exit_code": launch.exit_code,
                "restarts": launch.restarts,
                "note": launch.note,
            }
        )
        if reg is not None:
            from podium.server.planview import planned

            out["planned"] = planned(self.store, reg.workflow, out)
        return out

    def local_capacity(self) -> dict[str, float]:
        if self._capacity is None:
            from podium.executors.local import detect_node

            self._capacity = {k: float(v) for k, v in detect_node().capacity.as_dict().items()}
        return self._capacity

    def info(self) -> dict[str, Any]:
        from podium.store.codec import redact

        return {
            "version": self.version,
            "store": redact(self.store_url),
            "started_at": self.started_at,
            "workflows": sorted(self.catalog.items),
            "workers_active": self.workers.active(),
            "max_active_runs": self.config.max_active_runs,
            "adopted": self.adopted[0],
            "resumed_at_start": self.adopted[1],
            "webhooks": len(self.config.webhooks),
        }

    def close(self) -> None:
        self.notifier.stop()
        self.state.close()
        self.store.close()


async def _every(seconds: float, fn: Callable[[], Any], name: str) -> None:
    while True:
        try:
            await asyncio.to_thread(fn)
        except Exception:
            log.exception("background %s failed; trying again", name)
        await asyncio.sleep(seconds)


@contextlib.asynccontextmanager
async def _lifespan(app: Starlette) -> AsyncIterator[None]:
    srv: Server = app.state.server
    srv.adopted = await asyncio.to_thread(srv.workers.adopt)
    tasks = [
        asyncio.create_task(srv.watcher.run()),
        asyncio.create_task(_every(WORKER_POLL, srv.workers.poll, "worker check")),
        asyncio.create_task(_every(SCHEDULER_TICK, lambda: srv.scheduler.tick(time.time()), "scheduler")),
    ]
    try:
        yield
    finally:
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        await srv.hub.close()


async def _podium_error(request: Request, exc: Exception) -> JSON:
    return JSON(error_body(exc), status_code=status_for(exc))


async def _http_error(request: Request, exc: Exception) -> JSON:
    assert isinstance(exc, HTTPException)
    text = {404: f"no route {request.url.path[:200]!r}", 405: f"method {request.method} not allowed here"}
    return JSON(
        {"error": one_line(text.get(exc.status_code, str(exc.detail)))},
        status_code=exc.status_code,
        headers=exc.headers,
    )


async def _internal(request: Request, exc: Exception) -> JSON:
    log.error("internal error on %s %s: %s: %s", request.method, request.url.path, type(exc).__name__, exc)
    return JSON({"error": "internal error (see the server's log)"}, status_code=500)


def build_app(server: Server, allowed_hosts: set[str]) -> Starlette:
    from podium.server.routes import runs, site

    app = Starlette(
        routes=[*site.ROUTES, *runs.ROUTES],
        middleware=[
            Middleware(
                Guard,
                token=server.token,
                allowed_hosts=allowed_hosts,
                port=server.port,
                max_body=server.config.max_body,
            )
        ],
        exception_handlers={
            PodiumError: _podium_error,
            ValueError: _podium_error,  # JSON and text decoding errors of a body: 400
            HTTPException: _http_error,
            Exception: _internal,
        },
        lifespan=_lifespan,
    )
    app.state.server = server
    return app
