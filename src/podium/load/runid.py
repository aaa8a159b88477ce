"""A run asked for by its id: is the id well formed, and is an existing run of that id this run.

``podium run --run-id ID`` and ``podium.run(..., run_id=ID)`` both let the user name a run; the
same id a second time continues that run (idempotent) instead of starting another. Both edges
ask this module, so they accept the same ids and refuse the same mismatches with the same words:

- ``check_run_id(run_id)``: 1-64 letters, digits, ``-`` or ``_`` (it becomes part of file names,
  URLs and metric labels);
- ``check_same_run(store, run_id, source, workflow, given)``: an existing run ``run_id`` is
  continued only from the same spec file and flow (``same_source``; changed bytes must keep the
  DAG's shape, which the engine checks) and without parameter values other than those it started
  with.

Invariants: nothing here writes (the store is only read); a refusal is one line naming the run,
what differs and how to go on; a parameter whose name says it is a secret, or whose value is a
known secret, is shown as ``***``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from podium.errors import NotFoundError, SpecError, UsageError
from podium.secrets import redact_value
from podium.types import Store

#: The most characters a run id may have.
MAX_RUN_ID = 64


def check_run_id(run_id: object) -> str:
    """``run_id`` if it is a well-formed run id, else a ``UsageError`` saying what is allowed."""
    if (
        isinstance(run_id, str)
        and 0 < len(run_id) <= MAX_RUN_ID
        and all(c.isalnum() or c in "-_" for c in run_id)
    ):
        return run_id
    raise UsageError(f"--run-id {run_id!r}: use 1-{MAX_RUN_ID} letters, digits, '-' or '_'")


def check_same_run(
    store: Store,
    run_id: str,
    source: Mapping[str, Any] | None,
    workflow: Any,
    given: Mapping[str, Any],
) -> None:
    """Refuse to continue run ``run_id`` of ``store``, if it exists, with another spec file or
    flow than ``source`` (None: a workflow built in Python, nothing to compare) or with
    parameter values (``given``, resolved by ``workflow``) other than those it started with."""
    try:
        record = store.get_run(run_id)
    except NotFoundError:
        return  # a new run
    if source is not None:
        same_source(record.source, source, run_id)
    resolved = workflow.resolve_params(dict(given))
    for name in given:
        if name in record.params and resolved[name] != record.params[name]:
            before, now = redact_value({name: record.params[name]}), redact_value({name: given[name]})
            raise UsageError(
                f"run {run_id} was started with {name}={before[name]!r}; -p {name}={now[name]} "
                "differs: start a new run (another --run-id, or none) to use new values"
            )


def same_source(started: Mapping[str, Any], now: Mapping[str, Any], run_id: str) -> None:
    """Refuse to continue run ``run_id`` (started from ``started``) with the spec loaded now
    from ``now`` unless both are the same file and the same flow. Its bytes may differ: the
    runtime then continues the run only if the DAG kept its shape (``Engine.resume``)."""
    for key, what in (("path", "file"), ("flow", "flow")):
        if started.get(key) != now.get(key):
            raise SpecError(
                f"run {run_id!r} was started from {what} {started.get(key)!r}, not {now.get(key)!r}: "
                "resume it with `podium resume` or start a new run (another --run-id)"
            )
