"""Schedules: cron slots of registered workflows, each started once.

``Scheduler.tick(now)`` (every few seconds, with the clock injected) looks at each schedule's
slots between the point it has considered up to (its cursor, in the server's records) and
``now``. A slot is claimed in the records before its run starts, so no slot ever starts twice,
across restarts included (a server that dies between the claim and the start loses that slot
rather than repeating it). Without ``catchup`` only a slot less than ``GRACE`` seconds old
starts; older slots, missed while the server was down, are skipped. With ``catchup`` every
missed slot starts, oldest first (at most ``MAX_CATCHUP`` per tick). A schedule seen for
the first time starts from now: nothing before the server first saw it counts as missed.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from podium.server.config import Schedule
from podium.server.state import ServerState

GRACE = 60.0
MAX_CATCHUP = 100
log = logging.getLogger("podium.server")


@dataclass(frozen=True)
class Entry:
    key: str
    workflow: str
    schedule: Schedule


def schedule_key(workflow: str, s: Schedule) -> str:
    """A schedule's identity: its workflow, expression, zone and params (edit one: a new schedule)."""
    text = json.dumps([workflow, s.cron.text, s.timezone, s.params], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class Scheduler:
    def __init__(
        self,
        entries: list[Entry],
        state: ServerState,
        start: Callable[[str, dict[str, Any]], str],
    ) -> None:
        """``start(workflow, params) -> run_id`` starts a run (raising on failure)."""
        self.entries = entries
        self.state = state
        self.start = start

    @classmethod
    def of(cls, catalog: Any, state: ServerState, start: Callable[[str, dict[str, Any]], str]) -> Scheduler:
        entries = [
            Entry(schedule_key(name, s), name, s)
            for name, reg in sorted(catalog.items.items())
            for s in reg.entry.schedules
        ]
        return cls(entries, state, start)

    def tick(self, now: float) -> list[tuple[str, float, str | None]]:
        """Start the runs due at ``now``; ``(workflow, slot, run id or None)`` for each slot claimed."""
        fired = []
        for e in self.entries:
            cursor = self.state.cursor(e.key)
            if cursor is None:
                self.state.set_cursor(e.key, now)
                continue
            cron, tz = e.schedule.cron, e.schedule.tz
            if e.schedule.catchup:
                slots = cron.slots(tz, cursor, now, limit=MAX_CATCHUP)
            else:
                if cursor < now - GRACE and cron.slots(tz, cursor, now - GRACE, limit=1):
                    log.info("schedule %s of %s: skipped slots missed before now", cron.text, e.workflow)
                slots = cron.slots(tz, max(cursor, now - GRACE), now, limit=MAX_CATCHUP)
            for slot in slots:
                if not self.state.claim_slot(e.key, slot, now):
                    continue
                run_id: str | None = None
                try:
                    run_id = self.start(e.workflow, dict(e.schedule.params))
                    self.state.slot_run(e.key, slot, run_id)
                except Exception as err:  # the slot stays claimed: it is not tried twice
                    self.state.slot_run(e.key, slot, f"error: {err}")
                    log.warning("schedule %s of %s: %s", e.schedule.cron.text, e.workflow, err)
                fired.append((e.workflow, slot, run_id))
            # the cursor moves to the last slot considered (all of them, or the catch-up cap)
            self.state.set_cursor(e.key, slots[-1] if len(slots) >= MAX_CATCHUP else now)
        return fired

    def describe(self, now: float) -> list[dict[str, Any]]:
        out = []
        for e in self.entries:
            s = e.schedule
            fired = self.state.fired(e.key)
            last = fired[-1] if fired else None
            out.append(
                {
                    "workflow": e.workflow,
                    "cron": s.cron.text,
                    "timezone": s.timezone,
                    "params": s.params,
                    "catchup": s.catchup,
                    "next": s.cron.next_after(s.tz, now),
                    "last": None if last is None else {"slot": last[0], "run": last[1]},
                }
            )
        return out
