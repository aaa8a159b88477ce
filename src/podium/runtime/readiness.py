"""Readiness: how finished upstream tasks make a task ready, skipped or expanded.

``Readiness`` works on the run's ``RunState`` (``waiting`` counts, the view, the ready heap)
and records what it decides through the loop's ``Emit``. When a task's upstreams are done it
decides whether the task runs (its inputs resolved), is skipped (a branch not taken, an
upstream that failed or was skipped, a failure handler with nothing to handle), is finished
from the result cache, or fans out into map items. A task whose inputs cannot be resolved is
handed to ``fail`` (``Failures.fail_now``).

A map's items are queued ``EXPAND_CHUNK`` at a time, more only while fewer than that are ready
(``expand_more``, called by the loop's turns): a fan-out of a million items never holds the
loop for long, so a cancel or a signal is acted on within a turn, and cancelling has only the
queued items to cancel (items never queued need no event: a resume queues them again).

Invariants: a task is judged once, when its last upstream is done; a skip propagates to every
dependent whose trigger does not accept it; readiness never submits anything (dispatch does);
a map expands to at most the policy's ``max_fanout`` items, else it fails saying so; a map
whose expansion is still going on holds one count in ``items_left``, so it cannot finish early.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Sequence
from typing import Any

from podium.errors import ErrorRecord, StoreError
from podium.model import events as ev
from podium.model import states as st
from podium.model.events import ResultRecord
from podium.model.resources import Resources
from podium.model.task import Ref, TaskSpec
from podium.registry import Registry
from podium.runtime import codec
from podium.runtime.cache import cache_key
from podium.runtime.inputs import InputError, resolve, resolve_args
from podium.runtime.state import Emit, Expansion, Ready, RunState
from podium.runtime.view import TaskView, base_name, is_item
from podium.types import Store

#: Triggers of tasks that run after upstream failures (failure handlers).
HANDLER_TRIGGERS = frozenset({"one_failed", "all_done"})
_MISSING = object()
_NO_INPUTS: tuple[dict[str, Any], dict[str, Any]] = ({}, {})
_PENDING_VIEW = TaskView("")
_QUEUED, _PENDING = ev.TASK_QUEUED, st.PENDING
#: Subtracted from the ready sequence of a task pushed ``first`` (still first come, first served).
_FIRST = 1 << 40
_new = tuple.__new__
#: Map items queued at a time (and the ready-heap size below which more are queued).
EXPAND_CHUNK = 4096


class Readiness:
    """Decides what becomes ready, skipped or expanded (see the module docstring)."""

    def __init__(
        self,
        state: RunState,
        emit: Emit,
        store: Store,
        registry: Registry,
        fail: Callable[[str, ErrorRecord], None],
    ) -> None:
        self.state = state
        self.emit = emit
        self.store = store
        self.registry = registry
        self.fail = fail  # fails a task that cannot even start (``Failures.fail_now``)

    def start(self, order: Sequence[str] | None = None) -> None:
        """Derive the ready set from the view (fresh run or resume). ``order`` is a topological
        order of the tasks; a fresh run needs none (nothing has happened to any task yet)."""
        s = self.state
        tasks = s.view.tasks
        for tid, tv in tasks.items():  # memory grown after an out-of-memory stays grown on resume
            if tv.memory is not None:
                base = s.specs[base_name(tid)].resources
                s.grow(tid, Resources(base.cpu, tv.memory, base.gpu, base.custom, base.gpu_memory))
        if not tasks:
            waiting = s.waiting
            for name, spec in s.specs.items():
                n = waiting[name] = len(spec.deps)
                if n == 0:
                    self.became_ready(name)
            return
        for name in order or s.wf.order():
            spec = s.specs[name]
            known = tasks.get(name)
            state = known.state if known else st.PENDING
            if state == st.PENDING:
                s.waiting[name] = sum(1 for d in spec.deps if not self._satisfied(d, spec))
                if self._blocked(spec):
                    self.skip(name, self._block_reason(spec))
                elif s.waiting[name] == 0:
                    self.became_ready(name)
            elif state == st.EXPANDED:
                self._reexpand(name, spec)

    def _satisfied(self, dep: str, spec: TaskSpec) -> bool:
        tv = self.state.view.tasks.get(dep)
        if tv is None:
            return False
        if tv.state == st.SUCCEEDED:
            return True
        if spec.trigger in HANDLER_TRIGGERS and tv.state in st.FINISHED:
            if tv.state != st.SKIPPED or "failed" in (tv.skip_reason or ""):
                self.state.upstream_failed.add(spec.name)
            return True
        return tv.state == st.SKIPPED and spec.trigger == "none_failed"

    def _blocked(self, spec: TaskSpec) -> bool:
        if spec.trigger in HANDLER_TRIGGERS:
            return False
        for d in spec.deps:
            tv = self.state.view.tasks.get(d)
            if tv is None:
                continue
            if tv.state in (st.FAILED, st.CANCELLED):
                return True
            if tv.state == st.SKIPPED and spec.trigger != "none_failed":
                return True
        return False

    def _block_reason(self, spec: TaskSpec) -> str:
        for d in spec.deps:
            tv = self.state.view.tasks.get(d)
            if tv is not None and tv.state in (st.FAILED, st.CANCELLED, st.SKIPPED):
                return f"upstream {d!r} {tv.state}"
        return "upstream not run"

    def became_ready(self, name: str) -> None:
        s = self.state
        if name in s.plain:  # no inputs, no branch, no map, not a failure handler
            self._queue_as_is(name)
            return
        spec = s.specs[name]
        if spec.trigger == "one_failed" and name not in s.upstream_failed:
            self.skip(name, "no upstream failed")
            return
        if not spec.args and not spec.config and spec.when is None and spec.map_over is None:
            self._queue_as_is(name)
            return
        if spec.when is not None:
            w = spec.when
            try:
                got = resolve(Ref(w.task, w.path), s.values, s.params)
            except (InputError, KeyError):
                got = _MISSING
            if got != w.equals:
                where = w.task + "".join(f"[{p!r}]" for p in w.path)
                self.skip(name, f"branch: {where} is {got!r}, not {w.equals!r}")
                return
        try:
            kwargs = resolve_args(spec.args, s.values, s.params)
            config = resolve(spec.config, s.values, s.params) if spec.config else {}
        except InputError as e:
            self.fail(name, ErrorRecord("InputError", str(e), retryable=False))
            return
        if spec.map_over is not None:
            items = kwargs[spec.map_over]
            if not isinstance(items, list | tuple):
                msg = f"map over {spec.map_over!r} needs a list, got {type(items).__name__}"
                self.fail(name, ErrorRecord("InputError", msg, retryable=False))
                return
            limit = self.registry.policy.max_fanout
            if len(items) > limit:
                msg = (
                    f"map over {spec.map_over!r} has {len(items):,} items, more than max_fanout "
                    f"({limit:,}); raise max_fanout in podium.toml if this is intended"
                )
                self.fail(name, ErrorRecord("InputError", msg, retryable=False))
                return
            self.emit(ev.TASK_EXPANDED, name, 0, {"count": len(items)})
            self._prepare_items(name, spec.map_over, kwargs, config, list(items))
            return
        s.prepared[name] = (kwargs, config)
        self.emit(ev.TASK_QUEUED, name)
        if spec.cache and self._from_cache(name, spec, kwargs, config):
            return
        self.push(name)

    def _from_cache(self, name: str, spec: TaskSpec, kwargs: dict[str, Any], config: dict[str, Any]) -> bool:
        """Finish a queued cacheable task from the cache if its key has a valid result."""
        key = cache_key(spec, kwargs, config, self.registry)
        if key is None:
            return False
        s = self.state
        s.cache_keys[name] = key
        try:
            rec = self.store.cache_get(key)
        except StoreError:
            return False
        if rec is None or not rec.verify():
            return False  # a corrupt entry is never passed on: the task runs instead
        try:
            value = codec.decode(rec, self.state.artifacts)
        except Exception:
            return False
        if rec.encoding == codec.ARTIFACT:
            s.refs[name] = codec.reference(rec).name  # type: ignore[union-attr]
        self.emit(ev.TASK_SUCCEEDED, name, 0, {"cached": True, "key": key})
        s.buf_results.append(ResultRecord(name, 0, rec.data, rec.checksum, rec.encoding))
        s.values[name] = value
        self.finished(name)
        return True

    def _prepare_items(
        self, name: str, over: str, kwargs: dict[str, Any], config: dict[str, Any], items: list[Any]
    ) -> None:
        """Queue the items of map ``name`` that have not succeeded; ``over`` is the mapped argument."""
        s = self.state
        s.items_left[name] = 1  # held until every item is prepared
        s.expanding.append(Expansion(name, over, kwargs, config, items))
        self.expand_more()

    def expand_more(self) -> None:
        """Prepare and queue the next ``EXPAND_CHUNK`` items of the oldest unfinished expansion."""
        s = self.state
        job = s.expanding[0]
        name, kwargs, config, items = job.name, job.kwargs, job.config, job.items
        end = min(len(items), job.next + EXPAND_CHUNK)
        tasks, left = s.view.tasks, 0
        for i in range(job.next, end):
            cid = f"{name}[{i}]"
            tv = tasks.get(cid, _PENDING_VIEW)
            if tv.state == st.SUCCEEDED:
                continue
            left += 1
            kw = dict(kwargs)
            kw[job.over] = items[i]
            s.prepared[cid] = (kw, config)
            if tv.state == st.PENDING:
                self.emit(ev.TASK_QUEUED, cid)
                self.push(cid)
        job.next = end
        s.items_left[name] += left
        if end == len(items):
            s.expanding.popleft()
            s.items_left[name] -= 1  # the hold: every item is prepared now
            if s.items_left[name] == 0:
                self._map_done(name)

    def _reexpand(self, name: str, spec: TaskSpec) -> None:
        """On resume: rebuild the inputs of an expanded map's unfinished items."""
        over = spec.map_over
        assert over is not None, "only a map is ever expanded"
        s = self.state
        kwargs = resolve_args(spec.args, s.values, s.params)
        config = resolve(spec.config, s.values, s.params) if spec.config else {}
        self._prepare_items(name, over, kwargs, config, list(kwargs[over]))

    def _queue_as_is(self, name: str) -> None:
        """Queue a task that has no inputs to resolve."""
        self.state.prepared[name] = _NO_INPUTS
        self.emit(_QUEUED, name)
        self.push(name, name)

    def push(self, task_id: str, name: str | None = None, first: bool = False) -> None:
        """Put ``task_id`` (queued in the log) in the ready heap; ``first``: ahead of the tasks of
        equal priority (work a lost worker took with it goes before work not begun)."""
        s = self.state
        s.counter += 1
        if name is None:
            name = base_name(task_id)
        seq = s.counter - _FIRST if first else s.counter
        heapq.heappush(s.ready, _new(Ready, (-s.priority.get(name, 0.0), seq, task_id, name)))
        s.dirty = True

    def finished(self, tid: str) -> None:
        """``tid`` succeeded: its dependents (or its map) may become ready."""
        s = self.state
        if tid[-1] == "]" and is_item(tid):
            parent = base_name(tid)
            s.items_left[parent] -= 1
            if s.items_left[parent] == 0 and s.view.tasks[parent].state == st.EXPANDED:
                self._map_done(parent)
            return
        waiting, tasks = s.waiting, s.view.tasks
        for d in s.down[tid]:
            left = waiting.get(d)
            if left is None or tasks.get(d, _PENDING_VIEW).state != _PENDING:
                continue
            waiting[d] = left - 1
            if left == 1:
                self.became_ready(d)

    def _map_done(self, name: str) -> None:
        s = self.state
        n = s.view.tasks[name].children or 0
        s.values[name] = [s.values[f"{name}[{i}]"] for i in range(n)]
        self.emit(ev.TASK_SUCCEEDED, name, 0, {"items": n})
        self.finished(name)

    def skip(self, name: str, reason: str) -> None:
        s = self.state
        self.emit(ev.TASK_SKIPPED, name, 0, {"reason": reason})
        s.values[name] = None  # what a none_failed dependent receives for a skipped upstream
        for d in s.down[name]:
            tv = s.view.tasks.get(d)
            if tv is not None and tv.state != st.PENDING:
                continue
            if s.specs[d].trigger != "all_success":
                self.upstream_done(d)
            else:
                self.skip(d, f"upstream {name!r} skipped")

    def upstream_done(self, d: str) -> None:
        """One more upstream of ``d`` has finished in a way ``d``'s trigger accepts."""
        waiting = self.state.waiting
        left = waiting.get(d)
        if left is not None:
            waiting[d] = left - 1
            if left == 1:
                self.became_ready(d)

    def propagate_block(self, name: str) -> None:
        """``name`` failed (or was skipped because of a failure): dependents waiting for success
        are skipped; failure handlers (``one_failed``, ``all_done``) count it as done."""
        s = self.state
        for d in s.down[name]:
            tv = s.view.tasks.get(d)
            if tv is None or tv.state == st.PENDING:
                if s.specs[d].trigger in HANDLER_TRIGGERS:
                    s.upstream_failed.add(d)
                    self.upstream_done(d)
                else:
                    self._skip_failed(d, f"upstream {name!r} failed")

    def _skip_failed(self, name: str, reason: str) -> None:
        self.emit(ev.TASK_SKIPPED, name, 0, {"reason": reason})
        self.propagate_block(name)
