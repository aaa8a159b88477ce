"""``ThreadExecutor``: runs task calls on threads of this process.

A pool of daemon threads that grows on demand: a call is handed to an idle thread, or a new
thread is started when none is idle, so a call the engine submitted never waits in a queue
(the engine does the resource accounting and submits only what fits). ``max_workers`` caps the
pool if given; then calls beyond the cap queue.

Timeouts and kills: a Python thread cannot be killed. When a call passes ``call.timeout`` or is
killed, its Future fails at once (kind ``timeout`` / ``cancelled``) and the thread is
*abandoned*: it keeps running the user's function until that returns, and the late result or
error is discarded. A shell command started by the call is killed with its process group; a
container task enforces its own timeout, and the death of its runtime client makes it remove
its container. Use
``isolation="process"`` for tasks that must really stop (runaway loops, memory hogs, native code
that ignores the GIL).

Measured usage: a Python call's CPU time is the CPU clock of the thread that ran it
(``time.thread_time``, labelled ``"thread"`` in ``podium_meta["measured"]``; a thread's memory
cannot be told from its process's); calls of a function that last ran under ``MEASURE_MIN``
are measured one in ``RECHECK`` (see ``_measure``). A container attempt is measured by its
own cgroup where the runtime allows (``container_usage``, labelled ``"container"``).

Hot path: ``submit`` of a call without a timeout costs one Future, one queue put and one
non-blocking semaphore acquire. Timeouts share one lazily started timer thread keyed on a heap.
A call submitted from a pool thread while it reports a finished call (the engine reacts to a
completion inside the Future's done-callback) is run next by that same thread instead of
waking another one: a chain of tasks then costs no thread hand-off per task. The futures are
``AttemptFuture``s (``podium.types``: a stdlib Future whose per-task methods take its lock
directly, and which records its outcome for the run loop).

Invariants: every returned Future resolves exactly once (``set_result``/``set_exception`` race
safely under the Future's own lock; the loser is dropped); this module never imports the store.
"""

from __future__ import annotations

import queue
import subprocess
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, InvalidStateError
from typing import Any

from podium.errors import CANCELLED, TIMEOUT, InvalidValueError, ShutDownError, TaskFailedError
from podium.executors.capture import LiveLogs, install, slot
from podium.executors.deadlines import Deadlines
from podium.executors.kinds import failure, kill_group, record_of, run_call
from podium.executors.service import ServiceHost
from podium.executors.taskenv import task_env
from podium.model.cluster import Node
from podium.model.logs import LogRecord
from podium.model.task import TaskCall
from podium.registry import REGISTRY, Registry
from podium.taskcontext import RUNNING
from podium.types import AttemptFuture

_STOP = None
#: Calls of a function whose last measured call ran less than this (seconds) are not measured...
MEASURE_MIN = 0.001
#: ...but one in this many of them is, so a function that became slow is measured again.
RECHECK = 64


