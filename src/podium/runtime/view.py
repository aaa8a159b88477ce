"""The run state as a fold of its events: ``RunView``.

``fold(events)`` replays a run's log; the engine applies each event it appends with
``apply`` so its view never diverges from the log. Invariants: every transition is checked
against ``podium.model.states`` (an illegal one raises ``IllegalTransition``); the view holds
no information that is not in the events; map items (``name[i]``) appear when their map's
``TaskExpanded`` is applied.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from podium.model import events as ev
from podium.model import states as st
from podium.model.events import Event


class TaskView:
    """What the log says about one task instance.

    Defaults live on the class, so making one (once per task per run) costs one attribute
    write; ``resources`` and ``error`` are replaced, never mutated in place.
    """

    state: str = st.PENDING
    attempt: int = 0
    failures: int = 0  # failed attempts that count against the retry policy since the last reset
    lost: int = 0  # attempts whose worker was lost (do not consume retries)
    ooms: int = 0  # attempts that ran out of memory (retried with more, up to a cap)
    memory: int | None = None  # memory granted to the next attempt after an out-of-memory
    node: str | None = None
    resources: dict[str, float] = {}  # a shared default, only ever replaced
    queued_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    duration: float | None = None
    error: dict[str, Any] | None = None
    cached: bool = False
    skip_reason: str | None = None
    children: int | None = None  # map: number of items once expanded
    gpus: list[int] | None = None  # GPUs its last attempt held on ``node``
    ranks: list[list[Any]] | None = None  # a gang's last attempt: ``[node, gpus]`` per rank
    busy: float = 0.0  # seconds spent running, over all attempts (for the cost R)
    est: Any = None  # the duration estimate its last attempt started with (as recorded)
    usage: dict[str, Any] | None = None  # the usage record of its last attempt that had one

    def __init__(self, task_id: str) -> None:
        self.task_id = task_id

    def __repr__(self) -> str:
        return f"TaskView({self.task_id!r}, {self.state!r}, attempt={self.attempt})"


_TRANSITIONS = st.TASK_TRANSITIONS
_STARTED, _SUCCEEDED, _QUEUED = ev.TASK_STARTED, ev.TASK_SUCCEEDED, ev.TASK_QUEUED
_USAGE = "usage"  # model.usage.USAGE_KEY: the measured usage in an attempt's end event


class RunView:
    """A run's state. Build with ``fold``; advance with ``apply``."""

    __slots__ = (
        "active",
        "created_at",
        "finished_at",
        "last_seq",
        "last_ts",
        "meta",
        "plan",
        "span_start",
        "started_at",
        "state",
        "tasks",
    )

    def __init__(self) -> None:
        self.state: str | None = None
        self.tasks: dict[str, TaskView] = {}
        self.last_seq = 0
        self.created_at: float | None = None
        self.started_at: float | None = None
        self.finished_at: float | None = None
        self.meta: dict[str, Any] = {}
        self.plan: dict[str, Any] | None = None
        self.last_ts: float | None = None  # time of the last event
        self.active = 0.0  # seconds of closed active spans (RunStarted to the end or the crash)
        self.span_start: float | None = None  # start of the open active span

    def active_time(self) -> float:
        """Seconds the run had an owner running it: its active spans, the open one up to the
        last event (the idle time between a crash and its resume is not counted)."""
        open_span = 0.0
        if self.span_start is not None and self.last_ts is not None:
            open_span = max(0.0, self.last_ts - self.span_start)
        return self.active + open_span

    def task(self, task_id: str) -> TaskView:
        t = self.tasks.get(task_id)
        if t is None:
            t = self.tasks[task_id] = TaskView(task_id)
        return t

    def apply(self, e: Event) -> None:
        seq, typ, task_id, attempt, ts, data = e
        if seq != self.last_seq + 1:
            raise st.IllegalTransition(f"event seq {seq} after {self.last_seq}: the log has a gap")
        self.last_seq = seq
        if task_id is None:
            self._apply_run(e, self.last_ts)
            self.last_ts = ts
            return
        self.last_ts = ts
        t = self.tasks.get(task_id)
        if t is None:
            t = self.tasks[task_id] = TaskView(task_id)
        try:
            t.state = _TRANSITIONS[(t.state, typ)]
        except KeyError:
            raise st.IllegalTransition(f"task {task_id!r} in state {t.state!r} cannot take {typ}") from None
        if typ == _STARTED:
            t.attempt = attempt
            t.started_at = ts
            t.node = data.get("node")
            t.resources = data.get("res", t.resources)
            t.est = data.get("est")
            if len(data) > 2:  # a granted attempt (GPUs, several workers)
                t.gpus, t.ranks = data.get("gpus"), data.get("ranks")
        elif typ == _SUCCEEDED:
            t.finished_at = ts
            d = data.get("duration")
            if d is not None:
                t.duration = d
                t.busy += d
            if data.get("cached"):
                t.cached = True
            if "started" in data:  # where and when its worker really ran it, if it told
                t.started_at = data["started"]
            if "node" in data:
                t.node = data["node"]
            if t.error is not None:
                t.error = None
            if _USAGE in data:
                t.usage = data[_USAGE]
        elif typ == _QUEUED:
            t.queued_at = ts
        elif typ in (ev.TASK_FAILED, ev.TASK_RETRYING):
            t.finished_at = ts
            t.error = data.get("error")
            d = data.get("duration")
            if d is not None:
                t.busy += d
            if _USAGE in data:
                t.usage = data[_USAGE]
            kind = (t.error or {}).get("kind")
            if kind == "worker_lost":
                t.lost += 1
            free = data.get("free")  # a retry the engine grants without using the task's retries
            if free == "oom":
                t.ooms += 1
                t.memory = int(data["memory"])
            elif not free:
                t.failures += 1
        elif typ == ev.TASK_SKIPPED:
            t.skip_reason = e.data.get("reason")
        elif typ == ev.TASK_CANCELLED:
            t.finished_at = e.ts
            if _USAGE in data:
                t.usage = data[_USAGE]
        elif typ == ev.TASK_EXPANDED:
            # items get a view with their first event: a million-item map costs nothing here
            before, t.children = t.children, int(e.data["count"])
            if before is not None and before > t.children:  # expanded again (cleared) into fewer
                for i in range(t.children, before):
                    self.tasks.pop(f"{task_id}[{i}]", None)
        elif typ == ev.TASK_INVALIDATED:
            t.error = {"kind": "corrupt", "message": data.get("reason", "result failed its checksum")}
            t.cached = False
        elif typ == ev.TASK_RESET:
            t.failures = 0
            t.skip_reason = None
            t.error = None
        elif typ == ev.TASK_CLEARED:  # ``resume --from``: runs again from scratch
            t.failures = 0
            t.skip_reason = None
            t.error = None
            t.cached = False

    def _apply_run(self, e: Event, before: float | None) -> None:
        self.state = st.next_run_state(self.state, e.type)
        if e.type == ev.RUN_CREATED:
            self.created_at = e.ts
            self.meta = dict(e.data)
        elif e.type == ev.RUN_STARTED:
            if self.started_at is None:
                self.started_at = e.ts
            if "prices" in e.data:
                self.meta["prices"] = e.data["prices"]
            self.finished_at = None
            if self.span_start is not None:  # the previous span ended in a crash: at its last event
                self.active += max(0.0, (e.ts if before is None else before) - self.span_start)
            self.span_start = e.ts
        elif e.type == ev.PLAN_MADE:
            self.plan = dict(e.data)
        elif e.type == ev.SOURCE_CHANGED:  # the run goes on with this version of its file
            self.meta["sha256"] = e.data.get("sha256")
        elif e.type in (ev.RUN_SUCCEEDED, ev.RUN_FAILED, ev.RUN_CANCELLED):
            self.finished_at = e.ts
            if self.span_start is not None:
                self.active += max(0.0, e.ts - self.span_start)
                self.span_start = None
            for name, seconds in (e.data.get("services") or {}).items():
                self.task(name).busy += float(seconds)  # a service held its resources this long

    def counts(self) -> dict[str, int]:
        """Tasks per state; map items that have had no event yet count as pending."""
        out = dict.fromkeys(st.TASK_STATES, 0)
        expected = seen = 0
        for t in self.tasks.values():
            out[t.state] += 1
            if t.children:
                expected += t.children
            elif t.task_id.endswith("]"):
                seen += 1
        out[st.PENDING] += max(0, expected - seen)
        return out


