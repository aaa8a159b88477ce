"""The server's ``/metrics``: every run the server's store holds, fed to one ``MetricsHub``.

At each scrape (``StoreMetrics.render``, blocking: a route runs it in a thread) the feed reads
the newest runs' headers and, for every run that is live or changed since the server started,
the events it has not fed yet (``store.events(run_id, after_seq)``), and hands them to
``hub.observe`` in ``seq`` order; then it renders the hub. Nothing runs between scrapes, so an
unscraped server pays nothing, and a run loop never waits for the server.

Invariants: each event of a run is fed once (a cursor per run: its last fed ``seq``); runs
that had ended before the server started are not fed (their history is not news); at most
``NEWEST`` runs are looked at per scrape, as the runs list does; the route is behind the
server's ``Guard`` like every other (Prometheus sends ``Authorization: Bearer TOKEN``).
"""

from __future__ import annotations

import threading
import time
from typing import Any

from podium.errors import NotFoundError
from podium.model import states as st

NEWEST = 200


class StoreMetrics:
    def __init__(self, store: Any, started: float | None = None) -> None:
        from podium.metrics import MetricsHub

        self.store = store
        self.hub = MetricsHub()
        self.started = time.time() if started is None else started
        self.cursor: dict[str, int] = {}  # run id -> last fed seq
        self._seen: dict[str, float] = {}  # run id -> updated_at when last fed
        self._lock = threading.Lock()  # one feed at a time: two scrapes never feed an event twice

    def feed(self) -> None:
        with self._lock:
            for r in self.store.list_runs(NEWEST):
                if self._seen.get(r.run_id) == r.updated_at:
                    continue
                old = r.status in st.RUN_FINISHED and r.updated_at < self.started
                if old and r.run_id not in self.cursor:
                    continue  # ended before this server started
                try:
                    events = self.store.events(r.run_id, self.cursor.get(r.run_id, 0))
                except NotFoundError:
                    continue
                if events:
                    self.hub.observe(r.run_id, events)
                    self.cursor[r.run_id] = events[-1].seq
                self._seen[r.run_id] = r.updated_at

    def render(self) -> tuple[bytes, str]:
        """The Prometheus text exposition of every run fed so far, and its content type."""
        from podium.metrics.exposition import render

        self.feed()
        return render(self.hub)
