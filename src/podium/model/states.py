"""The state-transition table: which event may move a task or a run from which state.

Invariants: every transition the engine makes, and every transition replayed from a log, is
checked against ``TASK_TRANSITIONS`` / ``RUN_TRANSITIONS``; ``SUCCEEDED`` is terminal for a
task (a committed result is never replaced), so no event can make a succeeded task run again,
with one exception: ``TaskInvalidated``, written when the committed result fails its checksum
on reading (the store drops that result in the same transaction), so bad data is never passed on.
``TaskCleared`` is the user's explicit ``podium resume --from TASK``: it takes a finished or
expanded task back to pending (its result dropped likewise), recorded in the log as such.
"""

from __future__ import annotations

from podium.errors import PodiumError
from podium.model import events as ev

PENDING = "pending"
QUEUED = "queued"
RUNNING = "running"
RETRYING = "retrying"
EXPANDED = "expanded"
SUCCEEDED = "succeeded"
FAILED = "failed"
SKIPPED = "skipped"
CANCELLED = "cancelled"

TASK_STATES = (PENDING, QUEUED, RUNNING, RETRYING, EXPANDED, SUCCEEDED, FAILED, SKIPPED, CANCELLED)
FINISHED = frozenset({SUCCEEDED, FAILED, SKIPPED, CANCELLED})
ACTIVE = frozenset({QUEUED, RUNNING, RETRYING, EXPANDED})

TASK_TRANSITIONS: dict[tuple[str, str], str] = {
    (PENDING, ev.TASK_QUEUED): QUEUED,
    (PENDING, ev.TASK_SKIPPED): SKIPPED,
    (PENDING, ev.TASK_CANCELLED): CANCELLED,
    (PENDING, ev.TASK_EXPANDED): EXPANDED,
    (PENDING, ev.TASK_FAILED): FAILED,  # inputs could not be resolved
    (QUEUED, ev.TASK_STARTED): RUNNING,
    (QUEUED, ev.TASK_SUCCEEDED): SUCCEEDED,  # cache hit: no attempt ran
    (QUEUED, ev.TASK_CANCELLED): CANCELLED,
    (QUEUED, ev.TASK_RESET): PENDING,
    (RUNNING, ev.TASK_SUCCEEDED): SUCCEEDED,
    (RUNNING, ev.TASK_FAILED): FAILED,
    (RUNNING, ev.TASK_RETRYING): RETRYING,
    (RUNNING, ev.TASK_CANCELLED): CANCELLED,
    (RUNNING, ev.TASK_RESET): PENDING,
    (RETRYING, ev.TASK_QUEUED): QUEUED,
    (RETRYING, ev.TASK_CANCELLED): CANCELLED,
    (RETRYING, ev.TASK_RESET): PENDING,
    (EXPANDED, ev.TASK_SUCCEEDED): SUCCEEDED,
    (EXPANDED, ev.TASK_FAILED): FAILED,
    (EXPANDED, ev.TASK_CANCELLED): CANCELLED,
    (FAILED, ev.TASK_RESET): PENDING,
    (CANCELLED, ev.TASK_RESET): PENDING,
    (SKIPPED, ev.TASK_RESET): PENDING,
    # the one way out of SUCCEEDED: its committed result was read back and failed its checksum
    (SUCCEEDED, ev.TASK_INVALIDATED): PENDING,
    # ``podium resume --from TASK``: the user asks for TASK and its downstream to run again
    (SUCCEEDED, ev.TASK_CLEARED): PENDING,
    (FAILED, ev.TASK_CLEARED): PENDING,
    (SKIPPED, ev.TASK_CLEARED): PENDING,
    (CANCELLED, ev.TASK_CLEARED): PENDING,
    (EXPANDED, ev.TASK_CLEARED): PENDING,
}
#: The states ``TaskCleared`` takes back to pending.
CLEARABLE = frozenset(s for (s, e) in TASK_TRANSITIONS if e == ev.TASK_CLEARED)

RUN_CREATED_STATE = "created"
RUN_RUNNING = "running"
RUN_SUCCEEDED = "succeeded"
RUN_FAILED = "failed"
RUN_CANCELLED = "cancelled"
RUN_FINISHED = frozenset({RUN_SUCCEEDED, RUN_FAILED, RUN_CANCELLED})

RUN_TRANSITIONS: dict[tuple[str | None, str], str] = {
    (None, ev.RUN_CREATED): RUN_CREATED_STATE,
    (RUN_CREATED_STATE, ev.RUN_STARTED): RUN_RUNNING,
    (RUN_RUNNING, ev.RUN_STARTED): RUN_RUNNING,  # resumed after the orchestrator died
    (RUN_FAILED, ev.RUN_STARTED): RUN_RUNNING,
    (RUN_CANCELLED, ev.RUN_STARTED): RUN_RUNNING,
    (RUN_SUCCEEDED, ev.RUN_STARTED): RUN_RUNNING,  # resumed --from a task, to run it again
    (RUN_RUNNING, ev.RUN_SUCCEEDED): RUN_SUCCEEDED,
    (RUN_RUNNING, ev.RUN_FAILED): RUN_FAILED,
    (RUN_RUNNING, ev.RUN_CANCELLED): RUN_CANCELLED,
    (RUN_CREATED_STATE, ev.RUN_CANCELLED): RUN_CANCELLED,
    (RUN_RUNNING, ev.PLAN_MADE): RUN_RUNNING,
    (RUN_CREATED_STATE, ev.PLAN_MADE): RUN_CREATED_STATE,
    # a resume goes on with a fixed flow or spec of the same shape: written before it starts
    **{(s, ev.SOURCE_CHANGED): s for s in (RUN_CREATED_STATE, RUN_RUNNING, *RUN_FINISHED)},
}


class IllegalTransition(PodiumError, ValueError):
    """An event that the state-transition table does not allow (a corrupt or foreign log, or a
    bug). Also a ``ValueError``, as it was before the one error root."""


def next_task_state(state: str, event_type: str) -> str:
    try:
        return TASK_TRANSITIONS[(state, event_type)]
    except KeyError:
        raise IllegalTransition(f"task in state {state!r} cannot take {event_type}") from None


def next_run_state(state: str | None, event_type: str) -> str:
    try:
        return RUN_TRANSITIONS[(state, event_type)]
    except KeyError:
        raise IllegalTransition(f"run in state {state!r} cannot take {event_type}") from None
