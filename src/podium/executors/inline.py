"""``InlineExecutor``: runs each call in the calling thread, for tests of the engine's logic.

``submit`` runs the call at once, synchronously (python, http and shell kinds, as the other
executors do), and returns an ``AttemptFuture``. Without a clock the future is already
resolved: a run is then deterministic, one call after another, in dispatch order. With a
scheduling clock (``podium.testing.FakeClock``) each call *takes* simulated time: its future
resolves when the clock reaches submit time plus ``duration(call)`` (by default the task's
declared ``expected_duration``, else 0), or fails as ``timeout`` at ``call.timeout`` if that is
sooner; the engine waiting on the same clock moves it. Calls then overlap in simulated time as
they would on a node, and schedules, makespans and timeouts can be checked exactly.

What a call writes (``print``, ``logging``, its command's output) is captured as the other
executors do (``capture.py``) and handed back as ``podium_meta["log"]``. It enforces nothing
(no memory limit, no real timeout, no kill of a call that is running: a call has always
finished running when ``submit`` returns). ``calls`` lists every call submitted, in order.
Invariants: every returned future resolves exactly once; this module never imports the store.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from podium.errors import CANCELLED, TIMEOUT, TaskFailedError
from podium.executors.capture import begin, end, install
from podium.executors.kinds import failure, record_of, run_call
from podium.executors.service import ServiceHost
from podium.model.cluster import Node
from podium.model.resources import Resources
from podium.model.task import TaskCall
from podium.registry import REGISTRY, Registry
from podium.taskcontext import enter, leave, of_call
from podium.types import AttemptFuture


class Scheduler(Protocol):
    """A clock that can run a callback at a moment of its time (``FakeClock``)."""

    def monotonic(self) -> float: ...

    def call_at(self, when: float, fn: Callable[[], None]) -> None: ...


def declared_duration(call: TaskCall) -> float:
    """The simulated run time of a call: its task's ``expected_duration``, else 0."""
    return call.spec.expected_duration or 0.0


class InlineExecutor(ServiceHost):
    """Runs calls synchronously at submit (see the module docstring)."""

    name = "inline"

    def __init__(
        self,
        nodes: Sequence[Node] = (),
        registry: Registry = REGISTRY,
        clock: Scheduler | None = None,
        duration: Callable[[TaskCall], float] = declared_duration,
    ) -> None:
        self._nodes = tuple(nodes) or (Node("local", Resources(cpu=1.0)),)
        self._registry = registry
        self._clock = clock
        self._duration = duration
        self._pending: dict[AttemptFuture, str] = {}  # future -> task id, until it resolves
        self.calls: list[TaskCall] = []

    def submit(self, call: TaskCall) -> AttemptFuture:
        self.calls.append(call)
        fut = AttemptFuture()
        fut.set_running_or_notify_cancel()
        install()
        begin(call)
        enter(of_call(call))
        try:
            value, error = run_call(call, self._registry), None
        except Exception as exc:  # the task's own error, as the other executors report it
            value, error = None, TaskFailedError(record_of(exc))
        finally:
            leave()
            log = end()
        clock = self._clock
        seconds = 0.0 if clock is None else self._duration(call)
        if clock is not None and call.timeout is not None and seconds > call.timeout:
            msg = f"task {call.task_id!r} timed out after {call.timeout:g}s"
            value, error, seconds = None, failure(TIMEOUT, "TimeoutError", msg), call.timeout
        fut.podium_meta = {"node": call.node, "seconds": seconds}
        if log is not None:
            fut.podium_meta["log"] = log.record()
        if clock is None:
            self._resolve(fut, value, error)
        else:
            self._pending[fut] = call.task_id
            clock.call_at(clock.monotonic() + seconds, lambda: self._resolve(fut, value, error))
        return fut

    def kill(self, future: Any) -> None:
        """Fail a call whose simulated run has not ended as cancelled (a no-op otherwise)."""
        task = self._pending.get(future)
        if task is not None:
            msg = f"task {task!r} was cancelled"
            self._resolve(future, None, failure(CANCELLED, "Cancelled", msg, retryable=False))

    def nodes(self) -> Sequence[Node]:
        return self._nodes

    def shutdown(self, wait: bool = True) -> None:
        """Nothing to stop: every call has run by the time ``submit`` returned."""

    def _resolve(self, fut: AttemptFuture, value: Any, error: BaseException | None) -> None:
        self._pending.pop(fut, None)
        if fut.done():  # killed before its simulated end
            return
        if error is not None:
            fut.set_exception(error)
        else:
            fut.set_result(value)
