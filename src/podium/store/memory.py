"""MemoryStore: the ``Store`` Protocol in process memory, for tests and throw-away runs.

Invariants: the same observable behaviour as the durable backends (the conformance suite runs
it too): every write is checked in full before anything changes, so a rejected ``append`` leaves
no trace; data goes through the same JSON codec, so callers mutating their dicts afterwards
cannot alter what was stored. One lock guards all state, so readers on other threads are safe.
Nothing survives the process; ``request_cancel`` reaches only this instance. Results are not
tagged: nothing outside this process can write them.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from podium.errors import ConflictError, NotFoundError, StoreError
from podium.model.events import Event, ResultRecord, RunRecord
from podium.store import codec
from podium.store.logs import MemoryLogs


class MemoryStore:
    """Runs, events, results, cache and history held in dicts."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runs: dict[str, tuple[int, Any]] = {}  # run_id -> (ordinal, row)
        self._events: dict[str, dict[int, codec.EventRow]] = {}
        self._results: dict[str, dict[str, ResultRecord]] = {}
        self._cache: dict[str, ResultRecord] = {}
        self._history: dict[tuple[str, str], list[tuple[float, str, int, float]]] = {}
        self._cancel: set[str] = set()
        self._notes: dict[str, list[str]] = {}
        self._snapshots: dict[str, tuple[int, bytes]] = {}
        self.logs = MemoryLogs()  # what task attempts wrote (``store.logs``)
        self._counter = 0
        self._closed = False

    def __enter__(self) -> MemoryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("store is closed")

    def _known(self, run_id: str) -> None:
        if run_id not in self._runs:
            raise NotFoundError(f"run {run_id!r} not found")

    def _add(
        self, run_id: str, workflow: str, events: Sequence[Event], results: Sequence[ResultRecord]
    ) -> None:
        """Check everything, then apply; caller holds the lock."""
        rows = codec.event_rows(run_id, events)
        log = self._events.setdefault(run_id, {})
        dup = codec.duplicate_seqs(events) or sorted(e.seq for e in events if e.seq in log)
        if dup:
            raise ConflictError(codec.seq_conflict_message(run_id, dup))
        done = self._results.setdefault(run_id, {})
        dropped = {tid for _, tid in codec.invalidated(run_id, rows)}
        taken = codec.duplicate_tasks(results) or sorted(
            r.task_id for r in results if r.task_id in done and r.task_id not in dropped
        )
        if taken:
            raise ConflictError(codec.result_conflict_message(run_id, taken))
        history = codec.history_rows(workflow, run_id, events)
        for row in rows:
            log[row[1]] = row
        for tid in dropped:
            done.pop(tid, None)
        for r in results:
            done[r.task_id] = ResultRecord(r.task_id, r.attempt, bytes(r.data), r.checksum, r.encoding)
        for wf, task, ts, rid, seq, duration, _rss in history:
            self._history.setdefault((wf, task), []).append((ts, rid, seq, duration))

    def put_snapshot(self, run_id: str, seq: int, data: bytes) -> None:
        with self._lock:
            self._check_open()
            self._known(run_id)
            if seq > max(self._events.get(run_id, {}), default=0):
                raise StoreError(f"snapshot of run {run_id!r} at seq {seq} is ahead of its log")
            kept = self._snapshots.get(run_id)
            if kept is None or kept[0] <= seq:
                self._snapshots[run_id] = (seq, bytes(data))

    def snapshot(self, run_id: str) -> tuple[int, bytes] | None:
        with self._lock:
            self._check_open()
            return self._snapshots.get(run_id)

    def create_run(self, run: RunRecord, events: Sequence[Event]) -> None:
        row = codec.run_row(run)
        with self._lock:
            self._check_open()
            if run.run_id in self._runs:
                raise ConflictError(f"run {run.run_id!r} already exists")
            self._add(run.run_id, run.workflow, events, ())
            self._counter += 1
            self._runs[run.run_id] = (self._counter, row)

    def update_run(self, run_id: str, **fields: Any) -> None:
        updates = dict(codec.run_updates(run_id, fields))
        with self._lock:
            self._check_open()
            self._known(run_id)
            ordinal, row = self._runs[run_id]
            rid, wf, status, created, updated, params, source, owner = row
            self._runs[run_id] = (
                ordinal,
                (
                    rid,
                    wf,
                    updates.get("status", status),
                    created,
                    updates.get("updated_at", updated),
                    updates.get("params", params),
                    updates.get("source", source),
                    updates.get("owner", owner),
                ),
            )
            if "cancel_requested" in updates:
                if updates["cancel_requested"]:
                    self._cancel.add(run_id)
                else:
                    self._cancel.discard(run_id)

    def append(self, run_id: str, events: Sequence[Event], results: Sequence[ResultRecord] = ()) -> None:
        with self._lock:
            self._check_open()
            self._known(run_id)
            self._add(run_id, self._runs[run_id][1][1], events, results)

    def get_run(self, run_id: str) -> RunRecord:
        with self._lock:
            self._check_open()
            self._known(run_id)
            return codec.row_to_run(self._runs[run_id][1])

    def list_runs(self, limit: int = 50) -> list[RunRecord]:
        with self._lock:
            self._check_open()
            ordered = sorted(self._runs.values(), key=lambda v: (v[1][3], v[0]), reverse=True)
            return [codec.row_to_run(row) for _, row in ordered[: max(limit, 0)]]

    def events(self, run_id: str, after_seq: int = 0) -> list[Event]:
        with self._lock:
            self._check_open()
            log = self._events.get(run_id, {})
            rows = sorted((r for s, r in log.items() if s > after_seq), key=lambda r: r[1])
            return [codec.row_to_event(r[1:]) for r in rows]

    def results(self, run_id: str, artifacts_only: bool = False) -> dict[str, ResultRecord]:
        with self._lock:
            self._check_open()
            got = self._results.get(run_id, {})
            return {k: r for k, r in got.items() if r.encoding == "artifact" or not artifacts_only}

    def artifact_refs(self) -> list[bytes]:
        with self._lock:
            self._check_open()
            recs = [*(r for d in self._results.values() for r in d.values()), *self._cache.values()]
            return [r.data for r in recs if r.encoding == "artifact"]

    def cache_get(self, key: str) -> ResultRecord | None:
        with self._lock:
            self._check_open()
            return self._cache.get(key)

    def cache_put(self, key: str, result: ResultRecord) -> None:
        with self._lock:
            self._check_open()
            self._cache[key] = ResultRecord(
                result.task_id, result.attempt, bytes(result.data), result.checksum, result.encoding
            )

    def durations(self, workflow: str, task: str, limit: int = 20) -> list[float]:
        with self._lock:
            self._check_open()
            rows = sorted(self._history.get((workflow, task), ()), reverse=True)
            return [row[3] for row in rows[: max(limit, 0)]]

    def history(self, workflow: str, limit: int = 20) -> dict[str, list[float]]:
        with self._lock:
            self._check_open()
            return {
                task: [row[3] for row in sorted(rows, reverse=True)[: max(limit, 0)]]
                for (wf, task), rows in self._history.items()
                if wf == workflow and rows and limit > 0
            }

    def request_cancel(self, run_id: str) -> None:
        with self._lock:
            self._check_open()
            self._known(run_id)
            self._cancel.add(run_id)

    def cancel_requested(self, run_id: str) -> bool:
        with self._lock:
            self._check_open()
            return run_id in self._cancel

    def attention(self, run_id: str | None = None) -> dict[str, list[str]]:
        with self._lock:
            self._check_open()
            return {r: list(n) for r, n in self._notes.items() if run_id is None or r == run_id}

    def note_attention(self, run_id: str, message: str) -> None:
        """Mark ``run_id`` as needing a person's attention, saying why."""
        with self._lock:
            self._notes.setdefault(run_id, []).append(message)

    def close(self) -> None:
        self._closed = True

    def __repr__(self) -> str:
        return f"MemoryStore(runs={len(self._runs)})"
