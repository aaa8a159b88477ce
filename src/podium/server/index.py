"""An in-memory index of every run's header, newest first, for the runs list.

Plain data and a lock, no store access: ``podium.server.data`` fills it (the whole list now and
then, the newest headers and the live runs on every use) so the list can be filtered and paged
without decoding every row of the store on each request.
"""

from __future__ import annotations

import math
import threading
import time

from podium.model import states as st
from podium.model.events import RunRecord

_ACTIVE = frozenset({st.RUN_CREATED_STATE, st.RUN_RUNNING})


class RunIndex:
    """Every run's header in memory, newest first: the runs list filters and pages it without
    decoding every row of the store on each request. The newest ``NEWEST`` headers and the live
    runs are read again on every use; the whole list in the background every ``FULL_REFRESH``
    seconds (so a filter on the status of an old run that was resumed may lag that long)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.records: dict[str, RunRecord] = {}
        self.order: list[str] = []
        self.at = -math.inf
        self.refreshing = False

    def rebuild(self, records: list[RunRecord]) -> None:
        with self.lock:
            self.records = {r.run_id: r for r in records}
            self.order = [r.run_id for r in records]
            self.at = time.monotonic()

    def merge(self, records: list[RunRecord]) -> bool:
        """Add or update headers; False if they do not reach back to known runs (a gap)."""
        with self.lock:
            fresh = [r for r in records if r.run_id not in self.records]
            for r in records:
                self.records[r.run_id] = r
            if fresh:
                self.order = [r.run_id for r in sorted(fresh, key=lambda r: -r.created_at)] + self.order
            return len(fresh) < len(records) or not records

    def live(self) -> list[str]:
        with self.lock:
            return [k for k, r in self.records.items() if r.status in _ACTIVE]

    def listing(self) -> list[RunRecord]:
        with self.lock:
            return [self.records[k] for k in self.order]
