"""Live events: a run's event log as a stream that any number of clients follow.

One ``Feed`` per watched run polls the store for events after the last one it has seen (every
``POLL`` seconds while the run is live; the SQLite store's readers lag a writer's journal by
at most 50 ms, so an event is on the stream well within 300 ms of its commit in any process)
and keeps the most recent ones in memory. A subscriber starts after the sequence number it
names (``?after=`` or the SSE ``Last-Event-ID`` header), reads what it missed from the store,
then follows the feed. Invariants: a subscriber receives every event after its starting point
exactly once and in order, whatever it missed while disconnected; the store is read by one
poll per run, not one per client.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any

#: Seconds between polls of a live run.
POLL = 0.04
#: Seconds between polls of a run whose last event ended it (it may be resumed later).
POLL_IDLE = 1.0
#: Seconds without events before a keep-alive comment is sent.
KEEPALIVE = 15.0
#: Events a feed keeps in memory for subscribers that are a little behind.
RECENT = 8192
#: Events one store read returns at most.
PAGE = 2000
_FINAL = frozenset({"RunSucceeded", "RunFailed", "RunCancelled"})

Reader = Callable[[str, int, int], list[dict[str, Any]]]  # (run_id, after_seq, limit) -> events


class Feed:
    def __init__(self, run_id: str, last: int) -> None:
        self.run_id = run_id
        self.last = last
        self.recent: deque[dict[str, Any]] = deque(maxlen=RECENT)
        self.changed = asyncio.Event()
        self.subscribers = 0
        self.task: asyncio.Task[None] | None = None
        self.ended = False  # the last event seen ended the run


class EventHub:
    """Feeds of live runs, read through ``read`` (a blocking function, run in threads)."""

    def __init__(self, read: Reader, poll: float = POLL) -> None:
        self.read = read
        self.poll = poll
        self.feeds: dict[str, Feed] = {}

    async def _fetch(self, run_id: str, after: int) -> list[dict[str, Any]]:
        return await asyncio.to_thread(self.read, run_id, after, PAGE)

    async def _pump(self, feed: Feed) -> None:
        while feed.subscribers > 0:
            try:
                events = await self._fetch(feed.run_id, feed.last)
            except Exception:  # a store hiccup: try again at the next poll
                events = []
            if events:
                feed.recent.extend(events)
                feed.last = events[-1]["seq"]
                feed.ended = events[-1]["type"] in _FINAL
                changed, feed.changed = feed.changed, asyncio.Event()
                changed.set()
                if len(events) >= PAGE:
                    continue
            await asyncio.sleep(POLL_IDLE if feed.ended else self.poll)

    def _feed(self, run_id: str, head: int) -> Feed:
        feed = self.feeds.get(run_id)
        if feed is None:
            feed = self.feeds[run_id] = Feed(run_id, head)
        feed.subscribers += 1
        if feed.task is None or feed.task.done():
            feed.task = asyncio.get_running_loop().create_task(self._pump(feed))
        return feed

    def _leave(self, feed: Feed) -> None:
        feed.subscribers -= 1
        if feed.subscribers <= 0:
            self.feeds.pop(feed.run_id, None)
            if feed.task is not None:
                feed.task.cancel()

    async def subscribe(self, run_id: str, after: int, head: int) -> AsyncIterator[list[dict[str, Any]]]:
        """Batches of events after ``after``, in order; an empty batch after ``KEEPALIVE``
        seconds without any (time for a keep-alive). ``head``: the run's last committed
        sequence number now (a new feed follows from there; older events come from the store)."""
        feed = self._feed(run_id, head)
        pos = min(after, head)
        try:
            while True:
                changed = feed.changed
                recent = feed.recent
                if pos < feed.last and (not recent or recent[0]["seq"] > pos + 1):
                    missed = await self._fetch(run_id, pos)  # older than the feed remembers
                    if missed:
                        pos = missed[-1]["seq"]
                        yield missed
                        continue
                batch = [e for e in recent if e["seq"] > pos] if recent and recent[-1]["seq"] > pos else []
                if batch:
                    pos = batch[-1]["seq"]
                    yield batch
                    continue
                try:
                    await asyncio.wait_for(changed.wait(), KEEPALIVE)
                except TimeoutError:
                    yield []
        finally:
            self._leave(feed)

    async def close(self) -> None:
        for feed in list(self.feeds.values()):
            if feed.task is not None:
                feed.task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await feed.task
        self.feeds.clear()


def sse(data: Any, *, event: str | None = None, id: int | None = None) -> bytes:
    """One server-sent event."""
    lines = []
    if id is not None:
        lines.append(f"id: {id}")
    if event is not None:
        lines.append(f"event: {event}")
    lines.append("data: " + json.dumps(data, separators=(",", ":"), ensure_ascii=False))
    return ("\n".join(lines) + "\n\n").encode()


KEEPALIVE_COMMENT = b": keep-alive\n\n"
RETRY = b"retry: 1000\n\n"
