"""Schemathesis fuzzes the server's OpenAPI document against a real server: at least 1,000
generated requests, none answered with a 5xx, every response as documented (status, content
type, headers, body schema) and every route refusing requests without credentials.

The server is configured to start no runs (``max_active_runs = 0``), so valid submissions and
resumes are fully validated and then refused with 429 instead of starting hundreds of runs; a
run started by the CLI is there to be found, read and cancelled. The event streams
are left out: a stream of a run that exists never ends by design (they are tested in
test_api.py).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import ServerProcess, kill_workers, make_project


@pytest.fixture(scope="module")
def busy_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = make_project(tmp_path_factory.mktemp("fuzz"), max_active=0)
    srv = ServerProcess(root)
    env = {k: v for k, v in os.environ.items() if k != "PODIUM_STORE"}
    cli = subprocess.Popen(
        [sys.executable, "-m", "podium", "run", "slow.yaml", "--store", srv.store, "--no-progress"],
        cwd=root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield srv
    finally:
        cli.kill()
        cli.wait()
        srv.stop()
        kill_workers(root)


@pytest.mark.timeout(400)
def test_no_request_gets_a_server_error(busy_server: ServerProcess, tmp_path: Path) -> None:
    st = Path(sys.executable).with_name("schemathesis")
    cmd = [
        str(st),
        "run",
        f"{busy_server.url}/api/openapi.json",
        "-H",
        f"Authorization: Bearer {busy_server.token}",
        "--checks",
        "not_a_server_error",
        "--phases",
        "coverage,fuzzing",
        "--max-examples",
        "60",
        "--exclude-path-regex",
        "stream",
        "--seed",
        "1",
        "--no-color",
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=240, cwd=tmp_path)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-4000:]
    m = re.search(r"(\d+) generated, (\d+) passed", out)
    assert m, out[-2000:]
    assert int(m.group(1)) >= 1000 and m.group(1) == m.group(2), out[-2000:]
    log = "".join(busy_server.output)
    assert "internal error" not in log
