"""``RunTracker``: the engine hook that turns one run's committed events into metric updates.

The engine calls a hook after each committed append with the batch and the run's view. The
tracker does O(batch) dictionary arithmetic under the hub's lock and nothing else: no
formatting, no I/O, no prometheus_client (gauges that depend on the whole run, such as tasks
by state or the cost so far, are computed at scrape time from the view it keeps).

Invariants: every task event counts once as a transition; an attempt is what a ``TaskStarted``
opened, and it ends once (succeeded, failed, retrying, cancelled or reset), releasing the
resources it held on its node; its cost is its duration times its node's prices, exactly as
the run summary prices it; a run leaves the live set, and its per-run series with it, at its
final event.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from podium.metrics.catalog import DURATION_BUCKETS, RATIO_BUCKETS
from podium.model import events as ev
from podium.model.cluster import DEFAULT_PRICES, price_per_second
from podium.model.usage import attempt_usage

if TYPE_CHECKING:
    from podium.metrics.state import MetricState
    from podium.model.events import Event

_QUEUED, _STARTED, _SUCCEEDED, _FAILED = ev.TASK_QUEUED, ev.TASK_STARTED, ev.TASK_SUCCEEDED, ev.TASK_FAILED
#: Events that end an open attempt, and the outcome they give it when no error kind says more.
_ENDS = {
    ev.TASK_SUCCEEDED: "succeeded",
    ev.TASK_FAILED: "user",
    ev.TASK_RETRYING: "user",
    ev.TASK_CANCELLED: "cancelled",
    ev.TASK_RESET: "interrupted",
}
_RUN_END = {ev.RUN_SUCCEEDED: "succeeded", ev.RUN_FAILED: "failed", ev.RUN_CANCELLED: "cancelled"}
_NO_RES: dict[str, float] = {}


class RunTracker:
    """The hook of one run (``Engine(hooks=[hub.track(run_id)])``)."""

    def __init__(self, hub: MetricState, run_id: str, tasks_total: int | None = None) -> None:
        self.hub = hub
        self.run_id = run_id
        self.tasks_total = tasks_total
        self.view: Any = None
        self.workflow = ""
        self.running: dict[str, tuple[str, dict[str, float], float]] = {}  # task -> (node, res, ts)
        self.queued: dict[str, float] = {}  # task -> ready since (event time)
        self.metas: dict[tuple[str, int], Mapping[str, Any]] = {}  # the executor's podium_meta
        self.cost = 0.0
        self.planned: float | None = None
        self._rates: dict[tuple[int, str], tuple[dict[str, float], float]] = {}
        self._durations: dict[str, Any] = {}
        self._wait: Any = None

    def __call__(self, events: Sequence[Event], view: Any) -> None:
        hub = self.hub
        self.view = view
        if not self.workflow:
            self.workflow = str((view.meta or {}).get("workflow") or "")
        wf = self.workflow
        with hub.lock:
            transitions, running, queued = hub.transitions, self.running, self.queued
            for e in events:
                _seq, typ, tid, attempt, ts, data = e
                if tid is None:
                    self._run_event(typ, data, ts)
                    continue
                name = tid if tid[-1] != "]" else tid[: tid.index("[")]
                key = (wf, name, typ)
                transitions[key] = transitions.get(key, 0) + 1
                if typ == _STARTED:
                    node = data.get("node") or ""
                    res = data.get("res") or _NO_RES
                    running[tid] = (node, res, ts)
                    hub.hold(node, res, 1.0)
                    since = queued.pop(tid, None)
                    if since is not None:
                        wait = self._wait
                        if wait is None:
                            wait = self._wait = hub.histogram(hub.queue_waits, (wf,), DURATION_BUCKETS)
                        wait.observe(max(0.0, ts - since))
                elif typ == _QUEUED:
                    queued[tid] = ts
                elif typ in _ENDS:
                    held = running.pop(tid, None)
                    if held is not None:
                        self._attempt_ended(name, tid, attempt, typ, data, held)
                    elif queued:
                        queued.pop(tid, None)
                    if typ == _FAILED:
                        kind = str((data.get("error") or {}).get("kind") or "user")
                        k = (wf, name, kind)
                        hub.failures[k] = hub.failures.get(k, 0) + 1

    def _attempt_ended(
        self,
        name: str,
        tid: str,
        attempt: int,
        typ: str,
        data: Mapping[str, Any],
        held: tuple[str, dict[str, float], float],
    ) -> None:
        hub, wf = self.hub, self.workflow
        node, res, _ts = held
        hub.hold(node, res, -1.0)
        outcome = _ENDS[typ]
        if typ != _SUCCEEDED and outcome == "user":
            outcome = str((data.get("error") or {}).get("kind") or "user")
        key = (wf, name, outcome)
        hub.attempts[key] = hub.attempts.get(key, 0) + 1
        duration = data.get("duration")
        if duration is not None and typ != ev.TASK_CANCELLED and typ != ev.TASK_RESET:
            # the run summary's R: every attempt's duration priced at its node (see summarize)
            cost = self._rate(node, res) * duration
            if cost:
                self.cost += cost
                k = (wf, node)
                hub.cost[k] = hub.cost.get(k, 0.0) + cost
            if typ == _SUCCEEDED:
                hist = self._durations.get(name)
                if hist is None:
                    hist = self._durations[name] = hub.histogram(hub.durations, (wf, name), DURATION_BUCKETS)
                hist.observe(duration)
        meta = self.metas.pop((tid, attempt), None) if self.metas else None
        usage = attempt_usage(data, meta)
        if usage is not None:
            hub.record_usage((wf, name), res, usage, duration)

    def _rate(self, node: str, res: dict[str, float]) -> float:
        """Cost per second of holding ``res`` on ``node`` at the prices the run started with."""
        key = (id(res), node)
        hit = self._rates.get(key)
        if hit is not None and hit[0] is res:
            return hit[1]
        prices = ((self.view.meta or {}).get("prices") or {}).get(node) if self.view is not None else None
        rate = price_per_second(res, prices if isinstance(prices, Mapping) else DEFAULT_PRICES)
        self._rates[key] = (res, rate)
        return rate

    def _run_event(self, typ: str, data: Mapping[str, Any], ts: float) -> None:
        hub, wf = self.hub, self.workflow
        if typ == ev.RUN_STARTED:
            hub.runs_started[(wf,)] = hub.runs_started.get((wf,), 0) + 1
            hub.live[self.run_id] = self
            self._rates.clear()  # prices are those of this start
        elif typ == ev.PLAN_MADE:
            t = data.get("T")
            self.planned = float(t) if isinstance(t, int | float) and t > 0 else self.planned
        elif typ in _RUN_END:
            key = (wf, _RUN_END[typ])
            hub.runs_ended[key] = hub.runs_ended.get(key, 0) + 1
            start = self.view.started_at if self.view is not None else None
            if start is not None:
                makespan = max(0.0, ts - start)
                hub.histogram(hub.makespans, (wf,), DURATION_BUCKETS).observe(makespan)
                if self.planned:
                    hub.histogram(hub.plan_ratios, (wf,), RATIO_BUCKETS).observe(makespan / self.planned)
            self.end()

    def end(self) -> None:
        """Leave the live set: release what unfinished attempts held, drop per-run state.
        The caller holds the hub's lock."""
        for node, res, _ts in self.running.values():
            self.hub.hold(node, res, -1.0)
        self.running.clear()
        self.queued.clear()
        self.metas.clear()
        self.hub.live.pop(self.run_id, None)

    # -- read at scrape time (the hub's lock is held) ---------------------------------------
    def live_cost(self, now: float) -> float:
        """R so far: ended attempts plus what running ones have cost until ``now``."""
        extra = 0.0
        for node, res, started in self.running.values():
            extra += self._rate(node, res) * max(0.0, now - started)
        return self.cost + extra

    def objective(self) -> tuple[float, float]:
        o = (self.view.meta or {}).get("objective") or {} if self.view is not None else {}
        return float(o.get("alpha", 1.0)), float(o.get("beta", 0.0))
