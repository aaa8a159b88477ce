"""The run loop's state, as data: ``RunState`` and the named records it holds.

Everything the parts of the loop share lives here, in one object that the loop
(``loop.RunLoop``: turns, dispatch, submit, completions) and its collaborators (``readiness``,
``failures``, ``lanes``, ``planning.PlanFollower``) receive. They change it; nothing else does,
and only under the loop's turn lock. Entries of its queues and tables are named records, not
positional tuples. The hot path builds them with ``tuple.__new__``: the same record without
the NamedTuple's Python-level ``__new__`` (measured: about 0.1 us less a record, 0.14 us
against 0.23 us; a plain tuple takes 0.08 us).

Invariants (kept by the loop and its collaborators):
- a task instance is in at most one of ``ready``, ``timers``, ``running`` and ``queued``;
- ``free[node]`` is the node's capacity minus the needs of the calls running there (a lane's
  hold counts once, however many calls wait in it), never below zero beyond ``EPS``; likewise
  ``gpus[node]`` holds the device shares of the calls running there (``grants``);
- ``buf`` holds the events applied to ``view`` since the last commit, in order; nothing in
  ``to_submit`` is submitted before ``buf`` is committed;
- records and need dicts are never mutated once made (events share them).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from typing import Any, NamedTuple, Protocol

from podium.learn.fit import Model
from podium.learn.profile import input_size
from podium.model import events as ev
from podium.model import states as st
from podium.model.cluster import Node
from podium.model.devices import GpuPool
from podium.model.events import Event, ResultRecord
from podium.model.resources import EPS, Resources, fits
from podium.model.task import Grant, TaskCall, TaskSpec
from podium.model.workflow import Workflow
from podium.runtime.view import RunView
from podium.types import ArtifactStore

_UNFINISHED = (st.FAILED, st.CANCELLED, st.PENDING, st.QUEUED, st.RUNNING, st.RETRYING, st.EXPANDED)


class Emit(Protocol):
    """Record an event: apply it to the view and buffer it for the next commit."""

    def __call__(
        self, typ: str, task_id: str | None = None, attempt: int = 0, data: dict[str, Any] | None = None
    ) -> None: ...


class Ready(NamedTuple):
    """A task in the ready heap (``heapq``: the smallest first)."""

    key: float  #: minus the task's dispatch priority, so the highest priority pops first
    seq: int  #: when it became ready: first come, first served among equal priorities (minus 2**40:
    #: ahead of them, for work a lost worker took with it)
    task_id: str  #: the instance id (``name`` or ``name[i]`` for an item of a map)
    name: str  #: its spec name


class Timer(NamedTuple):
    """A retry waiting for its delay (in the ``timers`` heap)."""

    at: float  #: when it is due, on the clock's monotonic timer
    seq: int
    task_id: str


class Running(NamedTuple):
    """A started attempt whose call has not completed."""

    task_id: str
    attempt: int
    node: str
    need: dict[str, float]  #: what it holds on ``node`` (returned to ``free`` when it ends)
    started: float  #: monotonic time it started
    #: what its workers hold, for a task with GPUs or several workers (then ``need`` is not
    #: returned on its own: each grant returns its share; see ``grants.Grants``)
    grants: tuple[Grant, ...] = ()


class Waiting(NamedTuple):
    """A call submitted behind a running call in a lane, not started yet."""

    task_id: str
    attempt: int
    need: dict[str, float]
    expected: float  #: seconds it is expected to run


class Submission(NamedTuple):
    """A call dispatched this turn, submitted once the turn's events are committed."""

    call: TaskCall
    need: dict[str, float]
    lane: Lane | None  #: the lane it opens (starts now) or waits in
    expected: float | None  #: None: it starts now; else it waits in ``lane`` this many seconds


