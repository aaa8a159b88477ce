"""Readiness: how finished upstream tasks make a task ready, skipped or expanded.

A mixin of ``RunLoop`` (it works on the loop's state: ``waiting`` counts, the view, the ready
heap). It decides, when a task's upstreams are done, whether the task runs (its inputs
resolved), is skipped (a branch not taken, an upstream that failed or was skipped, a failure
handler with nothing to handle), is finished from the result cache, or fans out into map items.

Invariants: a task is judged once, when its last upstream is done; a skip propagates to every
dependent whose trigger does not accept it; readiness never submits anything (dispatch does).
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from podium.errors import ErrorRecord, StoreError
from podium.model import events as ev
from podium.model import states as st
from podium.model.events import ResultRecord
from podium.model.resources import Resources
from podium.model.task import Ref, TaskSpec
from podium.runtime import codec
from podium.runtime.cache import cache_key
from podium.runtime.inputs import InputError, resolve, resolve_args
from podium.runtime.view import TaskView, base_name, is_item

if TYPE_CHECKING:
    from podium.runtime.loop import RunLoop

    _Base = RunLoop
else:
    _Base = object

#: Triggers of tasks that run after upstream failures (failure handlers).
HANDLER_TRIGGERS = frozenset({"one_failed", "all_done"})
_MISSING = object()
_NO_INPUTS: tuple[dict[str, Any], dict[str, Any]] = ({}, {})
_PENDING_VIEW = TaskView("")
_QUEUED, _PENDING = ev.TASK_QUEUED, st.PENDING


class Readiness(_Base):
    def start(self, order: Sequence[str] | None = None) -> None:
        """Derive the ready set from the view (fresh run or resume). ``order`` is a topological
        order of the tasks; a fresh run needs none (nothing has happened to any task yet)."""
        tasks = self.view.tasks
        for tid, tv in tasks.items():  # memory grown after an out-of-memory stays grown on resume
            if tv.memory is not None:
                base = self.specs[base_name(tid)].resources
                self.boost_res[tid] = Resources(base.cpu, tv.memory, base.gpu, base.custom)
                self.boost[tid] = self.boost_res[tid].as_dict()
        if not tasks:
            waiting = self.waiting
            for name, spec in self.specs.items():
                n = waiting[name] = len(spec.deps)
                if n == 0:
                    self._became_ready(name)
            return
        for name in order or self.wf.order():
            spec = self.wf.tasks[name]
            tv = tasks.get(name)
            state = tv.state if tv else st.PENDING
            if state == st.PENDING:
                self.waiting[name] = sum(1 for d in spec.deps if not self._satisfied(d, spec))
                if self._blocked(name, spec):
                    self._skip(name, self._block_reason(spec))
                elif self.waiting[name] == 0:
                    self._became_ready(name)
            elif state == st.EXPANDED:
                self._reexpand(name, spec)

    def _satisfied(self, dep: str, spec: TaskSpec) -> bool:
        tv = self.view.tasks.get(dep)
        if tv is None:
            return False
        if tv.state == st.SUCCEEDED:
            return True
        if spec.trigger in HANDLER_TRIGGERS and tv.state in st.FINISHED:
            if tv.state != st.SKIPPED or "failed" in (tv.skip_reason or ""):
                self.upstream_failed.add(spec.name)
            return True
        return tv.state == st.SKIPPED and spec.trigger == "none_failed"

    def _blocked(self, name: str, spec: TaskSpec) -> bool:
        if spec.trigger in HANDLER_TRIGGERS:
            return False
        for d in spec.deps:
            tv = self.view.tasks.get(d)
            if tv is None:
                continue
            if tv.state in (st.FAILED, st.CANCELLED):
                return True
            if tv.state == st.SKIPPED and spec.trigger != "none_failed":
                return True
        return False

    def _block_reason(self, spec: TaskSpec) -> str:
        for d in spec.deps:
            tv = self.view.tasks.get(d)
            if tv is not None and tv.state in (st.FAILED, st.CANCELLED, st.SKIPPED):
                return f"upstream {d!r} {tv.state}"
        return "upstream not run"

    def _became_ready(self, name: str) -> None:
        if name in self.plain:  # no inputs, no branch, no map, not a failure handler
            self._queue_as_is(name)
            return
        spec = self.specs[name]
        if spec.trigger == "one_failed" and name not in self.upstream_failed:
            self._skip(name, "no upstream failed")
            return
        if not spec.args and not spec.config and spec.when is None and spec.map_over is None:
            self._queue_as_is(name)
            return
        if spec.when is not None:
            w = spec.when
            try:
                got = resolve(_ref(w.task, w.path), self.values, self.params)
            except (InputError, KeyError):
                got = _MISSING
            if got != w.equals:
                where = w.task + "".join(f"[{p!r}]" for p in w.path)
                self._skip(name, f"branch: {where} is {got!r}, not {w.equals!r}")
                return
        try:
            kwargs = resolve_args(spec.args, self.values, self.params)
            config = resolve(spec.config, self.values, self.params) if spec.config else {}
        except InputError as e:
            self._fail_now(name, ErrorRecord("InputError", str(e), retryable=False))
            return
        if spec.map_over is not None:
            items = kwargs[spec.map_over]
            if not isinstance(items, list | tuple):
                msg = f"map over {spec.map_over!r} needs a list, got {type(items).__name__}"
                self._fail_now(name, ErrorRecord("InputError", msg, retryable=False))
                return
            self.emit(ev.TASK_EXPANDED, name, 0, {"count": len(items)})
            self._prepare_items(name, spec, kwargs, config, list(items))
            return
        self.prepared[name] = (kwargs, config)
        self.emit(ev.TASK_QUEUED, name)
        if spec.cache and self._from_cache(name, spec, kwargs, config):
            return
        self._push(name)

    def _from_cache(self, name: str, spec: TaskSpec, kwargs: dict, config: dict) -> bool:
        """Finish a queued cacheable task from the cache if its key has a valid result."""
        key = cache_key(spec, kwargs, config, self.registry)
        if key is None:
            return False
        self.cache_keys[name] = key
        try:
            rec = self.store.cache_get(key)
        except StoreError:
            return False
        if rec is None or not rec.verify():
            return False  # a corrupt entry is never passed on: the task runs instead
        try:
            value = codec.decode(rec)
        except Exception:
            return False
        self.emit(ev.TASK_SUCCEEDED, name, 0, {"cached": True, "key": key})
        self.buf_results.append(ResultRecord(name, 0, rec.data, rec.checksum, rec.encoding))
        self.values[name] = value
        self._finished(name)
        return True

    def _prepare_items(self, name: str, spec: TaskSpec, kwargs: dict, config: dict, items: list) -> None:
        left = 0
        for i, item in enumerate(items):
            cid = f"{name}[{i}]"
            tv = self.view.tasks[cid]
            if tv.state == st.SUCCEEDED:
                continue
            left += 1
            kw = dict(kwargs)
            kw[spec.map_over] = item  # type: ignore[index]
            self.prepared[cid] = (kw, config)
            if tv.state == st.PENDING:
                self.emit(ev.TASK_QUEUED, cid)
                self._push(cid)
        self.items_left[name] = left
        if left == 0:
            self._map_done(name)

    def _reexpand(self, name: str, spec: TaskSpec) -> None:
        """On resume: rebuild the inputs of an expanded map's unfinished items."""
        kwargs = resolve_args(spec.args, self.values, self.params)
        config = resolve(spec.config, self.values, self.params) if spec.config else {}
        self._prepare_items(name, spec, kwargs, config, list(kwargs[spec.map_over]))  # type: ignore[index]

    def _queue_as_is(self, name: str) -> None:
        """Queue a task that has no inputs to resolve."""
        self.prepared[name] = _NO_INPUTS
        self.emit(_QUEUED, name)
        self._push(name, name)

    def _push(self, task_id: str, name: str | None = None) -> None:
        self.counter += 1
        if name is None:
            name = base_name(task_id)
        heapq.heappush(self.ready, (-self.priority.get(name, 0.0), self.counter, task_id, name))
        self.dirty = True

    def _finished(self, tid: str) -> None:
        if tid[-1] == "]" and is_item(tid):
            parent = base_name(tid)
            self.items_left[parent] -= 1
            if self.items_left[parent] == 0 and self.view.tasks[parent].state == st.EXPANDED:
                self._map_done(parent)
            return
        waiting, tasks = self.waiting, self.view.tasks
        for d in self.down[tid]:
            left = waiting.get(d)
            if left is None or tasks.get(d, _PENDING_VIEW).state != _PENDING:
                continue
            waiting[d] = left - 1
            if left == 1:
                self._became_ready(d)

    def _map_done(self, name: str) -> None:
        n = self.view.tasks[name].children or 0
        self.values[name] = [self.values[f"{name}[{i}]"] for i in range(n)]
        self.emit(ev.TASK_SUCCEEDED, name, 0, {"items": n})
        self._finished(name)

    def _skip(self, name: str, reason: str) -> None:
        self.emit(ev.TASK_SKIPPED, name, 0, {"reason": reason})
        self.values[name] = None  # what a none_failed dependent receives for a skipped upstream
        for d in self.down[name]:
            tv = self.view.tasks.get(d)
            if tv is not None and tv.state != st.PENDING:
                continue
            if self.specs[d].trigger != "all_success":
                self._upstream_done(d)
            else:
                self._skip(d, f"upstream {name!r} skipped")

    def _upstream_done(self, d: str) -> None:
        """One more upstream of ``d`` has finished in a way ``d``'s trigger accepts."""
        left = self.waiting.get(d)
        if left is not None:
            self.waiting[d] = left - 1
            if left == 1:
                self._became_ready(d)

    def _propagate_block(self, name: str) -> None:
        """``name`` failed (or was skipped because of a failure): dependents waiting for success
        are skipped; failure handlers (``one_failed``, ``all_done``) count it as done."""
        for d in self.down[name]:
            tv = self.view.tasks.get(d)
            if tv is None or tv.state == st.PENDING:
                if self.specs[d].trigger in HANDLER_TRIGGERS:
                    self.upstream_failed.add(d)
                    self._upstream_done(d)
                else:
                    self._skip_failed(d, f"upstream {name!r} failed")

    def _skip_failed(self, name: str, reason: str) -> None:
        self.emit(ev.TASK_SKIPPED, name, 0, {"reason": reason})
        self._propagate_block(name)


def _ref(task: str, path: tuple) -> Ref:
    return Ref(task, path)
