"""The one error root of Podium and the records errors travel as.

Invariants:
- Every error Podium raises on purpose is a ``PodiumError``; edges (CLI, HTTP) map its
  ``exit_code`` / ``http_status`` and print ``str(err)``, never a traceback.
- Errors cross process and node boundaries as ``ErrorRecord`` (plain data), never as live
  exception objects, so a worker's exception type need not be importable by the orchestrator.
- ``Cancelled`` derives from ``BaseException`` so user code catching ``Exception`` cannot swallow it.
- This module imports nothing of ours.
"""

from __future__ import annotations

import os
import sysconfig
import traceback as _tb
from dataclasses import dataclass, field
from typing import Any

#: Failure classes a task attempt can end with.
USER_ERROR = "user"
WORKER_LOST = "worker_lost"
TIMEOUT = "timeout"
OOM = "oom"
#: A GPU ran out of memory (``torch.cuda.OutOfMemoryError``, "CUDA out of memory"). Retried
#: under the task's own retry policy: unlike host memory, Podium has no more of it to give.
GPU_OOM = "gpu_oom"
CANCELLED = "cancelled"
CORRUPT = "corrupt"
FAILURE_KINDS = (USER_ERROR, WORKER_LOST, TIMEOUT, OOM, GPU_OOM, CANCELLED, CORRUPT)


class PodiumError(Exception):
    """Root of every error Podium raises on purpose."""

    exit_code: int = 1
    http_status: int = 500
    retryable: bool = False


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with an input: where it is and what is wrong (and how to fix it)."""

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}" if self.where else self.message


class SpecError(PodiumError):
    """A workflow spec, parameter or argument is invalid. Carries every problem found at once."""

    exit_code = 2
    http_status = 422

    def __init__(self, problems: list[Problem] | Problem | str, source: str | None = None):
        if isinstance(problems, str):
            problems = [Problem("", problems)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems: list[Problem] = list(problems)
        self.source = source
        super().__init__(self._render())

    def _render(self) -> str:
        src = f"{self.source}: " if self.source else ""
        if len(self.problems) == 1:
            return f"{src}{self.problems[0]}"
        lines = [f"{src}{len(self.problems)} problems:"]
        lines += [f"  - {p}" for p in self.problems]
        return "\n".join(lines)


class UsageError(PodiumError):
    """A bad command-line argument or API request that is not a spec problem."""

    exit_code = 2
    http_status = 400


class InvalidValueError(PodiumError, ValueError):
    """A value is malformed or out of range: a size, a duration, a resource amount, a parameter,
    an argument. Also a ``ValueError``, so code that catches that keeps working; loaders turn it
    into a ``SpecError`` that says where the value was."""

    exit_code = 2
    http_status = 422


class CycleError(InvalidValueError):
    """A dependency graph has a cycle; ``cycle`` lists it, its first node repeated at the end."""

    def __init__(self, cycle: list[str]):
        self.cycle = list(cycle)
        super().__init__("cycle: " + " -> ".join(self.cycle))


class NotFoundError(PodiumError):
    """A run, task or result that does not exist."""

    exit_code = 2
    http_status = 404


class UnknownNameError(NotFoundError, KeyError):
    """A name looked up where it is not (a node of a cluster). Also a ``KeyError``, so code that
    catches that keeps working; its message is plain text, not a quoted key."""

    __str__ = PodiumError.__str__


class NoResultError(NotFoundError):
    """A task's result was asked for and it has none (it failed, was skipped or has not run)."""


class RunFailedError(PodiumError):
    """A run did not succeed (``RunResult.raise_on_failure``): ``run_id``, and ``failed``,
    task id -> its failure (kind, type, message, frame)."""

    exit_code = 1

    def __init__(self, message: str, run_id: str = "", failed: dict[str, dict[str, Any]] | None = None):
        super().__init__(message)
        self.run_id = run_id
        self.failed = dict(failed or {})


class ConflictError(PodiumError):
    """The request conflicts with the current state (e.g. resuming a run that is still owned)."""

    exit_code = 3
    http_status = 409


