"""Helpers for the container tests: task calls for the busybox image, leftover containers."""

from __future__ import annotations

import uuid
from typing import Any

from podium.executors.container_runtime import LABEL_RUN, Runtime
from podium.model import Resources, TaskCall, TaskSpec

#: The busybox image the session fixture imports.
IMAGE = "localhost/podium-test-busybox:1"


def sh(script: str) -> list[str]:
    """argv running ``script`` with the image's busybox shell."""
    return ["/bin/sh", "-c", script]


def container_call(
    argv: list[str],
    *,
    inputs: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
    timeout: float | None = None,
    cpu: float = 1.0,
    memory: object = 0,
    network: str | None = None,
    workdir: str | None = None,
    image: str = IMAGE,
    run_id: str | None = None,
    task_id: str = "c",
) -> TaskCall:
    """One attempt of a container task, as the engine would hand it to an executor."""
    config: dict[str, Any] = {"image": image, "argv": argv}
    if env:
        config["env"] = env
    if network:
        config["network"] = network
    if workdir:
        config["workdir"] = workdir
    spec = TaskSpec(name=task_id, kind="container", config=config, args=inputs or {}, timeout=timeout)
    return TaskCall(
        run_id=run_id or f"t-{uuid.uuid4().hex[:10]}",
        task_id=task_id,
        attempt=1,
        spec=spec,
        kwargs=inputs or {},
        config=spec.config,
        resources=Resources.of(cpu=cpu, memory=memory),
        timeout=timeout,
    )


def leftovers(rt: Runtime, run_id: str) -> list[str]:
    """Containers of ``run_id`` that still exist, running or not."""
    return rt.find({LABEL_RUN: run_id})
