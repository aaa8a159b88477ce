"""Helpers shared by the engine tests."""

from __future__ import annotations

from podium.executors.local import LocalExecutor
from podium.model import Node, Resources


def make_executor(cpu: float = 2, memory: str = "4GiB", **custom: float) -> LocalExecutor:
    """A local executor serving one node of exactly this capacity."""
    return LocalExecutor([Node("local", Resources.of(cpu=cpu, memory=memory, **custom))])
