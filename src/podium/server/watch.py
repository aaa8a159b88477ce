"""Watching every run's status: the live runs list and the trigger for notifications.

``RunWatcher.tick`` (every ``INTERVAL`` seconds) reads the newest runs' headers and the
runs it knows to be live, recomputes the summaries of those that changed or are live, and
hands them to the runs-list stream's subscribers. A run seen live (or created after the server
started) that is now finished is reported once to ``on_finished`` (the notifier). Runs that
were already finished when the server started are not reported. Blocking reads run in a
thread.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from podium.errors import NotFoundError
from podium.model import states as st
from podium.server import data

INTERVAL = 0.5
NEWEST = 200
KEEPALIVE = 15.0
_ACTIVE = frozenset({st.RUN_CREATED_STATE, st.RUN_RUNNING})


class RunWatcher:
    def __init__(
        self,
        store: Any,
        on_finished: Callable[[dict[str, Any]], object] | None = None,  # its result is ignored
        now: float | None = None,
    ) -> None:
        self.store = store
        self.on_finished = on_finished
        self.started = time.time() if now is None else now
        self.seen: dict[str, tuple[str, float]] = {}  # run_id -> (status, updated_at)
        self.live: set[str] = set()
        self.version = 0
        self.latest: dict[str, tuple[int, dict[str, Any]]] = {}  # run_id -> (version, summary)
        self.changed = asyncio.Event()

    def scan(self) -> list[dict[str, Any]]:
        """One pass (blocking): the summaries that changed since the last pass."""
        records = {r.run_id: r for r in self.store.list_runs(NEWEST)}
        for run_id in self.live - set(records):
            try:
                records[run_id] = self.store.get_run(run_id)
            except NotFoundError:
                self.live.discard(run_id)
        out = []
        for run_id, r in records.items():
            key = (r.status, r.updated_at)
            before = self.seen.get(run_id)
            if before == key and r.status not in _ACTIVE:
                continue
            self.seen[run_id] = key
            try:
                summary = data.run_summary(self.store, run_id)
            except NotFoundError:
                continue
            out.append(summary)
            status = summary["status"]
            if status in _ACTIVE:
                self.live.add(run_id)
            elif status in st.RUN_FINISHED:
                report = (
                    run_id in self.live  # seen live
                    or (before is None and r.created_at >= self.started)  # started and ended between passes
                    or (before is not None and before != key)  # resumed and ended again between passes
                )
                self.live.discard(run_id)
                if report and self.on_finished is not None:
                    self.on_finished(summary)
        return out

    def publish(self, summaries: list[dict[str, Any]]) -> None:
        if not summaries:
            return
        self.version += 1
        for s in summaries:
            self.latest[s["run_id"]] = (self.version, s)
        if len(self.latest) > 4 * NEWEST:
            keep = sorted(self.latest.items(), key=lambda kv: kv[1][0])[-2 * NEWEST :]
            self.latest = dict(keep)
        changed, self.changed = self.changed, asyncio.Event()
        changed.set()

    async def tick(self) -> None:
        self.publish(await asyncio.to_thread(self.scan))

    async def run(self) -> None:
        while True:
            try:
                await self.tick()
            except Exception:  # a store hiccup: the next tick tries again
                pass
            await asyncio.sleep(INTERVAL)

    async def subscribe(self) -> AsyncIterator[list[dict[str, Any]]]:
        """Batches of changed run summaries (the first batch: every live run); an empty
        batch after ``KEEPALIVE`` seconds without changes."""
        mine = self.version
        first = [s for v, s in self.latest.values() if s["status"] in _ACTIVE]
        if first:
            yield first
        while True:
            changed = self.changed
            batch = [s for v, s in self.latest.values() if v > mine]
            if batch:
                mine = self.version
                yield batch
                continue
            try:
                await asyncio.wait_for(changed.wait(), KEEPALIVE)
            except TimeoutError:
                yield []
