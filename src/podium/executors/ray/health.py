"""Node health without waiting for Ray: a dead node is noticed within about a second.

A part of ``RayExecutor`` (``NodeHealth``, composed, not a mixin); what it needs from the
executor is declared by ``HealthHost``. Ray's GCS declares a node dead only after its own
health checks fail (by default a check every 3 s with a 10 s timeout, 5 failures in a row:
15 s or more after the node died). Until then ``ray.nodes()`` lists it alive and a call placed
there with hard affinity waits for it. ``NodeHealth`` does not wait for that:

- **Probe.** A node is probed by opening a TCP connection to its raylet (``NodeManagerAddress``
  and ``NodeManagerPort`` of ``ray.nodes()``) with a short timeout (``PROBE_TIMEOUT``). A
  raylet killed on a live machine refuses at once; a machine that is gone or cut off times out.
- **Suspect.** A node that does not answer is *suspect*: the executor leaves it out of its live
  nodes at once (nothing new is placed there; the engine, which adopts the live nodes after a
  lost worker, re-plans what was planned there) and fails the calls it had sent there as lost
  workers (calls that had not started go back to the engine's ready queue unrun). The first
  lost worker on a node probes it at once (``check``), before the attempt's failure reaches
  the engine. A thread probes every node Ray lists alive every ``period`` seconds
  (``PROBE_PERIOD``) and re-reads Ray's node table, so a node that dies while idle, or joins,
  is noticed within about a period.
- **Re-admission.** A suspect node is live again once its raylet answers (it was cut off, not
  dead); a replacement joins under a new Ray node id and is live at once; a node Ray lists dead
  is forgotten.

Invariants: probes never run under the executor's lock; the suspect set changes only under it,
and the executor re-reads its nodes after every change (``HealthHost.refresh``, which tells
whoever watches the live nodes); the probing thread ends with the executor.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from podium.model.cluster import Node

log = logging.getLogger("podium.ray")

#: Seconds between two rounds of probes (and re-reads of Ray's node table).
PROBE_PERIOD = 1.0
#: Seconds a raylet has to accept a probe's connection.
PROBE_TIMEOUT = 0.5


def raylets(raw_nodes: Sequence[Mapping[str, Any]]) -> dict[str, tuple[str, int]]:
    """Ray node id -> its raylet's (address, port), for the nodes Ray lists alive."""
    out: dict[str, tuple[str, int]] = {}
    for raw in raw_nodes:
        port = raw.get("NodeManagerPort")
        address = raw.get("NodeManagerAddress")
        if raw.get("Alive") and port and address:
            out[str(raw["NodeID"])] = (str(address), int(port))
    return out


def probe(address: str, port: int, timeout: float = PROBE_TIMEOUT) -> str:
    """Why the raylet at ``address:port`` does not answer, or ``""`` if it accepts a connection."""
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return ""
    except TimeoutError:
        return f"its raylet at {address}:{port} did not answer within {timeout:g}s"
    except OSError as e:
        return f"its raylet at {address}:{port} refused: {e.strerror or type(e).__name__}"


class HealthHost(Protocol):
    """What node health needs from the executor that owns it."""

    def refresh(self) -> Sequence[Node]:
        """Re-read Ray's node table (leaving suspect nodes out) and report a changed live set."""

    def node_lost(self, node_id: str, reason: str) -> None:
        """Node ``node_id`` became suspect: fail what was sent there as lost workers."""


class NodeHealth:
    """Suspect nodes and the probing thread (see the module docstring). ``lock`` is the
    executor's: it guards the suspect set together with the executor's live nodes."""

    def __init__(
        self,
        host: HealthHost,
        lock: threading.RLock,
        period: float | None = PROBE_PERIOD,
        timeout: float = PROBE_TIMEOUT,
    ) -> None:
        self._host = host
        self._lock = lock
        self._period = period
        self._timeout = timeout
        self._raylets: dict[str, tuple[str, int]] = {}  # every node Ray lists alive
        self._suspect: dict[str, str] = {}  # node id -> why it is suspect
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def suspects(self) -> dict[str, str]:
        """Suspect node ids and why (caller holds the lock)."""
        return self._suspect

    def set_raylets(self, raylets: dict[str, tuple[str, int]]) -> None:
        """The nodes Ray lists alive now; a suspect Ray no longer lists is forgotten (caller
        holds the lock)."""
        self._raylets = raylets
        for gone in [n for n in self._suspect if n not in raylets]:
            del self._suspect[gone]

    def start(self) -> None:
        """Start the probing thread (no thread without a period)."""
        if self._period is not None and self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="podium-ray-health", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def check(self, node_id: str) -> bool:
        """Probe node ``node_id`` now (after a lost worker there); a node that does not answer
        becomes suspect. Return whether it answered (an unknown node counts as answering)."""
        with self._lock:
            if node_id in self._suspect:
                return False
            where = self._raylets.get(node_id)
        if where is None:
            return True
        why = probe(*where, timeout=self._timeout)
        if why:
            self._mark(node_id, why)
        return not why

    def sweep(self) -> None:
        """One round: re-read Ray's node table, then probe every node Ray lists alive."""
        try:
            self._host.refresh()
        except Exception as e:  # Ray's table is unreadable for now: probe what we know
            log.debug("podium-ray: reading Ray's nodes failed: %s", e)
        with self._lock:
            targets = list(self._raylets.items())
        for node_id, where in targets:
            if self._stop.is_set():
                return
            why = probe(*where, timeout=self._timeout)
            if why:
                self._mark(node_id, why)
            else:
                self._readmit(node_id)

    def _mark(self, node_id: str, why: str) -> None:
        with self._lock:
            if node_id in self._suspect or node_id not in self._raylets or self._stop.is_set():
                return  # (after stop, Ray itself may be gone: nothing to tell)
            self._suspect[node_id] = why
        log.warning("podium-ray: node %s is suspect: %s", node_id, why)
        self._host.refresh()
        self._host.node_lost(node_id, why)

    def _readmit(self, node_id: str) -> None:
        with self._lock:
            if self._suspect.pop(node_id, None) is None:
                return
        log.warning("podium-ray: node %s answers again", node_id)
        self._host.refresh()

    def _loop(self) -> None:
        assert self._period is not None
        while not self._stop.wait(self._period):
            try:
                self.sweep()
            except Exception:  # never lose the probing thread
                if not self._stop.is_set():
                    log.exception("podium-ray: probing nodes failed")