def fold(events: Iterable[Event]) -> RunView:
    view = RunView()
    for e in events:
        view.apply(e)
    return view


def is_item(task_id: str) -> bool:
    """True for a map item id like ``train[3]``."""
    return task_id.endswith("]") and "[" in task_id


def base_name(task_id: str) -> str:
    """``train[3]`` -> ``train``; other ids unchanged."""
    return task_id[: task_id.index("[")] if is_item(task_id) else task_id


def task_row(t: TaskView) -> dict[str, Any]:
    """The fields of the read model's ``TaskRow`` (schema ``podium.run/1``) that the view
    knows, shared by the server's API and the run report; each adds attempts, usage, error."""
    tid, name, index = t.task_id, t.task_id, None
    if is_item(tid):
        name, _, rest = tid.partition("[")
        index = int(rest[:-1]) if rest[:-1].isdigit() else None
    return {
        "task_id": tid,
        "name": name,
        "map_index": index,
        "status": t.state,
        "node": t.node,
        "queued_at": t.queued_at,
        "started_at": t.started_at,
        "finished_at": t.finished_at,
        "duration": t.duration,
        "estimate": None,
        "resources": dict(t.resources or {}),
        "cached": bool(t.cached),
        "skip_reason": t.skip_reason,
        "children": t.children,
    }


def recorded_deps(view: Any) -> dict[str, list[str]] | None:
    """The task graph ``RunCreated`` recorded (name -> dependency names), or None when it did
    not (an older run, or a workflow too large to record) or the record is malformed."""
    deps = (view.meta or {}).get("deps")
    if not isinstance(deps, Mapping):
        return None
    out: dict[str, list[str]] = {}
    for name, ds in deps.items():
        if not isinstance(name, str) or not isinstance(ds, list) or not all(isinstance(d, str) for d in ds):
            return None
        out[name] = list(ds)
    return out
