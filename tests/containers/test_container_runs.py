"""Container tasks inside whole runs, with a real Podman: results flowing to Python tasks, a map
of containers, out-of-memory retries with more memory, timeouts, and a ``kill -9`` of the
orchestrator followed by ``podium resume``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from container_helpers import IMAGE, leftovers, sh

import podium
from podium.errors import TIMEOUT
from podium.executors.container_runtime import Runtime
from podium.executors.local import LocalExecutor
from podium.model import Node, Resources
from podium.runtime.engine import Engine
from podium.store import open_store
from podium.types import Store

pytestmark = pytest.mark.usefixtures("podman")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """A SQLite store, as ``podium run`` uses by default."""
    with closing(open_store(str(tmp_path / "podium.db"))) as s:
        yield s


@pytest.fixture
def executor() -> Iterator[LocalExecutor]:
    """This machine as a 2-cpu node (threads run the container clients)."""
    ex = LocalExecutor([Node("local", Resources.of(cpu=2, memory="4GiB"))])
    try:
        yield ex
    finally:
        ex.shutdown()


@podium.task
def total(values: list[int]) -> int:
    return sum(values)


@podium.flow
def boxes(n: int = 3):
    made = podium.container(
        IMAGE,
        sh('printf \'{"values": [%s]}\' "$(seq -s, 1 $(cat /podium/in/n.json))" > /podium/out/result.json'),
        inputs={"n": n},
        name="make",
        cpu=0.5,
        memory="64MiB",
    )
    doubled = podium.container(
        IMAGE,
        sh("echo $(( $(cat /podium/in/x.json) * 2 )) > /podium/out/result.json"),
        inputs={"x": podium.each(made["values"])},
        name="double",
    )
    total(made["values"])
    total.options(name="total_doubled")(doubled)


def test_container_results_reach_python_tasks_and_maps(store: Store, executor: LocalExecutor) -> None:
    result = Engine(store, executor).run(boxes.workflow, {"n": 4})
    assert result.ok, result.summary
    assert result["make"] == {"values": [1, 2, 3, 4]}
    assert result["double"] == [2, 4, 6, 8]
    assert (result["total"], result["total_doubled"]) == (10, 20)


#: Holds 60 MB in a shell variable, then reports its length.
HOG = 'x=$(head -c 60000000 /dev/zero | tr "\\0" a); printf \'{"bytes": %s}\' ${#x} > /podium/out/result.json'


@podium.flow
def hog():
    podium.container(
        IMAGE,
        sh(HOG),
        name="hog",
        memory="32MiB",
    )


def test_out_of_memory_is_retried_with_more_memory(store: Store, executor: LocalExecutor) -> None:
    result = Engine(store, executor, oom_growth=8.0, oom_retries=1).run(hog.workflow)
    assert result.ok, result.summary
    assert result["hog"] == {"bytes": 60_000_000}
    events = [e for e in store.events(result.run_id) if e.task_id == "hog"]
    failed = [
        e.data["error"] for e in events if e.type in ("TaskRetrying", "TaskFailed") and "error" in e.data
    ]
    assert [f["kind"] for f in failed] == ["oom"]
    assert result.view.tasks["hog"].attempt == 2


@podium.flow
def stuck():
    podium.container(IMAGE, sh("sleep 120"), name="stuck", timeout=1.5)


def test_a_timed_out_container_fails_the_run_and_is_gone(
    store: Store, executor: LocalExecutor, podman: Runtime
) -> None:
    result = Engine(store, executor).run(stuck.workflow)
    assert not result.ok
    errors = [e.data["error"] for e in store.events(result.run_id) if "error" in (e.data or {})]
    assert errors and errors[-1]["kind"] == TIMEOUT and "container removed" in errors[-1]["message"]
    assert leftovers(podman, result.run_id) == []


SPEC = textwrap.dedent(
    f"""
    name: slowbox
    tasks:
      slow:
        kind: container
        image: {IMAGE}
        argv: [/bin/sh, -c, '[ "$PODIUM_ATTEMPT" = 1 ] && sleep 300; echo 7 > /podium/out/result.json']
        env: {{TOKEN: not-to-be-left-on-disk}}
      after:
        kind: container
        image: {IMAGE}
        inputs: {{x: "${{slow}}"}}
        argv: [/bin/sh, -c, 'echo $(( $(cat /podium/in/x.json) + 1 )) > /podium/out/result.json']
    """
)


def test_kill_9_mid_container_then_resume_leaves_no_container(tmp_path: Path, podman: Runtime) -> None:
    (tmp_path / "box.yaml").write_text(SPEC)
    cmd = [sys.executable, "-m", "podium"]
    run = ["run", "box.yaml", "--run-id", "kill9", "--allow-image", IMAGE, "--no-progress"]
    proc = subprocess.Popen([*cmd, *run], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        end = time.monotonic() + 60
        while not _running(podman, "kill9") and time.monotonic() < end and proc.poll() is None:
            time.sleep(0.1)
        assert _running(podman, "kill9"), proc.communicate(timeout=5)
        orphans = leftovers(podman, "kill9")
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert leftovers(podman, "kill9") == orphans, "the dead orchestrator's container outlives it"
    folders = Path(tempfile.gettempdir()) / f"podium-containers-{os.getuid()}"
    dead = [d for d in folders.iterdir() if d.name.split("+")[1] == str(proc.pid)]
    assert [p.name for d in dead for p in d.glob("*/env")] == ["env"], "its env file is still on disk"

    resumed = subprocess.run(
        [*cmd, "resume", "kill9"], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert resumed.returncode == 0, resumed.stderr
    assert podman.inspect(orphans) == []
    assert leftovers(podman, "kill9") == []
    assert not any(d.exists() for d in dead)
    store = open_store(str(tmp_path / ".podium" / "podium.db"))
    try:
        from podium.runtime.engine import codec_values
        from podium.runtime.view import fold

        values = codec_values(store, "kill9", fold(store.events("kill9")))
    finally:
        store.close()
    assert (values["slow"], values["after"]) == (7, 8)


def _running(rt: Runtime, run_id: str) -> bool:
    found = rt.inspect(leftovers(rt, run_id))
    return any((c.get("State") or {}).get("Status") == "running" for c in found)


def test_ctrl_c_cancels_the_run_and_removes_its_container(tmp_path: Path, podman: Runtime) -> None:
    (tmp_path / "box.yaml").write_text(SPEC)
    cmd = [sys.executable, "-m", "podium", "run", "box.yaml", "--run-id", "ctrlc", "--allow-image", IMAGE]
    proc = subprocess.Popen(
        [*cmd, "--no-progress"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        end = time.monotonic() + 60
        while not _running(podman, "ctrlc") and time.monotonic() < end and proc.poll() is None:
            time.sleep(0.1)
        assert _running(podman, "ctrlc"), proc.communicate(timeout=5)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0 and b"cancelled" in err
    assert leftovers(podman, "ctrlc") == []
    folders = Path(tempfile.gettempdir()) / f"podium-containers-{os.getuid()}"
    assert not [d for d in folders.iterdir() if d.name.split("+")[1] == str(proc.pid)]
