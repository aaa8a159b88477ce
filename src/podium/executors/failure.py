"""How an attempt that failed on purpose is described: ``failure(kind, type, message, ...)``.

Every executor and task kind reports a failure as a ``TaskFailedError`` carrying a fresh
``ErrorRecord`` (plain data that crosses process and node boundaries). A gang whose workers
failed reports the most telling of their failures (``worst``). Invariant: this module imports
only leaves, so every kind and executor can use it without importing another.
"""

from __future__ import annotations

import signal
from typing import Any

from podium.errors import (
    CANCELLED,
    GPU_OOM,
    OOM,
    TIMEOUT,
    USER_ERROR,
    WORKER_LOST,
    ErrorRecord,
    TaskFailedError,
)

#: Which failure of a gang's workers the gang's attempt reports, most telling first.
SEVERITY = (WORKER_LOST, OOM, GPU_OOM, TIMEOUT, USER_ERROR)


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


def worst(errors: list[BaseException]) -> BaseException:
    """The failure a gang reports among its workers' (see ``SEVERITY``; cancelled ones last)."""

    def rank(e: BaseException) -> int:
        kind = e.record.kind if isinstance(e, TaskFailedError) else USER_ERROR
        return SEVERITY.index(kind) if kind in SEVERITY else len(SEVERITY) + (kind == CANCELLED)

    return min(errors, key=rank)
