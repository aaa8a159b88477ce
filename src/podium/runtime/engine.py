"""The engine: start, resume and summarise runs of workflows on an executor and a store.

``Engine.run`` creates a run (its header and ``RunCreated`` in one transaction), computes the
dispatch priorities once (critical path on estimated durations), and hands the run to the one
``RunLoop``. ``Engine.resume`` reads the run's view (its snapshot and the events since),
resets what was interrupted, reloads committed results (checksums verified) and continues.
Invariants: a workflow that cannot fit the nodes is rejected before any run is written; a run
id is owned by one live orchestrator at a time; a task with a committed result is never
submitted again.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from podium.errors import ConflictError, InvalidValueError, NotFoundError, Problem, SpecError
from podium.model import events as ev
from podium.model import states as st
from podium.model.cluster import Node, unplaceable_tasks
from podium.model.events import Event, RunRecord
from podium.model.workflow import Workflow
from podium.planner.estimates import estimate_all, needs_history
from podium.planner.rank import upward_rank
from podium.registry import REGISTRY, Registry
from podium.runtime import codec
from podium.runtime.failures import OomPolicy
from podium.runtime.lineage import Lineage
from podium.runtime.loop import RunLoop
from podium.runtime.owner import check_owner as _check_owner
from podium.runtime.owner import owner_id
from podium.runtime.planning import MAX_RECORDED, Replanner
from podium.runtime.profiles import Learned, known_sizes, profiles
from podium.runtime.reading import load_view
from podium.runtime.recorder import Hook
from podium.runtime.rerun import check_shape, cleared, recorded_shape, source_change
from podium.runtime.state import RunState
from podium.runtime.summary import Summary, summarize
from podium.runtime.view import RunView, base_name, fold
from podium.types import ArtifactStore, Clock, Executor, GangExecutor, Store, SystemClock

DEFAULT_DURATION = 1.0


@dataclass
class RunResult:
    """The outcome of a run: its id, final state, the folded view and the result values."""

    run_id: str
    status: str
    view: RunView
    values: dict[str, Any]
    workflow: Workflow
    summary: Summary

    @property
    def ok(self) -> bool:
        return self.status == st.RUN_SUCCEEDED

    def __getitem__(self, task: str) -> Any:
        return self.values[task]


class Engine:
    """Runs workflows durably. One engine may run many runs, one at a time."""

    def __init__(
        self,
        store: Store,
        executor: Executor,
        *,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        hooks: Sequence[Hook] = (),
        dispatch: str = "critical_path",
        default_duration: float = DEFAULT_DURATION,
        plan_time_limit: float = 0.0,
        replan: bool = True,
        registry: Registry = REGISTRY,
        oom_growth: float = 2.0,
        oom_retries: int = 3,
        oom_cap: int | None = None,
        artifacts: ArtifactStore | None = None,
        learn: bool = False,
        right_size: bool = False,
        right_size_margin: float = 1.2,
    ) -> None:
        if dispatch not in ("critical_path", "fifo"):
            raise InvalidValueError(f"dispatch must be 'critical_path' or 'fifo', not {dispatch!r}")
        self.store = store
        self.executor = executor
        self.clock = clock or SystemClock()
        if not isinstance(self.clock, Clock):
            raise InvalidValueError(f"clock {self.clock!r} lacks time(), monotonic(), sleep() or wait()")
        self.rng = rng or random.Random()
        self.hooks = list(hooks)
        self.dispatch = dispatch
        self.default_duration = default_duration
        self.plan_time_limit = plan_time_limit
        self.replan = replan
        self.registry = registry
        if oom_growth < 1.0 or oom_retries < 0:
            raise InvalidValueError("oom_growth must be >= 1 and oom_retries >= 0")
        self.oom = OomPolicy(oom_growth, oom_retries, oom_cap)
        self.artifacts = artifacts  # large results go there (None: every result inline)
        # learning (``runtime.profiles``): estimates from the workflow's past runs, and requests
        # sized from what its tasks used (``right_size``); off, declared figures are pinned
        self.learn = learn
        self.right_size = right_size
        if right_size_margin < 1.0:
            raise InvalidValueError(f"right_size_margin must be at least 1, got {right_size_margin}")
        self.right_size_margin = right_size_margin

    @property
    def nodes(self) -> list[Node]:
        return list(self.executor.nodes())

    # -- public API -------------------------------------------------------------------------
    def run(
        self,
        workflow: Workflow,
        params: Mapping[str, Any] | None = None,
        *,
        run_id: str | None = None,
        source: Mapping[str, Any] | None = None,
    ) -> RunResult:
        """Run ``workflow`` to the end. With an existing ``run_id`` this resumes that run."""
        resolved = workflow.resolve_params(params or {})
        nodes = self.nodes
        problems = unplaceable(workflow, nodes)
        if not isinstance(self.executor, GangExecutor):
            msg = f"executor {self.executor.name!r} cannot start gang-scheduled tasks (workers > 1)"
            gangs = [n for n, t in workflow.tasks.items() if t.workers > 1]
            problems += [Problem(f"tasks.{n}.workers", msg) for n in gangs]
        if problems:
            raise SpecError(problems)
        if run_id is not None:
            try:
                self.store.get_run(run_id)
            except NotFoundError:
                pass
            else:
                return self.resume(run_id, workflow, source=source)
        run_id = run_id or new_run_id()
        now = self.clock.time()
        record = RunRecord(
            run_id, workflow.name, st.RUN_CREATED_STATE, now, now, resolved, dict(source or {})
        )
        obj = {"alpha": workflow.objective.alpha, "beta": workflow.objective.beta}
        data = {"workflow": workflow.name, "params": resolved, "objective": obj}
        if len(workflow.tasks) <= MAX_RECORDED:  # the graph, for critical paths without the spec
            data["deps"] = {n: list(t.deps) for n, t in workflow.tasks.items()}
        data["shape"] = recorded_shape(workflow)  # what a resume after a fix must keep
        created = Event(1, ev.RUN_CREATED, None, 0, now, data)
        self.store.create_run(record, [created])
        view = fold([created])
        return self._go(run_id, workflow, resolved, view, {}, nodes=nodes)

    def resume(
        self,
        run_id: str,
        workflow: Workflow,
        *,
        source: Mapping[str, Any] | None = None,
        rerun_from: str | None = None,
    ) -> RunResult:
        """Continue an interrupted, failed or cancelled run; succeeded tasks are not run again.

        ``source``: where ``workflow`` was loaded from now; when its file changed since the
        run started (another sha256), the run goes on with it if the DAG kept its shape
        (``SourceChanged`` in the log), else ``SpecError`` lists the changes. ``rerun_from``:
        that task and everything downstream of it run again (``TaskCleared``), also on a
        succeeded run. Nothing is written before both are checked."""
        record = self.store.get_run(run_id)
        if record.workflow != workflow.name:
            raise ConflictError(f"run {run_id!r} is of workflow {record.workflow!r}, not {workflow.name!r}")
        _check_owner(record.owner)
        view = load_view(self.store, run_id)  # its snapshot and the events since, or a fold
        params = dict(record.params)
        change = source_change(record.source, source, view)
        if change is not None:
            check_shape(run_id, view, workflow, str(change["path"]))
        clear = cleared(view, workflow, rerun_from) if rerun_from is not None else []
        if view.state == st.RUN_SUCCEEDED and not clear:
            values = codec_values(self.store, run_id, view, artifacts=self.artifacts)
            return self._result(run_id, workflow, view, values)
        corrupt: list[str] = []
        refs: dict[str, str] = {}
        values = codec_values(self.store, run_id, view, corrupt, self.artifacts, refs)
        for tid, _ in clear:  # runs again: its old result is not an input of anything now
            values.pop(tid, None)
            refs.pop(tid, None)
        first: list[tuple[str, str | None, dict[str, Any]]] = []
        if change is not None:
            first.append((ev.SOURCE_CHANGED, None, change))
        first += [(ev.TASK_CLEARED, tid, data) for tid, data in clear]
        # later resumes compare with (and load) the new version: the header says so at the end
        header = {**record.source, **dict(source or {})} if change is not None else None
        return self._go(
            run_id,
            workflow,
            params,
            view,
            values,
            resuming=True,
            corrupt=corrupt,
            first=first,
            header=header,
            refs=refs,
        )

    # -- internals --------------------------------------------------------------------------
    def _go(
        self,
        run_id: str,
        workflow: Workflow,
        params: Mapping[str, Any],
        view: RunView,
        values: dict[str, Any],
        resuming: bool = False,
        corrupt: Sequence[str] = (),
        nodes: list[Node] | None = None,
        first: Sequence[tuple[str, str | None, dict[str, Any]]] = (),
        header: dict[str, Any] | None = None,
        refs: dict[str, str] | None = None,
    ) -> RunResult:
        self.store.update_run(
            run_id,
            status=st.RUN_RUNNING,
            owner=owner_id(),
            updated_at=self.clock.time(),
            cancel_requested=False,
        )
        nodes = nodes if nodes is not None else self.nodes
        replanner = None
        placement = None
        learned = self.learned(workflow, run_id) if self.learn or self.right_size else None
        if learned is not None and self.right_size:
            workflow, _ = learned.right_sized(workflow, self.right_size_margin)
        sizes = known_sizes(workflow, params) if learned is not None else None
        known = self.estimates(workflow, None, learned, sizes)  # learned, declared or measured before
        estimates = {n: known.get(n, self.default_duration) for n in workflow.tasks}
        if len(nodes) > 1 and self.dispatch == "critical_path":
            # several nodes: the planner decides placement and order (on one node the critical
            # path order below is what the planner's list scheduling would do anyway)
            done = {n for n, t in view.tasks.items() if t.state in st.FINISHED and n in workflow.tasks}
            replanner = Replanner(workflow, nodes, estimates, self.plan_time_limit)
            placement = replanner.first(done)
            if not self.replan:
                replanner = None
        state = RunState(
            run_id=run_id,
            workflow=workflow,
            view=view,
            nodes=nodes,
            params=params,
            values=values,
            priority=self.priorities(workflow, estimates),
            estimates=known,
            origin=self.clock.monotonic(),
            artifacts=self.artifacts,
            refs=refs,
        )
        if self.artifacts is not None:
            state.lineage = Lineage(state)
        if learned is not None and self.learn:
            state.sized = learned.sized()
        loop = RunLoop(
            state,
            store=self.store,
            executor=self.executor,
            clock=self.clock,
            rng=self.rng,
            hooks=self.hooks,
            placement=placement,
            replanner=replanner,
            registry=self.registry,
            oom=self.oom,
        )
        if replanner is not None:
            replanner.on_ready = loop.drive
        # a changed source, tasks cleared by ``resume --from`` (first: a cleared task whose
        # result is corrupt needs no TaskInvalidated, it runs again anyway)
        for typ, task, data in first:
            loop.emit(typ, task, 0, data)
        for tid in corrupt:  # its bytes changed since it was committed: run it again
            for t in (tid, base_name(tid)):  # an item of a map reopens its map too
                tv = loop.state.view.tasks.get(t)
                if tv is not None and tv.state == st.SUCCEEDED:
                    reason = f"committed result of {tid!r} fails its checksum or authentication"
                    loop.emit(ev.TASK_INVALIDATED, t, 0, {"reason": reason})
        if resuming:
            _reset_interrupted(loop)
        try:
            status = loop.run()
        finally:
            end: dict[str, Any] = {"source": header} if header is not None else {}
            self.store.update_run(
                run_id, status=view.state or st.RUN_FAILED, owner="", updated_at=self.clock.time(), **end
            )
        return self._result(run_id, workflow, view, loop.state.values, status, nodes)

    def _result(
        self,
        run_id: str,
        wf: Workflow,
        view: RunView,
        values: dict[str, Any],
        status: str | None = None,
        nodes: Sequence[Node] | None = None,
    ) -> RunResult:
        summary = summarize(view, wf, {n.name: n for n in (self.nodes if nodes is None else nodes)})
        return RunResult(run_id, status or view.state or "", view, values, wf, summary)

    def estimates(
        self,
        workflow: Workflow,
        default: float | None = -1.0,
        learned: Learned | None = None,
        sizes: Mapping[str, float] | None = None,
    ) -> dict[str, float]:
        """Per task: ``planner.estimates``' rule over this store's history and what was
        ``learned`` (with ``learn`` on); ``default`` is the engine's default duration when
        negative, and ``None`` leaves unknown tasks out."""
        if default is not None and default < 0:
            default = self.default_duration
        if learned is None and self.learn:
            learned = self.learned(workflow)
        history = self.store.history(workflow.name) if needs_history(workflow.tasks) else {}
        figures = learned.estimates(sizes) if learned is not None and self.learn else None
        return estimate_all(workflow.tasks, history, default, figures)

    def learned(self, workflow: Workflow, skip: str | None = None) -> Learned:
        """What the workflow's past runs in this store teach (``runtime.profiles``)."""
        return Learned(profiles(self.store, workflow.name, skip=skip))

    def priorities(
        self, workflow: Workflow, estimates: Mapping[str, float] | None = None
    ) -> dict[str, float]:
        if self.dispatch == "fifo":
            n = len(workflow.tasks)
            return {name: float(n - i) for i, name in enumerate(workflow.tasks)}
        g = workflow.graph
        return upward_rank(g.deps, estimates or self.estimates(workflow), g.order, g.down)