class Lane:
    """A running call's hold on a node and the calls waiting behind it (see ``lanes``)."""

    __slots__ = ("backlog", "end", "need", "node", "tail", "waiting")

    def __init__(self, node: str, need: dict[str, float], end: float) -> None:
        self.node = node
        self.need = need  # the hold: resources of the call that opened the lane
        self.end = end  # when its running call is expected to end (monotonic; inf: unknown)
        self.backlog = 0.0  # expected seconds of the waiting calls
        self.tail: Future[Any] | None = None  # the last call submitted to the lane
        # waiting calls in order; None is a place reserved at dispatch, filled at submit
        self.waiting: deque[Future[Any] | None] = deque()


class Expansion:
    """A map whose items are being queued a chunk at a time (``Readiness.expand_more``):
    ``items`` of argument ``over``, the next to queue at index ``next``."""

    __slots__ = ("config", "items", "kwargs", "name", "next", "over")

    def __init__(
        self, name: str, over: str, kwargs: dict[str, Any], config: dict[str, Any], items: list[Any]
    ) -> None:
        self.name, self.over, self.kwargs, self.config, self.items = name, over, kwargs, config, items
        self.next = 0


class RunState:
    """The shared state of one run (see the module docstring)."""

    __slots__ = (
        "artifacts",
        "boost",
        "boost_res",
        "buf",
        "buf_results",
        "cache_keys",
        "cancelling",
        "counter",
        "dirty",
        "down",
        "estimates",
        "expanding",
        "failed",
        "free",
        "gone",
        "gpus",
        "granted",
        "handlers_only",
        "items_left",
        "lane_of",
        "lineage",
        "min_cpu",
        "need",
        "node_names",
        "nodes",
        "open_lanes",
        "origin",
        "params",
        "placement",
        "plain",
        "prepared",
        "priority",
        "queued",
        "ready",
        "reason",
        "refs",
        "run_id",
        "run_times",
        "running",
        "service_time",
        "sized",
        "specs",
        "started_data",
        "timers",
        "to_submit",
        "upstream_failed",
        "values",
        "view",
        "waiting",
        "wf",
    )

    def __init__(
        self,
        *,
        run_id: str,
        workflow: Workflow,
        view: RunView,
        nodes: Sequence[Node],
        params: Mapping[str, Any],
        values: dict[str, Any] | None,
        priority: Mapping[str, float],
        estimates: Mapping[str, float] | None,
        origin: float,
        artifacts: ArtifactStore | None = None,
        refs: Mapping[str, str] | None = None,
    ) -> None:
        # -- the run and its workflow (fixed for the run) --------------------------------------
        self.run_id = run_id
        self.artifacts = artifacts  # where results above its threshold go (None: all inline)
        self.refs: dict[str, str] = dict(refs or {})  # task id -> its artifact (``lineage``)
        # ``lineage.Lineage`` of this run when it has an artifact store (set by the engine)
        self.lineage: Callable[[str, int], dict[str, Any]] | None = None
        self.wf = workflow
        self.specs: dict[str, TaskSpec] = dict(workflow.tasks)
        self.down: dict[str, list[str]] = workflow.graph.down  # task -> its dependents
        self.params: dict[str, Any] = dict(params)
        shared: dict[Resources, dict[str, float]] = {}  # one need dict per distinct vector
        self.need: dict[str, dict[str, float]] = {}  # spec name -> its resources as a dict
        for n, t in workflow.tasks.items():
            need = shared.get(t.resources)
            if need is None:
                need = shared[t.resources] = t.resources.as_dict()
            self.need[n] = need
        # tasks queued as soon as their upstreams are done: nothing to resolve or judge
        self.plain = frozenset(
            n
            for n, t in workflow.tasks.items()
            if not t.args
            and not t.config
            and t.when is None
            and t.map_over is None
            and t.trigger != "one_failed"
        )
        self.min_cpu = min((n.get("cpu", 0.0) for n in self.need.values()), default=0.0)
        # tasks placed by ``grants.Grants`` (GPUs or several workers); None: there are none
        granted = frozenset(n for n, t in workflow.tasks.items() if t.resources.gpu or t.workers > 1)
        self.granted = granted or None
        # -- the cluster -------------------------------------------------------------------------
        self.nodes: dict[str, Node] = {}  # live nodes by name
        self.node_names: list[str] = []  # live node names, fastest first
        self.set_nodes(nodes)
        self.free = {n.name: n.capacity.as_dict() for n in nodes}  # capacity not held by calls
        self.gone: set[str] = set()  # nodes lost during the run (their ``free`` is kept)
        self.gpus: dict[str, GpuPool] = {}  # node -> its devices (made when first needed)
        # -- the plan ----------------------------------------------------------------------------
        self.priority = dict(priority)  # spec name -> dispatch priority (higher first)
        self.placement: dict[str, str] = {}  # spec name -> planned node (empty: no plan)
        self.origin = origin  # monotonic time of the run's start: 0 on the plan's clock
        # -- tasks -------------------------------------------------------------------------------
        self.view = view  # the fold of every event so far (committed or in ``buf``)
        self.values = values if values is not None else {}  # task id -> result (None: skipped)
        self.waiting: dict[str, int] = {}  # spec name -> upstreams it still waits for
        self.items_left: dict[str, int] = {}  # map -> items not finished (+1 while expanding)
        self.expanding: deque[Expansion] = deque()  # maps still being expanded, oldest first
        # task id -> (kwargs, config) resolved when it became ready
        self.prepared: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
        self.ready: list[Ready] = []  # a heap; changed in place only
        self.timers: list[Timer] = []  # a heap; changed in place only
        self.counter = 0  # sequence of ``Ready.seq`` and ``Timer.seq``
        self.running: dict[Future[Any], Running] = {}
        self.service_time: dict[str, float] = {}  # service -> seconds it lived after starting
        self.boost: dict[str, dict[str, float]] = {}  # task id -> grown need after an OOM
        self.boost_res: dict[str, Resources] = {}  # the same as ``Resources``
        self.cache_keys: dict[str, str] = {}  # cacheable task id -> its cache key
        self.upstream_failed: set[str] = set()  # failure handlers with a failed upstream
        # -- lanes (an executor that queues) -----------------------------------------------------
        self.estimates = dict(estimates or {})  # spec name -> learned, declared or measured seconds
        # spec name -> its learned model, for tasks whose duration depends on their input size
        self.sized: dict[str, Model] = {}
        # function -> moving average seconds, this run (None: the tasks that call no function)
        self.run_times: dict[str | None, float] = {}
        self.lane_of: dict[Future[Any], Lane] = {}  # running or waiting call -> its lane
        self.queued: dict[Future[Any], Waiting] = {}  # calls waiting in lanes
        self.open_lanes: set[Lane] = set()
        # -- what this turn produced ---------------------------------------------------------
        self.buf: list[Event] = []  # events not committed yet
        self.buf_results: list[ResultRecord] = []  # results committed with them
        self.to_submit: list[Submission] = []
        self.started_data: dict[tuple[str, int], dict[str, Any]] = {}  # see ``start_data``
        # -- flags ---------------------------------------------------------------------------
        self.dirty = True  # something changed that may let dispatch start a task
        self.cancelling = False
        self.handlers_only = False  # after a fail-fast stop only failure handlers may start
        self.failed = False  # a task failed for good (the run will end failed)
        self.reason = ""  # why the run is being cancelled

    # -- small queries and updates every part uses -------------------------------------------
    def set_nodes(self, nodes: Sequence[Node]) -> None:
        """Make ``nodes`` the live nodes (``free`` is the caller's to adjust)."""
        self.nodes = {n.name: n for n in nodes}
        self.node_names = [n.name for n in sorted(nodes, key=lambda n: (-n.speed, n.name))]

    def resources(self, tid: str, spec: TaskSpec) -> Resources:
        """What the next attempt of ``tid`` asks for (more memory after an out-of-memory)."""
        return self.boost_res.get(tid, spec.resources) if self.boost_res else spec.resources

    def grow(self, tid: str, res: Resources) -> None:
        """Give ``tid``'s next attempts ``res`` (after an out-of-memory)."""
        self.boost_res[tid] = res
        self.boost[tid] = res.as_dict()

    def started(self, owner: str) -> dict[str, Any]:
        """The data of ``RunStarted``: who runs it, the nodes' prices, and their speeds when
        they differ (so the durations of different nodes compare: ``learn.Sample.work``)."""
        out: dict[str, Any] = {
            "owner": owner,
            "prices": {n.name: dict(n.prices) for n in self.nodes.values()},
        }
        if any(n.speed != 1.0 for n in self.nodes.values()):
            out["speeds"] = {n.name: n.speed for n in self.nodes.values()}
        return out

    def start_data(
        self, node: str, need: dict[str, float], name: str = "", kwargs: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """The data of a ``TaskStarted`` of task ``name`` on ``node`` holding ``need``: with
        the estimate it starts with (``est``, seconds on that node: its input size's when its
        duration depends on size) and its input ``size``, when known; else one shared dict per
        (node, need), since event data is never mutated."""
        est = self.estimates.get(name)
        model = self.sized.get(name) if self.sized else None
        size = input_size(kwargs) if kwargs else None
        if model is not None:
            est = model.predict(size).p50
        if est is not None or size is not None:
            data: dict[str, Any] = {"node": node, "res": need}
            if est is not None:
                data["est"] = round(est / self.nodes[node].speed, 6) if node in self.nodes else est
            if size is not None:
                data["size"] = size
            return data
        shared = self.started_data.get((node, id(need)))
        if shared is None or shared["res"] is not need:
            shared = self.started_data[(node, id(need))] = {"node": node, "res": need}
        return shared

    def node_for(self, name: str, need: dict[str, float]) -> str | None:
        """Where a task of ``name`` holding ``need`` may start now, if anywhere: its planned
        node, when it has one (it waits for it: a re-plan moves it if that node stays busy for
        longer than planned); otherwise the fastest node it fits."""
        planned = self.placement.get(name)
        if planned is not None:
            cap = self.free.get(planned)
            if cap is not None:
                return planned if fits(need, cap) else None
        for node in self.node_names:
            if fits(need, self.free[node]):
                return node
        if self.gone:
            # No live node can ever hold it (a resource only a lost node had): send it to that
            # node anyway; the executor waits there, with a visible reason, for a replacement.
            for n in self.nodes.values():
                if fits(need, n.capacity.as_dict()):
                    return None
            for gone in sorted(self.gone):
                cap = self.free.get(gone)
                if cap is not None and fits(need, cap):
                    return gone
        return None

    def exhausted(self) -> bool:
        """True when no node has the cpu that the smallest cpu-needing task asks for and every
        task needs cpu: then no ready task can start until something ends."""
        if self.min_cpu <= 0.0:
            return False
        floor = self.min_cpu - EPS
        return all(cap.get("cpu", 0.0) < floor for cap in self.free.values())

    def final_event(self) -> tuple[str, dict[str, Any]]:
        """The event that ends the run (succeeded, cancelled or failed) and its data."""
        counts = self.view.counts()
        for name in self.wf.tasks:  # tasks that never had an event are pending too
            if name not in self.view.tasks:
                counts[st.PENDING] += 1
        if not any(counts[x] for x in _UNFINISHED) and not self.failed:
            typ = ev.RUN_SUCCEEDED
        elif self.cancelling and not self.failed:
            typ = ev.RUN_CANCELLED
        else:
            typ = ev.RUN_FAILED
        data: dict[str, Any] = {"counts": {k: v for k, v in counts.items() if v}}
        if self.service_time:  # the view adds them to the services' busy time: R counts them
            data["services"] = {k: round(v, 6) for k, v in self.service_time.items()}
        return typ, data

    def on_plan_clock(self) -> dict[str, tuple[str, float]]:
        """Running task id -> (node, start on the plan's clock)."""
        origin = self.origin
        return {r.task_id: (r.node, r.started - origin) for r in self.running.values()}


__all__ = ["Emit", "Expansion", "Lane", "Ready", "RunState", "Running", "Submission", "Timer", "Waiting"]
