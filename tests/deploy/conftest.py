"""Fixtures for the offline checks of the deployment files.

No container engine, Kubernetes cluster or remote host runs here: these tests check the
Containerfile, the KubeRay manifests and the Ansible playbook statically, with the real
validators (Kubernetes' own OpenAPI schemas, KubeRay's CRD schemas, ansible-playbook and
ansible-lint), and check every command line they hold against the real CLIs of podium and Ray.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fail any attempt to open a network connection from this process (offline means offline)."""

    def refuse(self: socket.socket, address: Any) -> None:
        raise AssertionError(f"a validator tried to reach the network: {address!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    yield