def _reset_interrupted(loop: RunLoop) -> None:
    """Emit ``TaskReset`` for every task a previous orchestrator left unfinished."""
    for tid, tv in list(loop.state.view.tasks.items()):
        if tv.state in (st.QUEUED, st.RUNNING, st.RETRYING):
            loop.emit(ev.TASK_RESET, tid, tv.attempt, {"reason": "orchestrator restarted"})
        elif tv.state in (st.FAILED, st.CANCELLED) or (
            tv.state == st.SKIPPED and not (tv.skip_reason or "").startswith("branch")
        ):
            loop.emit(ev.TASK_RESET, tid, tv.attempt, {"reason": "resumed"})


def codec_values(
    store: Store,
    run_id: str,
    view: RunView,
    corrupt: list[str] | None = None,
    artifacts: ArtifactStore | None = None,
    refs: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The committed results of a run, decoded; results failing their checksum are left out
    and their task ids appended to ``corrupt``; ``refs`` gets the artifact of each that is one."""
    values: dict[str, Any] = {}
    for tid, rec in store.results(run_id).items():
        try:
            values[tid] = codec.decode(rec, artifacts)
            ref = codec.reference(rec) if refs is not None else None
            if ref is not None and refs is not None:
                refs[tid] = ref.name
        except codec.CorruptResult:
            if corrupt is None:
                raise
            corrupt.append(tid)
    for tid, tv in view.tasks.items():
        if tv.state == st.SKIPPED:
            values[tid] = None
        elif tv.state == st.SUCCEEDED and tv.children is not None and tid not in values:
            values[tid] = [values.get(f"{tid}[{i}]") for i in range(tv.children)]
    return values


def unplaceable(workflow: Workflow, nodes: Sequence[Node]) -> list[Problem]:
    """Problems for tasks no node can ever hold, and gangs the nodes can never hold together."""
    return unplaceable_tasks(workflow.tasks.values(), nodes)


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]