class ThreadExecutor(ServiceHost):
    """Runs calls on an on-demand pool of daemon threads (see the module docstring)."""

    name = "thread"

    def __init__(
        self,
        max_workers: int | None = None,
        registry: Registry = REGISTRY,
        nodes: Sequence[Node] = (),
        name: str = "thread",
        limit_threads: bool = True,
    ) -> None:
        if max_workers is not None and max_workers < 1:
            raise InvalidValueError(f"max_workers must be at least 1, got {max_workers}")
        self.name = name
        self._max = max_workers
        self._registry = registry
        self._nodes = tuple(nodes)
        self._queue: queue.SimpleQueue[tuple[Future[Any], TaskCall] | None] = queue.SimpleQueue()
        self._idle = threading.Semaphore(0)
        self._threads: list[threading.Thread] = []
        # thread -> the future of the call it runs; shared by every executor (each thread has
        # one), so ``podium.context()`` finds a thread task's call there at no cost to a call
        self._current: dict[threading.Thread, Future[Any] | None] = RUNNING
        self.limit_threads = limit_threads  # for the commands of shell and container tasks
        self._lock = threading.Lock()
        self._closed = False
        self._procs: dict[Future[Any], subprocess.Popen[Any]] = {}
        self._timer: Deadlines[tuple[Future[Any], TaskCall]] | None = None
        self._tls = threading.local()
        self._short: dict[str, bool] = {}  # function -> its last measured call was short
        self._skipped = 0
        self._live = LiveLogs()  # logs of running attempts that wrote something

    # ------------------------------------------------------------------ Executor protocol

    def submit(self, call: TaskCall) -> Future[Any]:
        if self._closed:
            raise ShutDownError(f"executor {self.name!r} is shut down")
        fut: Future[Any] = AttemptFuture()
        fut.podium_call = call  # type: ignore[attr-defined]
        if call.timeout is not None and call.spec.kind != "container":  # it stops itself in time
            self._timeouts().schedule(time.monotonic() + call.timeout, (fut, call))
        tls = self._tls
        if getattr(tls, "reporting", False) and tls.next is None:
            tls.next = (fut, call)  # this thread runs it as soon as its callbacks return
            return fut
        self._queue.put((fut, call))
        if not self._idle.acquire(blocking=False):
            self._grow()
        return fut

    def kill(self, future: Future[Any]) -> None:
        """Fail ``future`` as cancelled and abandon its thread (late results are discarded);
        a shell command it started is killed with its process group."""
        if not future.done():
            call = getattr(future, "podium_call", None)
            task = call.task_id if call is not None else "?"
            msg = f"task {task!r} was cancelled"
            self._fail(future, failure(CANCELLED, "Cancelled", msg, retryable=False))
        else:  # finished, or failed by another executor's kill: only stop a command it may own
            proc = self._procs.pop(future, None)
            if proc is not None:
                kill_group(proc.pid)

    def nodes(self) -> Sequence[Node]:
        return self._nodes

    def live_logs(self) -> list[LogRecord]:
        """Logs of the running attempts that wrote something since the last call."""
        return self._live.changed()

    def shutdown(self, wait: bool = True) -> None:
        """Stop accepting calls; threads exit after the calls already submitted. With ``wait``,
        wait for those calls (abandoned calls are not waited for)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            threads = list(self._threads)
        for _ in threads:
            self._queue.put(_STOP)
        if self._timer is not None:
            self._timer.stop()
        if wait:
            for t in threads:
                cur = self._current.get(t)
                if cur is None or not cur.done():
                    t.join()

    # ------------------------------------------------------------------ internals

    def _grow(self) -> None:
        with self._lock:
            if self._max is not None and len(self._threads) >= self._max:
                return
            t = threading.Thread(
                target=self._work, name=f"podium-{self.name}-{len(self._threads)}", daemon=True
            )
            self._threads.append(t)
            self._current[t] = None
        t.start()

    def _work(self) -> None:
        me = threading.current_thread()
        current = self._current
        get = self._queue.get
        tls = self._tls
        tls.next = None
        tls.slot = slot()  # where this thread's writes go while it runs an attempt
        while True:
            item = get()
            if item is None:
                current.pop(me, None)
                return
            while item is not None:
                fut, call = item
                del item
                current[me] = fut
                try:
                    started = fut.set_running_or_notify_cancel()
                except RuntimeError:  # killed (already finished) before it started
                    started = False
                if started:
                    self._run_one(fut, call)
                current[me] = None
                del fut, call
                item, tls.next = tls.next, None  # a call submitted while this one was reported
            self._idle.release()

    def _run_one(self, fut: Future[Any], call: TaskCall) -> None:
        tls = self._tls
        install()  # a no-op unless something swapped sys.stdout/stderr since (a live display)
        slot = tls.slot
        slot.open(call, self._live.logs, fut)
        try:
            spec = call.spec
            if spec.kind == "python" and spec.call:  # ``run_call``'s python path, two calls shorter
                fn = self._registry.resolve(spec.call)
                if self._measure(spec.call):
                    c0, t0 = time.thread_time(), time.perf_counter()
                    try:
                        result = fn(**call.kwargs)
                    finally:
                        self._measured(fut, spec.call, c0, t0)
                else:
                    result = fn(**call.kwargs)
            elif spec.kind == "shell" or spec.kind == "container":
                env = task_env(call, self.limit_threads)
                used = (lambda m: attach_usage(fut, m)) if spec.kind == "container" else None
                result = run_call(call, self._registry, lambda p: self._track(fut, p), env, used)
            else:
                result = run_call(call, self._registry)
        except BaseException as exc:
            log = slot.close()
            if log is not None:
                attach_log(fut, log.record())
            if not fut.done():
                tls.reporting = True
                try:
                    fut.set_exception(TaskFailedError(record_of(exc)))
                except InvalidStateError:
                    pass
                finally:
                    tls.reporting = False
        else:
            log = slot.close()
            if log is not None:
                attach_log(fut, log.record())
            tls.reporting = True
            try:
                fut.set_result(result)
            except InvalidStateError:  # timed out or killed meanwhile: discard the late result
                pass
            finally:
                tls.reporting = False
        finally:
            if self._procs:
                self._procs.pop(fut, None)

    def _measure(self, fn: str) -> bool:
        """Whether to read the thread's CPU clock around a call of ``fn``: unless its last
        measured call ran under ``MEASURE_MIN`` (then one call in ``RECHECK``). Reading that
        clock costs a system call (over a microsecond here) at each end of the call: more than
        a short call's CPU time is worth, and more than a no-op task's whole run costs."""
        if not self._short.get(fn):
            return True
        self._skipped += 1  # unlocked: a lost count only moves the next re-check
        return self._skipped % RECHECK == 0

    def _measured(self, fut: Future[Any], fn: str, c0: float, t0: float) -> None:
        wall = time.perf_counter() - t0
        cpu = time.thread_time() - c0
        self._short[fn] = wall < MEASURE_MIN
        fut.podium_meta = {"cpu_time": cpu, "seconds": wall, "measured": "thread"}  # type: ignore[attr-defined]

    def _track(self, fut: Future[Any], proc: subprocess.Popen[Any]) -> None:
        self._procs[fut] = proc
        if fut.done():  # killed or timed out while the command was starting
            kill_group(proc.pid)

    def _fail(self, fut: Future[Any], err: TaskFailedError) -> None:
        log = self._live.logs.get(fut)
        if log is not None and not fut.done():  # what it wrote until it was given up on
            attach_log(fut, log.record())
        try:
            fut.set_exception(err)
        except InvalidStateError:
            return
        proc = self._procs.pop(fut, None)
        if proc is not None:
            kill_group(proc.pid)

    def _timeouts(self) -> Deadlines[tuple[Future[Any], TaskCall]]:
        if self._timer is None:
            with self._lock:
                if self._timer is None:
                    self._timer = Deadlines("podium-thread-timeouts", self._expire, lambda e: e[0].done())
        return self._timer

    def _expire(self, entry: tuple[Future[Any], TaskCall]) -> None:
        fut, call = entry
        if not fut.done():
            msg = f"task {call.task_id!r} timed out after {call.timeout:g}s (its thread was abandoned)"
            self._fail(fut, failure(TIMEOUT, "TimeoutError", msg))


def attach_usage(fut: Future[Any], used: dict[str, Any]) -> None:
    """Add what a container attempt used (``container_usage``) to its future's metadata."""
    meta = getattr(fut, "podium_meta", None)
    if meta is None:
        fut.podium_meta = dict(used)  # type: ignore[attr-defined]
    else:
        meta.update(used)


def attach_log(fut: Future[Any], log: LogRecord) -> None:
    """Add the attempt's log to its future's metadata (which may hold its measured usage)."""
    meta = getattr(fut, "podium_meta", None)
    if meta is None:
        fut.podium_meta = {"log": log}  # type: ignore[attr-defined]
    else:
        meta["log"] = log
