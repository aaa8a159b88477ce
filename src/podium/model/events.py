"""The event vocabulary: everything that happens to a run, as append-only records.

A run's state is ``fold(events)``; nothing else is authoritative. Invariants: ``seq`` numbers
of one run are 1, 2, 3, ... with no gaps (the writer assigns them, the store rejects
duplicates); ``data`` holds only JSON-serialisable values; event types are past tense.
Results live beside events as ``ResultRecord`` (bytes plus a sha256 checksum) and are written
in the same transaction as the ``TaskSucceeded`` that commits them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, NamedTuple

RUN_CREATED = "RunCreated"
RUN_STARTED = "RunStarted"
RUN_SUCCEEDED = "RunSucceeded"
RUN_FAILED = "RunFailed"
RUN_CANCELLED = "RunCancelled"
PLAN_MADE = "PlanMade"
#: A resume continued the run with a changed flow or spec of the same DAG shape: ``data`` has
#: the file's ``path``, its new ``sha256`` and the one it replaces (``was``).
SOURCE_CHANGED = "SourceChanged"
TASK_QUEUED = "TaskQueued"
TASK_STARTED = "TaskStarted"
TASK_SUCCEEDED = "TaskSucceeded"
TASK_FAILED = "TaskFailed"
TASK_RETRYING = "TaskRetrying"
TASK_SKIPPED = "TaskSkipped"
TASK_CANCELLED = "TaskCancelled"
TASK_EXPANDED = "TaskExpanded"
TASK_RESET = "TaskReset"
TASK_INVALIDATED = "TaskInvalidated"
#: ``podium resume --from TASK``: a finished (or expanded) task downstream of TASK, TASK
#: included, goes back to pending to run again; ``data``: ``from`` (TASK) and ``was`` (the
#: state it leaves). The store drops its committed result in the same transaction.
TASK_CLEARED = "TaskCleared"

RUN_EVENTS = frozenset(
    {RUN_CREATED, RUN_STARTED, RUN_SUCCEEDED, RUN_FAILED, RUN_CANCELLED, PLAN_MADE, SOURCE_CHANGED}
)
TASK_EVENTS = frozenset(
    {
        TASK_QUEUED,
        TASK_STARTED,
        TASK_SUCCEEDED,
        TASK_FAILED,
        TASK_RETRYING,
        TASK_SKIPPED,
        TASK_CANCELLED,
        TASK_EXPANDED,
        TASK_RESET,
        TASK_INVALIDATED,
        TASK_CLEARED,
    }
)
#: Task events whose task's committed result the store drops in the same transaction.
DROPS_RESULT = frozenset({TASK_INVALIDATED, TASK_CLEARED})
ALL_EVENTS = RUN_EVENTS | TASK_EVENTS
_NO_DATA: dict[str, Any] = {}


class Event(NamedTuple):
    """One thing that happened. ``task_id`` is None for run-level events.

    A NamedTuple rather than a dataclass: the engine makes several per task, so creation cost
    matters. Treat ``data`` as read-only once the event exists (the default is shared).
    """

    seq: int
    type: str
    task_id: str | None = None
    attempt: int = 0
    ts: float = 0.0
    data: dict[str, Any] = _NO_DATA


class ResultRecord(NamedTuple):
    """A task instance's committed result: serialized bytes and their sha256."""

    task_id: str
    attempt: int
    data: bytes
    checksum: str
    encoding: str = "pickle"

    @classmethod
    def of(cls, task_id: str, attempt: int, data: bytes, encoding: str = "pickle") -> ResultRecord:
        return cls(task_id, attempt, data, checksum(data), encoding)

    def verify(self) -> bool:
        return checksum(self.data) == self.checksum


def checksum(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True, slots=True)
class RunRecord:
    """A run's header row. ``status`` is a cache of the folded state for listing quickly;
    the event log stays the truth. ``source`` says how to load the workflow again on resume."""

    run_id: str
    workflow: str
    status: str
    created_at: float
    updated_at: float
    params: dict[str, Any] = field(default_factory=dict)
    source: dict[str, Any] = field(default_factory=dict)
    owner: str = ""
