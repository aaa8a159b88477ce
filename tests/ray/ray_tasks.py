"""Tasks the Ray tests run on the workers; loaded there by file path through the registry snapshot.

Each task reports the Ray node id it ran on, so a test can compare where a task really ran with
where the engine placed it.
"""

from __future__ import annotations

import os
import time
from pathlib import Path


def _node_id() -> str:
    import ray

    return ray.get_runtime_context().get_node_id()


def where(tag: str) -> dict[str, str]:
    return {"tag": tag, "node_id": _node_id()}


def blob(n: int) -> bytes:
    return bytes(range(256)) * (n // 256)


def measure(data: bytes) -> dict[str, object]:
    return {"len": len(data), "sum": sum(data[:1024]), "node_id": _node_id()}


def boom(x: int) -> int:
    print(f"about to fail with x={x}")
    raise ValueError(f"bad x={x}")


def nap(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def hold(tag: str, signals: str, timeout: float = 60.0) -> dict[str, str]:
    """Write ``<signals>/<tag>.<pid>.started`` (holding this node id), then wait for ``<signals>/go``."""
    node_id = _node_id()
    d = Path(signals)
    tmp = d / f".{tag}.{os.getpid()}.tmp"
    tmp.write_text(node_id)
    tmp.rename(d / f"{tag}.{os.getpid()}.started")
    deadline = time.monotonic() + timeout
    while not (d / "go").exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{tag}: no go signal within {timeout}s")
        time.sleep(0.05)
    return {"tag": tag, "node_id": node_id}


def stint(tag: str, ledger: str, seconds: float) -> str:
    """Sleep ``seconds``, appending ``start`` and ``end`` lines (tag, Ray node id, pid, wall
    time) to ``ledger``: where and when this really ran, as the worker saw it."""
    node_id = _node_id()

    def note(what: str) -> None:
        with open(ledger, "a") as f:  # one short O_APPEND write per line: lines never mix
            f.write(f"{what} {tag} {node_id} {os.getpid()} {time.time():.6f}\n")

    note("start")
    time.sleep(seconds)
    note("end")
    return tag


def count(tag: str, ledger: str) -> str:
    """Append one line to ``ledger`` per run, so a test can count how often this ran."""
    with open(ledger, "a") as f:
        f.write(tag + "\n")
    return tag.upper()


def gate(value: str, marker: str) -> str:
    """Succeed with ``value + '!'`` only once ``marker`` exists."""
    if not os.path.exists(marker):
        raise RuntimeError(f"marker {marker} missing")
    return value + "!"
