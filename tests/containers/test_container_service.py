"""A service that is a container (real Podman, the busybox image): started detached with
``--network host``, probed until its web server answers, called by its users through
``${svc.url}``, removed after the last one, and removed when the run fails."""

from __future__ import annotations

from pathlib import Path

from container_helpers import IMAGE

from podium.executors.container_runtime import LABEL_RUN, Runtime
from podium.executors.local import LocalExecutor
from podium.load import load_workflow
from podium.registry import Registry
from podium.runtime import codec
from podium.runtime.engine import Engine
from podium.store.memory import MemoryStore

HTTPD = "mkdir -p /tmp/w && echo served > /tmp/w/index.html && exec httpd -f -p $PORT -h /tmp/w"


def spec(tmp: Path, users: str) -> Path:
    (tmp / "flow.yaml").write_text(
        f"""name: csvc
tasks:
  web:
    kind: service
    image: {IMAGE}
    argv: [/bin/sh, -c, "{HTTPD}"]
    ready: {{path: /index.html, timeout: 30s}}
    resources: {{cpu: 0.5, memory: 64MiB}}
{users}"""
    )
    return tmp / "flow.yaml"


def run(path: Path, run_id: str) -> tuple[str, dict]:
    reg = Registry()
    wf = load_workflow(path, registry=reg, allow_images=[IMAGE], allow_hosts=["127.0.0.1"]).workflow
    store = MemoryStore()
    executor = LocalExecutor(registry=reg)
    try:
        result = Engine(store, executor, registry=reg).run(wf, run_id=run_id)
    finally:
        executor.shutdown()
    values = {k: codec.decode(r) for k, r in store.results(run_id).items()}
    return result.status, values


def test_a_container_service_serves_its_users_and_is_removed(podman: Runtime, tmp_path: Path) -> None:
    path = spec(tmp_path, '  get:\n    url: "${web.url}/index.html"\n')
    status, values = run(path, "csvc-ok")
    assert status == "succeeded"
    assert values["get"].strip() == "served"
    assert values["web"]["container"].startswith("podium-svc-")
    assert podman.find({LABEL_RUN: "csvc-ok"}) == []  # removed after its user


def test_a_failed_user_still_removes_the_container(podman: Runtime, tmp_path: Path) -> None:
    path = spec(tmp_path, '  get:\n    url: "${web.url}/missing"\n')
    status, _ = run(path, "csvc-bad")
    assert status == "failed"
    assert podman.find({LABEL_RUN: "csvc-bad"}) == []