class ShutDownError(PodiumError, RuntimeError):
    """An executor was used after ``shutdown()``. Also a ``RuntimeError``, as it was before."""


class StoreError(PodiumError):
    """The store failed to read or write. Writes that raise this were not committed."""

    retryable = True


class InfeasibleError(PodiumError):
    """No plan satisfies the constraints (deadline, budget, capacity)."""

    exit_code = 4
    http_status = 422


class TaskFailedError(PodiumError):
    """A task attempt failed; ``record`` says how."""

    def __init__(self, record: ErrorRecord):
        self.record = record
        super().__init__(f"{record.type}: {record.message}")

    @property
    def retryable(self) -> bool:  # type: ignore[override]
        return self.record.retryable


def worker_survived(exc: BaseException | None) -> bool:
    """Whether an attempt that ended with ``exc`` (None: it succeeded) left its worker alive:
    a success or the task's own error; not a lost, killed, timed-out or out-of-memory one."""
    return exc is None or (isinstance(exc, TaskFailedError) and exc.record.kind == USER_ERROR)


class Cancelled(BaseException):
    """Raised inside the engine to stop work; user code cannot swallow it with ``except Exception``."""


@dataclass(frozen=True, slots=True)
class ErrorRecord:
    """An error as plain data: safe to store, pickle and send across processes and nodes."""

    type: str
    message: str
    traceback: str = ""
    retryable: bool = True
    kind: str = USER_ERROR
    extra: dict[str, Any] = field(default_factory=dict)
    #: Where the user's code raised it: ``"flows/train.py:42 in pick_best"`` ("" if unknown).
    frame: str = ""

    @classmethod
    def from_exception(cls, exc: BaseException, kind: str = USER_ERROR) -> ErrorRecord:
        if isinstance(exc, TaskFailedError):
            return exc.record
        retryable = getattr(exc, "retryable", True)
        return cls(
            type=type(exc).__qualname__,
            message=str(exc),
            traceback="".join(_tb.format_exception(type(exc), exc, exc.__traceback__)),
            retryable=bool(retryable),
            kind=kind,
            frame=user_frame(exc),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "message": self.message,
            "traceback": self.traceback,
            "retryable": self.retryable,
            "kind": self.kind,
            "extra": dict(self.extra),
            "frame": self.frame or None,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ErrorRecord:
        return cls(
            type=str(d.get("type", "Error")),
            message=str(d.get("message", "")),
            traceback=str(d.get("traceback", "")),
            retryable=bool(d.get("retryable", True)),
            kind=str(d.get("kind", USER_ERROR)),
            extra=dict(d.get("extra") or {}),
            frame=str(d.get("frame") or ""),
        )


_PODIUM_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
_LIBRARY_DIRS = tuple(
    sorted(
        {
            os.path.abspath(p) + os.sep
            for p in (sysconfig.get_path(k) for k in ("stdlib", "platstdlib", "purelib", "platlib"))
            if p
        }
    )
)


def user_frame(exc: BaseException) -> str:
    """``"file.py:42 in fn"``: the innermost frame of ``exc``'s traceback in the user's own code
    (not Podium, not the standard library or installed packages; failing that, the innermost
    frame outside Podium), its path relative to the current folder when inside it."""
    frames = _tb.extract_tb(exc.__traceback__)
    outside = [f for f in frames if not os.path.abspath(f.filename).startswith(_PODIUM_DIR)]
    own = [f for f in outside if not _in_library(f.filename)]
    chosen = own or outside
    if not chosen:
        return ""
    f = chosen[-1]
    return f"{_shown_path(f.filename)}:{f.lineno} in {f.name}"


def _in_library(filename: str) -> bool:
    if filename.startswith("<"):  # <frozen ...>, <string>: not a file of the user's
        return filename != "<string>" and filename != "<stdin>"
    path = os.path.abspath(filename)
    return path.startswith(_LIBRARY_DIRS)


def _shown_path(filename: str) -> str:
    if filename.startswith("<"):
        return filename
    try:
        rel = os.path.relpath(filename)
    except ValueError:  # another drive
        return filename
    return filename if rel.startswith("..") else rel
