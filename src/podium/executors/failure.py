"""How an attempt that failed on purpose is described: ``failure(kind, type, message, ...)``.

Every executor and task kind reports a failure as a ``TaskFailedError`` carrying a fresh
``ErrorRecord`` (plain data that crosses process and node boundaries). Invariant: this module
imports only leaves, so every kind and executor can use it without importing another.
"""

from __future__ import annotations

import signal
from typing import Any

from podium.errors import ErrorRecord, TaskFailedError


def failure(
    kind: str, type_: str, message: str, *, retryable: bool = True, traceback: str = "", **extra: Any
) -> TaskFailedError:
    """A ``TaskFailedError`` carrying a fresh ``ErrorRecord``."""
    return TaskFailedError(
        ErrorRecord(
            type=type_, message=message, traceback=traceback, retryable=retryable, kind=kind, extra=extra
        )
    )


def signame(sig: int) -> str:
    """``"SIGKILL"`` for 9: how a failure names the signal that ended a process."""
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"
