"""Task bodies of the chaos suite, resolved by name (``chaos_tasks:<fn>``) in threads and workers.

Every body first appends one side-effect line ``<task> <wall-clock ns> <pid>`` to a log file
(one ``write`` on an ``O_APPEND`` descriptor, so concurrent writers never interleave). The
invariant checker assigns each line to the attempt whose durable ``TaskStarted`` precedes it:
task bodies are not told their attempt number, and the log proves which attempt ran when.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any


def record(log: str, name: str) -> None:
    """Append this execution's side-effect line."""
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{name} {time.time_ns()} {os.getpid()}\n".encode())
    finally:
        os.close(fd)


def effect(log: str, name: str, seconds: float = 0.0, inputs: Any = None) -> str:
    """Count the execution, work ``seconds``, return the task's name."""
    record(log, name)
    time.sleep(seconds)
    return name


def hang_once(log: str, name: str, marker: str, hang: float) -> str:
    """The first execution hangs for ``hang`` seconds (a timeout must stop it); later ones return."""
    record(log, name)
    path = Path(marker)
    if not path.exists():
        path.write_text("hung\n", encoding="utf-8")
        time.sleep(hang)
    return name


def hog(log: str, name: str, mib: int) -> str:
    """Allocate and touch ``mib`` MiB at once: past a smaller memory request this fails as oom."""
    record(log, name)
    block = bytearray(mib * 1024 * 1024)
    block[::4096] = b"x" * len(block[::4096])
    return name


def hog_forever(log: str, name: str) -> str:
    """Allocate until something stops it (a memory limit must)."""
    record(log, name)
    chunks = []
    while True:
        chunks.append(bytearray(16 * 1024 * 1024))
