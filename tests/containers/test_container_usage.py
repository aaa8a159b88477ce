"""What a container attempt used, measured from its cgroup with a real Podman: its peak memory
and CPU time reach the run's events, ``podium show --json`` and ``podium report`` as a process
task's do, and no cgroup is left behind."""

from __future__ import annotations

import glob
import json
import os
import re
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest
from container_helpers import IMAGE, container_call, sh

from podium.executors import container_usage
from podium.executors.container import run
from podium.executors.container_runtime import Runtime
from podium.model.usage import attempt_usage, usage_record

pytestmark = pytest.mark.usefixtures("podman")

#: Fills a 64 MiB buffer (dd reads into it), then hashes 100 MB of zeros (CPU work).
WORK = "dd if=/dev/zero of=/dev/null bs=64M count=1 2>/dev/null && head -c 100000000 /dev/zero | md5sum"
MIB = 1 << 20


def _metered(rt: Runtime) -> None:
    if container_usage.meter(rt, "probe") is None:
        pytest.skip("this Podman cannot be metered (not root, or not the cgroupfs cgroup manager)")


def _leftover_cgroups(name: str) -> list[str]:
    return glob.glob(f"{container_usage.CGROUP_ROOT}/**/{container_usage.PARENT}/{name}", recursive=True)


def test_an_attempt_reports_the_peak_memory_and_cpu_of_its_container(podman: Runtime) -> None:
    _metered(podman)
    told: list[dict[str, object]] = []
    done = run(container_call(sh(WORK), memory="256MiB"), on_usage=told.append)
    assert done.exit_code == 0
    [meta] = told
    assert meta["measured"] == "container"
    assert isinstance(meta["peak_rss"], int) and meta["peak_rss"] >= 64 * MIB
    assert isinstance(meta["cpu_time"], float) and meta["cpu_time"] >= 0.3
    assert isinstance(meta["seconds"], float) and meta["seconds"] > 0
    usage = attempt_usage({"usage": usage_record(meta)})
    assert usage is not None and usage.source == "container"
    assert _leftover_cgroups(done.container) == []


def test_a_failed_attempt_is_measured_too(podman: Runtime) -> None:
    _metered(podman)
    told: list[dict[str, object]] = []
    with pytest.raises(Exception, match="exited with code 3"):
        run(container_call(sh("dd if=/dev/zero of=/dev/null bs=64M count=1 && exit 3")), on_usage=told.append)
    [meta] = told
    assert isinstance(meta["peak_rss"], int) and meta["peak_rss"] >= 64 * MIB


def test_an_unmetered_runtime_reports_nothing(podman: Runtime) -> None:
    docker = Runtime("docker", "/nonexistent/docker")
    assert container_usage.meter(docker, "x") is None  # never a guessed 0


SPEC = textwrap.dedent(
    f"""
    name: usagebox
    tasks:
      work:
        kind: container
        image: {IMAGE}
        resources: {{memory: 256MiB}}
        argv: [/bin/sh, -c, '{WORK}']
    """
)


def test_usage_reaches_show_json_and_the_report(tmp_path: Path, podman: Runtime) -> None:
    _metered(podman)
    (tmp_path / "box.yaml").write_text(SPEC)
    cmd = [sys.executable, "-m", "podium"]
    ran = subprocess.run(
        [*cmd, "run", "box.yaml", "--run-id", "use1", "--allow-image", IMAGE, "--no-progress"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ran.returncode == 0, ran.stderr
    shown = subprocess.run(
        [*cmd, "show", "use1", "--json"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert shown.returncode == 0, shown.stderr
    [task] = [t for t in json.loads(shown.stdout)["tasks"] if t["name"] == "work"]
    usage = task["usage"]
    assert usage["source"] == "container"
    assert usage["peak_memory"] >= 64 * MIB and usage["cpu_time"] >= 0.3
    assert usage["wall_time"] is not None and usage["wall_time"] > 0

    out = tmp_path / "report.html"
    made = subprocess.run(
        [*cmd, "report", "use1", "-o", str(out)], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert made.returncode == 0, made.stderr
    page = out.read_text()
    row = re.search(r"<tr><td>work</td>(.*?)</tr>", page, re.S)
    assert row is not None, "no usage row for the container task"
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row.group(1))
    assert "container" in cells  # measured by
    assert not any("not measured" in c for c in cells)


def test_sweep_removes_the_cgroups_killed_processes_left(podman: Runtime) -> None:
    _metered(podman)
    name = f"podium-{uuid.uuid4().hex[:16]}"
    probe = container_usage.meter(podman, name)
    assert probe is not None
    base = container_usage.CGROUP_ROOT if probe.v2 else f"{container_usage.CGROUP_ROOT}/memory"
    os.makedirs(f"{base}/{container_usage.PARENT}/{name}/conmon")  # as conmon's left it
    assert _leftover_cgroups(name)
    assert name in container_usage.sweep(podman)
    assert _leftover_cgroups(name) == []
