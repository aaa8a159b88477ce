"""Node health of the Ray executor (``podium.executors.ray.health``) against real sockets, no Ray.

A raylet is stood in for by a listening TCP socket: a node answers while it listens, and stops
answering once it is closed (refused at once, as a SIGKILLed raylet's port is).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator, Sequence

import pytest

from podium.executors.ray.health import NodeHealth, probe, raylets
from podium.model.cluster import Node


class Host:
    """Records what node health tells its executor."""

    def __init__(self) -> None:
        self.refreshes = 0
        self.lost: list[tuple[str, str]] = []

    def refresh(self) -> Sequence[Node]:
        self.refreshes += 1
        return []

    def node_lost(self, node_id: str, reason: str) -> None:
        self.lost.append((node_id, reason))


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(8)
    yield s
    s.close()


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    return port


def test_probe_answers_and_refusals(listener: socket.socket) -> None:
    assert probe("127.0.0.1", listener.getsockname()[1]) == ""
    port = _closed_port()
    why = probe("127.0.0.1", port)
    assert why.startswith(f"its raylet at 127.0.0.1:{port} refused")


def test_raylets_lists_only_nodes_ray_calls_alive() -> None:
    raw = [
        {"NodeID": "a", "Alive": True, "NodeManagerAddress": "10.0.0.1", "NodeManagerPort": 4000},
        {"NodeID": "b", "Alive": False, "NodeManagerAddress": "10.0.0.2", "NodeManagerPort": 4000},
        {"NodeID": "c", "Alive": True, "NodeManagerAddress": "10.0.0.3"},  # no port: not probed
    ]
    assert raylets(raw) == {"a": ("10.0.0.1", 4000)}


def test_a_node_that_stops_answering_is_suspect_until_it_answers(listener: socket.socket) -> None:
    host = Host()
    lock = threading.RLock()
    health = NodeHealth(host, lock, period=None)
    live_port, dead_port = listener.getsockname()[1], _closed_port()
    with lock:
        health.set_raylets({"live": ("127.0.0.1", live_port), "dead": ("127.0.0.1", dead_port)})
    assert health.check("live") and host.lost == []
    assert not health.check("dead")  # probed at once, as after a lost worker there
    assert list(health.suspects()) == ["dead"]
    assert [n for n, _ in host.lost] == ["dead"] and "refused" in host.lost[0][1]
    assert host.refreshes == 1  # the executor re-read its nodes, leaving the suspect out
    assert not health.check("dead") and len(host.lost) == 1  # told once
    assert health.check("unknown")  # a node Ray never listed is not suspected

    health.sweep()  # still refused: still suspect
    assert list(health.suspects()) == ["dead"]
    revived = socket.socket()
    revived.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    revived.bind(("127.0.0.1", dead_port))
    revived.listen(1)
    try:
        health.sweep()  # it answers again: re-admitted
    finally:
        revived.close()
    assert health.suspects() == {}
    with lock:
        health.set_raylets({"live": ("127.0.0.1", live_port)})  # Ray no longer lists "dead"
    assert health.check("dead")  # Ray no longer lists it: nothing to probe
    assert health.suspects() == {}


def test_a_suspect_ray_no_longer_lists_is_forgotten(listener: socket.socket) -> None:
    host = Host()
    lock = threading.RLock()
    health = NodeHealth(host, lock, period=None)
    with lock:
        health.set_raylets({"dead": ("127.0.0.1", _closed_port())})
    health.check("dead")
    assert "dead" in health.suspects()
    with lock:
        health.set_raylets({})  # Ray declared it dead
    assert health.suspects() == {}


def test_the_probing_thread_finds_a_node_that_died_while_idle() -> None:
    host = Host()
    lock = threading.RLock()
    health = NodeHealth(host, lock, period=0.05)
    with lock:
        health.set_raylets({"idle": ("127.0.0.1", _closed_port())})
    health.start()
    try:
        for _ in range(200):
            if host.lost:
                break
            threading.Event().wait(0.02)
    finally:
        health.stop()
    assert [n for n, _ in host.lost] == ["idle"]
