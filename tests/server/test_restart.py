"""A server killed with SIGKILL and started again adopts the workers still running and resumes
the runs whose worker died meanwhile; a run never depends on the server process staying up."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import psutil

from podium.runtime.owner import owner_pid

from .conftest import ServerProcess, kill_workers, make_project


def _running_task(srv: ServerProcess, run_id: str, attempt: int = 1) -> dict:
    deadline = time.monotonic() + 30
    while True:
        d = srv.get(f"/api/runs/{run_id}").json()
        owned = d["worker"] is not None and owner_pid(d["owner"]) == d["worker"]["pid"]  # its engine took it
        running = any(t["status"] == "running" and t["attempts"] >= attempt for t in d["tasks"])
        if owned and d["status"] == "running" and running:
            return d
        assert time.monotonic() < deadline, d
        time.sleep(0.1)


def test_restarted_server_adopts_live_workers_and_resumes_dead_ones(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p")
    servers: list[ServerProcess] = []

    def start() -> ServerProcess:
        servers.append(ServerProcess(root))
        return servers[-1]

    a = start()
    try:
        adopted_run = a.start_run("slow")
        worker = _running_task(a, adopted_run)["worker"]["pid"]
        a.stop(signal.SIGKILL)
        assert psutil.pid_exists(worker)  # the run goes on without the server

        b = start()
        info = b.get("/api/server").json()
        assert info["adopted"] == [adopted_run] and info["resumed_at_start"] == []
        assert b.post(f"/api/runs/{adopted_run}/cancel").status_code == 202  # it can still signal it
        b.wait_status(adopted_run, ("cancelled",), timeout=30)

        orphan = b.start_run("slow")
        dead = _running_task(b, orphan)["worker"]["pid"]
        b.stop(signal.SIGKILL)
        os.kill(dead, signal.SIGKILL)  # and its worker dies while no server watches

        c = start()
        info = c.get("/api/server").json()
        assert info["resumed_at_start"] == [orphan]
        d = _running_task(c, orphan, attempt=2)
        assert d["worker"]["pid"] != dead and d["worker"]["restarts"] == 1
        assert owner_pid(d["owner"]) == d["worker"]["pid"], "".join(c.output)
        assert [s[5] for s in d["spans"] if s[0] == "wait"] == ["interrupted", None], "".join(c.output)
        c.post(f"/api/runs/{orphan}/cancel")
        c.wait_status(orphan, ("cancelled",), timeout=30)
        c.stop()
    finally:
        for srv in servers:
            srv.stop()
        kill_workers(root)
