"""Services: the lifetime of a run's service tasks (``kind: service``).

A service task runs like any task: when its upstreams are done it is dispatched, and its
attempt starts the process and returns once it is ready (``podium.executors.service``); its
result (``{"url", "port", ...}``) is what dependents read. ``Services`` takes over from there:

- it *holds* the service's resources on its node for its whole life (the attempt ended, the
  process did not), so the loop never packs more onto that node than fits, and counts that
  life in R (the run's final event carries it; the view adds it to the service's busy time);
- between turns (``poll``) it stops a service once every task that uses it (its direct
  dependents, their map items included) has finished, whichever way; and restarts one that
  died while users remain, on the same port, so their URL stays valid (calls in flight fail
  as connection errors, which their retries and the circuit breaker absorb);
- ``stop_all`` stops every service when the run ends: success, failure, cancel, Ctrl-C,
  or an error of the loop itself;
- ``resume`` (a run continued after its orchestrator died): a service recorded as started
  whose process still runs is the crashed run's orphan and is stopped; one that still has
  users is started again, on its recorded port, before anything is dispatched.

Invariants: a service is stopped at most once per start and only through the executor's
``stop_service`` (``podium.types.ServiceExecutor``: PID and start time must match); every stop happens under
the loop's turn lock (``poll``, ``stop_all`` and ``resume`` are called by the loop with it
held); starts and restarts are counted on the record (``restarts``) but never block a turn.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Protocol

from podium.errors import InvalidValueError
from podium.model import states as st
from podium.model.task import TaskCall
from podium.runtime.inputs import resolve
from podium.runtime.state import RunState
from podium.runtime.view import base_name
from podium.types import Executor, ServiceExecutor


class Host(Protocol):
    """What ``Services`` uses of its executor (``podium.types.ServiceExecutor``)."""

    def start_service(self, call: TaskCall, port: int | None = None) -> dict[str, Any]: ...
    def stop_service(self, record: Any) -> bool: ...
    def service_alive(self, record: Any) -> bool: ...


class _NoHost:
    """The host of a run without service tasks: never asked anything."""

    def start_service(self, call: TaskCall, port: int | None = None) -> dict[str, Any]:
        raise InvalidValueError(f"task {call.task_id!r}: this run has no service tasks")

    def stop_service(self, record: Any) -> bool:
        return False

    def service_alive(self, record: Any) -> bool:
        return False


def services_for(state: RunState, executor: Executor) -> Services:
    """The run's ``Services`` (with no ``names`` when it has no service task: then every call
    does nothing); an executor that cannot keep services on this machine (Ray) is refused
    before anything runs."""
    if not any(t.kind == "service" for t in state.specs.values()):
        return Services(state, _NoHost())
    if not isinstance(executor, ServiceExecutor):
        name = getattr(executor, "name", type(executor).__name__)
        raise InvalidValueError(f"service tasks run on this machine; the {name} executor cannot keep them")
    services = Services(state, executor)
    services.resume()  # a resumed run: the crashed orchestrator's services (no-op when fresh)
    return services


class Services:
    """The live services of one run (see the module docstring)."""

    def __init__(self, state: RunState, host: Host) -> None:
        self.state = state
        self.host = host
        self.names = frozenset(n for n, t in state.specs.items() if t.kind == "service")
        self.live: dict[str, dict[str, Any]] = {}  # service name -> its start record
        self.held: dict[str, tuple[str, dict[str, float]]] = {}  # name -> (node, need)
        self.restarting: set[str] = set()
        self.restarts: dict[str, int] = {}
        self.threads: list[threading.Thread] = []
        self.born: dict[str, float] = {}  # service -> when its current life began (monotonic)
        self.lock = threading.Lock()  # ``live`` is also written by restart threads

    def started(self, tid: str, value: Any, node: str, need: dict[str, float]) -> None:
        """A service task succeeded: keep its resources held while it lives."""
        if tid not in self.names or not isinstance(value, dict):
            return
        with self.lock:
            self.live[tid] = value
        self.born[tid] = time.monotonic()
        cap = self.state.free.get(node)
        if cap is not None:
            for k, v in need.items():
                cap[k] -= v
            self.held[tid] = (node, need)
        if self._done(tid):  # no user at all (or all finished before): stop it now
            self._stop(tid)

    def poll(self) -> None:
        for name in list(self.live):
            if self._done(name):
                self._stop(name)
            elif name not in self.restarting and not self.host.service_alive(self.live[name]):
                self._restart(name)

    def stop_all(self) -> None:
        for name in list(self.live):
            self._stop(name)
        for t in self.threads:  # a restart still coming up stops what it started (not live now)
            t.join()

    def resume(self) -> None:
        """Before a resumed run dispatches: stop orphans, start what still has users."""
        s = self.state
        for name in sorted(self.names):
            tv = s.view.tasks.get(name)
            record = s.values.get(name)
            if tv is None or tv.state != st.SUCCEEDED or not isinstance(record, dict):
                continue
            self.host.stop_service(record)  # the crashed orchestrator's service, if it still runs
            if not self._done(name):
                self.live[name] = record
                self.born[name] = time.monotonic()
                self._restart(name, wait=True)

    # -- internals -----------------------------------------------------------------------
    def _users(self, name: str) -> list[str]:
        return list(self.state.down.get(name, ()))

    def _done(self, name: str) -> bool:
        tasks = self.state.view.tasks
        for user in self._users(name):
            tv = tasks.get(user)
            if tv is None or tv.state not in st.FINISHED:
                return False
        return True

    def _stop(self, name: str) -> None:
        with self.lock:
            record = self.live.pop(name, None)
        if record is not None:
            self.host.stop_service(record)
        born = self.born.pop(name, None)
        if born is not None:  # its life after the start attempt, counted in R like a task's
            times = self.state.service_time
            times[name] = times.get(name, 0.0) + time.monotonic() - born
        held = self.held.pop(name, None)
        if held is not None:
            node, need = held
            cap = self.state.free.get(node)
            if cap is not None:
                for k, v in need.items():
                    cap[k] += v
                self.state.dirty = True  # the freed room may take ready tasks

    def _restart(self, name: str, wait: bool = False) -> None:
        """Start ``name`` again on its port (in a thread unless ``wait``)."""
        s = self.state
        spec = s.specs[name]
        record = self.live[name]
        config = resolve(spec.config, s.values, s.params) if spec.config else {}
        call = TaskCall(s.run_id, name, 0, spec, {}, config, spec.resources)
        self.restarting.add(name)
        self.restarts[name] = self.restarts.get(name, 0) + 1

        def again() -> None:
            try:
                new = self.host.start_service(call, port=int(record["port"]))
            except Exception:
                new = None  # still down: the next poll tries again
            with self.lock:
                keep = name in self.live  # else it was stopped while this one came up
                if keep and new is not None:
                    self.live[name] = {**new, "restarts": self.restarts[name]}
                self.restarting.discard(name)
            if not keep and new is not None:
                self.host.stop_service(new)

        if wait:
            again()
        else:
            t = threading.Thread(target=again, name=f"podium-restart-{base_name(name)}", daemon=True)
            self.threads = [*(x for x in self.threads if x.is_alive()), t]
            t.start()
