"""``RunResult``: a finished (or past) run as Python reads it.

``result["task"]`` is the value the task returned (a map's list of item values; ``"name[i]"``
one item's), read through the normal result path: values a ``podium.run`` just computed are
kept, those of a past run are read from the store on first use (authenticated, artifacts
included) and kept. ``status``, ``ok``, ``T``, ``R``, ``F``, ``params`` and ``tasks`` (task id ->
the task object of the read model, ``docs/json.md``) come from the one read-model builder, so
they are what ``podium show RUN --json`` prints.

Invariants: read-only (nothing here writes to a store); asking for a task that does not exist
is an ``UnknownNameError`` with a "did you mean", for one that did not succeed a
``NoResultError`` saying how it ended; every message is one line.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any

from podium.errors import NoResultError, RunFailedError, UnknownNameError

_MISSING = object()


class RunResult:
    """A run: its status, T, R, F, per-task records and (``result["task"]``) task values.

    ``podium.run(...)`` returns one; ``podium.open_run(run_id)`` opens one of a past run.
    """

    def __init__(
        self, run: Mapping[str, Any], rows: Iterable[Any], values: Mapping[str, Any] | None, source: Any
    ) -> None:
        self._doc = dict(run)  # the read model's run object
        self._rows: dict[str, Any] = {r.task_id: r for r in rows}  # TaskFacts (or rows like them)
        self._objects: dict[str, dict[str, Any]] | None = None  # task objects, built when asked for
        self._values: dict[str, Any] = dict(values or {})
        self._source = source  # a StoreChoice: where values not yet read are (None: nowhere)
        self._records: dict[str, Any] | None = None
        self._artifacts: Any = None
        self._attention: list[str] | None = None  # the store's notes on the run, read with its results

    # -- the run -----------------------------------------------------------------------------
    @property
    def run_id(self) -> str:
        return str(self._doc["run_id"])

    @property
    def workflow(self) -> str:
        return str(self._doc["workflow"])

    @property
    def status(self) -> str:
        """``succeeded``, ``failed``, ``cancelled`` (or ``created``/``running`` for a live run)."""
        return str(self._doc["status"])

    @property
    def ok(self) -> bool:
        """True if the run succeeded."""
        return self.status == "succeeded"

    @property
    def params(self) -> dict[str, Any]:
        """The run's resolved parameters (secret values shown as ``***``)."""
        return dict(self._doc["params"])

    @property
    def T(self) -> float:
        """Makespan in seconds."""
        return float(self._doc["T"])

    @property
    def R(self) -> float:
        """Resource cost at the node prices the run recorded."""
        return float(self._doc["R"])

    @property
    def F(self) -> float:
        """The objective alpha*T + beta*R."""
        return float(self._doc["F"])

    @property
    def tasks(self) -> dict[str, dict[str, Any]]:
        """Task id -> its record (status, attempts, node, times, estimate, resources, usage,
        error: the task object of ``docs/json.md``)."""
        if self._objects is None:
            from podium.runtime.readmodel import task_object

            self._objects = {tid: task_object(r) for tid, r in self._rows.items()}
        return {tid: dict(t) for tid, t in self._objects.items()}

    @property
    def failed(self) -> dict[str, dict[str, Any]]:
        """Task id -> its failure (kind, type, message, frame), for each task that failed."""
        from podium.runtime.readmodel import error_object

        return {tid: error_object(r.error) or {} for tid, r in self._rows.items() if r.state == "failed"}

    @property
    def error(self) -> str | None:
        """Why the run did not succeed, in one line (None if it succeeded)."""
        if self.ok:
            return None
        failed = self.failed
        if not failed:
            return f"run {self.run_id} {self.status}"
        tid, err = next(iter(failed.items()))
        more = f" (and {len(failed) - 1} more failed tasks)" if len(failed) > 1 else ""
        return f"run {self.run_id} {self.status}: task {tid!r} {_how(err)}{more}"

    def raise_on_failure(self) -> RunResult:
        """This result if the run succeeded; else ``RunFailedError`` naming the failed task and why."""
        if not self.ok:
            raise RunFailedError(str(self.error), run_id=self.run_id, failed=self.failed)
        return self

    def as_json(self) -> dict[str, Any]:
        """The run as ``podium show RUN --json`` prints it (schema ``podium.run/1``), its
        ``artifacts`` with their lineage and its ``attention`` notes included (read from the
        store when it is kept)."""
        from podium.runtime.lineage import artifact_objects
        from podium.runtime.readmodel import attention_notes

        records = self._read_records() if self._source is not None else {}
        kept = {t: r for t, r in records.items() if r.encoding == "artifact"}
        notes = attention_notes(self._attention or ())
        return dict(
            self._doc, tasks=list(self.tasks.values()), attention=notes, artifacts=artifact_objects(kept)
        )

    # -- values ------------------------------------------------------------------------------
    def __getitem__(self, task: str) -> Any:
        t = self._rows.get(task) if isinstance(task, str) else None
        if t is None:
            raise UnknownNameError(f"run {self.run_id} has no task {task!r}{_suggest(task, self._rows)}")
        if t.state != "succeeded":
            raise NoResultError(f"task {task!r} of run {self.run_id} has no result: {_ended(t)}")
        value = self._values.get(task, _MISSING)
        if value is _MISSING:
            value = self._values[task] = self._load(task, t)
        return value

    def __contains__(self, task: object) -> bool:
        return task in self._rows

    def _load(self, task: str, t: Any) -> Any:
        if t.children is not None:  # a map: its items' values in order
            return [self[f"{task}[{i}]"] for i in range(int(t.children))]
        records = self._read_records()
        rec = records.get(task)
        if rec is None:
            raise NoResultError(
                f"task {task!r} of run {self.run_id} succeeded but its result is not in the store"
            )
        from podium.runtime import codec

        return codec.decode(rec, self._artifacts)

    def _read_records(self) -> dict[str, Any]:
        if self._records is None:
            if self._source is None:
                raise NoResultError(
                    f"run {self.run_id}: its results are not kept (no store to read them from)"
                )
            with self._source.open(read_only=True) as store:
                self._records = dict(store.results(self.run_id))
                self._attention = store.attention(self.run_id).get(self.run_id, [])
            self._artifacts = self._source.artifacts()
        return self._records

    def __repr__(self) -> str:
        return (
            f"RunResult(run_id={self.run_id!r}, workflow={self.workflow!r}, status={self.status!r}, "
            f"T={self.T:.3f}, tasks={len(self._rows)})"
        )


def _how(err: Mapping[str, Any]) -> str:
    kind, typ, msg = err.get("kind") or "user", err.get("type") or "Error", err.get("message") or ""
    return f"failed [{kind}]: {typ}: {msg}".replace("\n", " ")


def _ended(t: Any) -> str:
    from podium.runtime.readmodel import error_object

    err = error_object(t.error)
    if t.state == "failed" and err:
        return f"it {_how(err)}"
    if t.state == "skipped":
        return f"it was skipped ({t.skip_reason})" if t.skip_reason else "it was skipped"
    return f"it is {t.state}"


def _suggest(name: object, names: Mapping[str, Any]) -> str:
    if not isinstance(name, str):
        return ""
    close = difflib.get_close_matches(name, list(names), n=2, cutoff=0.6)
    if close:
        return f" (did you mean {' or '.join(repr(c) for c in close)}?)"
    return f" (its tasks: {', '.join(list(names)[:10])}{', ...' if len(names) > 10 else ''})"
