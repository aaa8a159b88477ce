"""``ProcessExecutor``: one fresh OS process per task attempt, killable and memory-limited.

Each attempt runs ``podium.executors.worker.main`` in a fresh interpreter (``worker.py``: protocol),
started with ``subprocess`` (vfork/exec: safe when this process has threads, unlike a plain
fork) in a new session, so the worker and everything it starts form one process group that
is killed as a whole. Its environment holds the call's thread counts, GPUs and identity
(``taskenv``); ``start`` runs one worker of a gang with that worker's variables. The worker
rebuilds the registry from ``registry.snapshot()`` and resolves the function by name; only
plain data (the ``TaskCall``, the snapshot, ``sys.path``) is sent.

One monitor thread watches every worker through a selector (a pidfd per worker says it
exited, a pipe carries its pickled result), enforces timeouts (SIGTERM to the group, SIGKILL
after ``grace`` seconds) and resolves the Futures. Outcomes and their ``ErrorRecord.kind``:

- result or the task's own exception (``user``; ``MemoryError`` -> ``oom``);
- past ``call.timeout`` -> ``timeout``; ``kill(future)`` or ``shutdown()`` -> ``cancelled``;
- killed by SIGKILL with its peak RSS near ``call.resources.memory`` -> ``oom``;
- any other death by a signal or an exit without a result -> ``worker_lost``, naming the signal.

The worker's stdout and stderr are pipes the monitor reads into the attempt's log (everything
it writes, its child processes and native code included), handed back as ``podium_meta["log"]``.

Futures are ``AttemptFuture``s; every resolved one carries ``podium_meta`` (``AttemptMeta``:
``pid``, ``peak_rss`` (the worker's own, else ``wait4``'s), ``cpu_time`` (``wait4``), ``exit``: the run loop
records them as the attempt's usage). Invariants: no worker outlives its attempt (the group is
killed when the leader exits, before it is reaped), ``shutdown()`` or this interpreter (an atexit
hook; a worker kills itself when its control pipe closes); this module never imports the store.
"""

from __future__ import annotations

import atexit
import os
import pickle
import selectors
import signal
import struct
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Sequence
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from podium.errors import CANCELLED, OOM, TIMEOUT, WORKER_LOST, ErrorRecord, ShutDownError, TaskFailedError
from podium.executors.capture import LiveLogs, PipeCapture
from podium.executors.failure import signame
from podium.executors.kinds import failure, kill_group
from podium.executors.service import ServiceHost
from podium.executors.taskenv import task_env
from podium.executors.worker import dumps
from podium.model.cluster import Node
from podium.model.logs import LogRecord
from podium.model.task import TaskCall
from podium.registry import REGISTRY, Registry
from podium.types import AttemptFuture, AttemptMeta

#: A SIGKILLed worker whose peak RSS reached this fraction of its memory request counts as oom.
OOM_RSS_FRACTION = 0.9
_PKG_ROOT = str(Path(__file__).resolve().parents[2])  # the directory holding the podium package
#: What a worker process runs (``sys.argv[1:]`` are the control and result pipe fds).
_WORKER_MAIN = "import sys; from podium.executors.worker import main; main(sys.argv[1:])"
_LIVE: weakref.WeakSet[ProcessExecutor] = weakref.WeakSet()


@dataclass(eq=False)
class _Worker:
    call: TaskCall
    future: AttemptFuture
    proc: subprocess.Popen[bytes]
    pidfd: int
    ctl: int  # our end of the control pipe (payload out; closing it tells the worker to die)
    out: int  # our end of the result pipe
    pending: memoryview  # payload bytes not yet written
    deadline: float | None
    capture: PipeCapture  # its stdout and stderr pipes, read into the attempt's log
    chunks: list[bytes] = field(default_factory=list)
    reason: str | None = None  # TIMEOUT / CANCELLED once we decided to stop it
    message: str = ""
    kill_at: float | None = None  # when SIGKILL follows the SIGTERM

    @property
    def pid(self) -> int:
        return self.proc.pid


class ProcessExecutor(ServiceHost):
    """Runs each call in its own worker process (see the module docstring)."""

    name = "process"

    def __init__(
        self,
        registry: Registry = REGISTRY,
        nodes: Sequence[Node] = (),
        grace: float = 1.0,
        python: str = sys.executable,
        name: str = "process",
        limit_threads: bool = True,
    ) -> None:
        self.name = name
        self.limit_threads = limit_threads  # OMP_NUM_THREADS & co. from the cpu request
        self._registry = registry
        self._nodes = tuple(nodes)
        self._grace = grace
        self._python = python
        self._lock = threading.Lock()
        self._workers: dict[Future[Any], _Worker] = {}
        self._live = LiveLogs()
        self._new: list[_Worker] = []
        self._closed = False
        self._thread: threading.Thread | None = None
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_PKG_ROOT, env.get("PYTHONPATH")) if p)
        env["PYTHONUNBUFFERED"] = "1"  # its output reaches the log as written, even if it is killed
        self._env = env
        _LIVE.add(self)

    # ------------------------------------------------------------------ Executor protocol

    def submit(self, call: TaskCall) -> Future[Any]:
        return self.start(call, task_env(call, self.limit_threads))

    def start(self, call: TaskCall, env: dict[str, str], rank: int = 0) -> AttemptFuture:
        """Run ``call`` (worker ``rank`` of it) in a new worker process with ``env`` added to
        the executor's environment."""
        payload = dumps(
            {
                "call": call,
                "allowed": self._registry.snapshot(),
                "sys_path": list(sys.path),
                "memory": call.resources.memory,
                "rank": rank,
            }
        )
        fut = AttemptFuture()
        fut.set_running_or_notify_cancel()
        with self._lock:
            if self._closed:
                raise ShutDownError(f"executor {self.name!r} is shut down")
            (ctl_r, ctl_w), (out_r, out_w), (so_r, so_w), (se_r, se_w) = (os.pipe() for _ in range(4))
            try:
                proc = subprocess.Popen(
                    [self._python, "-c", _WORKER_MAIN, str(ctl_r), str(out_w)],
                    pass_fds=(ctl_r, out_w),
                    stdin=subprocess.DEVNULL,
                    stdout=so_w,
                    stderr=se_w,
                    env={**self._env, **env},
                    start_new_session=True,
                )
            except BaseException:
                for fd in (ctl_r, ctl_w, out_r, out_w, so_r, so_w, se_r, se_w):
                    os.close(fd)
                raise
            for fd in (ctl_r, out_w, so_w, se_w):
                os.close(fd)
            for fd in (ctl_w, out_r, so_r, se_r):
                os.set_blocking(fd, False)
            data = memoryview(struct.pack(">Q", len(payload)) + payload)
            try:
                data = data[os.write(ctl_w, data) :]
            except BlockingIOError:
                pass
            deadline = time.monotonic() + call.timeout if call.timeout is not None else None
            capture = PipeCapture(call, {so_r: "stdout", se_r: "stderr"}, self._live.logs, fut)
            w = _Worker(call, fut, proc, os.pidfd_open(proc.pid), ctl_w, out_r, data, deadline, capture)
            self._workers[fut] = w
            self._new.append(w)
            self._ensure_monitor()
        self._wake()
        return fut

    def kill(self, future: Future[Any]) -> None:
        """Kill the call's process group (SIGTERM, SIGKILL after ``grace``): it fails as cancelled."""
        w = self._workers.get(future)
        if w is not None:
            self._stop(w, CANCELLED, "task {task!r} was cancelled (process group killed)")

    def live_logs(self) -> list[LogRecord]:
        """Logs of the running attempts that wrote something since the last call."""
        return self._live.changed()

    def owns(self, future: Future[Any]) -> bool:
        """Whether ``future`` is a running call of this executor."""
        return future in self._workers

    def nodes(self) -> Sequence[Node]:
        return self._nodes

    def pids(self) -> dict[str, int]:
        """Pid of the running worker of each task instance (``task_id``)."""
        with self._lock:
            return {w.call.task_id: w.pid for w in self._workers.values()}

    def shutdown(self, wait: bool = True) -> None:
        """Kill every worker still running (its Future fails as ``cancelled``) and stop."""
        with self._lock:
            self._closed = True
            workers = list(self._workers.values())
            thread = self._thread
        for w in workers:
            self._stop(
                w, CANCELLED, "task {task!r} was cancelled: the executor shut down", sig=signal.SIGKILL
            )
        self._wake()
        if thread is None:
            self._close_wake()
        elif wait and thread is not threading.current_thread():
            thread.join()

    # ------------------------------------------------------------------ stopping

    def _stop(self, w: _Worker, reason: str, message: str, sig: int = signal.SIGTERM) -> None:
        with self._lock:
            if w.reason is None:
                w.reason = reason
                w.message = message.format(task=w.call.task_id, timeout=w.call.timeout)
            if sig == signal.SIGKILL:
                w.kill_at = 0.0
            elif w.kill_at is None:
                w.kill_at = time.monotonic() + self._grace
            if w.proc.returncode is None:  # under the lock: never signal a reaped (reusable) id
                kill_group(w.pid, sig)
        self._wake()

    def _kill_all_now(self) -> None:
        with self._lock:
            for w in self._workers.values():
                if w.proc.returncode is None:
                    kill_group(w.pid)

    # ------------------------------------------------------------------ monitor thread

    def _wake(self) -> None:
        with self._lock:
            if self._wake_w < 0:
                return
            try:
                os.write(self._wake_w, b"x")
            except BlockingIOError:  # already awake
                pass

    def _close_wake(self) -> None:
        with self._lock:
            fds, self._wake_r, self._wake_w = (self._wake_r, self._wake_w), -1, -1
        for fd in fds:
            if fd >= 0:
                os.close(fd)

    def _ensure_monitor(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._monitor, name=f"podium-{self.name}-monitor", daemon=True
            )
            self._thread.start()

    def _monitor(self) -> None:
        sel = selectors.DefaultSelector()
        sel.register(self._wake_r, selectors.EVENT_READ, None)
        try:
            while True:
                with self._lock:
                    new, self._new = self._new, []
                    if self._closed and not self._workers:
                        return
                for w in new:
                    self._register(sel, w)
                for key, _mask in sel.select(self._next_timeout()):
                    if key.data is None:
                        try:
                            while os.read(self._wake_r, 4096):
                                pass
                        except BlockingIOError:
                            pass
                        continue
                    w, what = key.data
                    if w.future not in self._workers:  # finished earlier in this batch
                        continue
                    try:
                        if what == "out":
                            self._read(sel, w)
                        elif what == "ctl":
                            self._write(sel, w)
                        elif what == "exit":
                            self._finish(sel, w)
                        elif w.capture.read(key.fd):  # its stdout or stderr ended
                            sel.unregister(key.fd)
                    except Exception as exc:  # never leave a Future hanging on a bug here
                        self._abandon(sel, w, exc)
                self._enforce_deadlines()
        finally:
            sel.close()
            self._close_wake()

    def _register(self, sel: selectors.BaseSelector, w: _Worker) -> None:
        sel.register(w.pidfd, selectors.EVENT_READ, (w, "exit"))
        sel.register(w.out, selectors.EVENT_READ, (w, "out"))
        for fd in w.capture.fds:
            sel.register(fd, selectors.EVENT_READ, (w, "log"))
        if w.pending:
            sel.register(w.ctl, selectors.EVENT_WRITE, (w, "ctl"))

    def _write(self, sel: selectors.BaseSelector, w: _Worker) -> None:
        try:
            w.pending = w.pending[os.write(w.ctl, w.pending) :]
        except BlockingIOError:
            return
        except OSError:  # the worker is gone; its exit is handled through the pidfd
            w.pending = memoryview(b"")
        if not w.pending:
            sel.unregister(w.ctl)

    def _read(self, sel: selectors.BaseSelector, w: _Worker) -> bool:
        """Read what the worker sent so far; True at end of stream."""
        while True:
            try:
                b = os.read(w.out, 1 << 20)
            except BlockingIOError:
                return False
            if not b:
                if w.out in sel.get_map():
                    sel.unregister(w.out)
                return True
            w.chunks.append(b)

    def _next_timeout(self) -> float | None:
        now = time.monotonic()
        with self._lock:
            times = [
                t
                for w in self._workers.values()
                for t in ((w.kill_at,) if w.reason is not None else (w.deadline,))
                if t is not None
            ]
        return max(0.0, min(times) - now) if times else None

    def _enforce_deadlines(self) -> None:
        now = time.monotonic()
        with self._lock:
            workers = list(self._workers.values())
        for w in workers:
            if w.reason is None and w.deadline is not None and now >= w.deadline:
                self._stop(w, TIMEOUT, "task {task!r} timed out after {timeout:g}s (process group killed)")
            elif w.reason is not None and w.kill_at is not None and now >= w.kill_at:
                w.kill_at = None
                kill_group(w.pid)

    def _finish(self, sel: selectors.BaseSelector, w: _Worker) -> None:
        """The worker exited (a zombie until reaped): collect its result, kill its group, reap."""
        self._read(sel, w)
        with self._lock:
            kill_group(w.pid)  # leftovers of the group; the zombie leader keeps the id reserved
            try:
                _, status, usage = os.wait4(w.pid, 0)
                code = os.waitstatus_to_exitcode(status)
            except ChildProcessError:  # reaped by someone else (a stray waitpid(-1))
                code, usage = -signal.SIGKILL, None
            w.proc.returncode = code
        log = w.capture.finish()
        for fd in (w.pidfd, w.out, w.ctl, *w.capture.fds):
            if fd in sel.get_map():
                sel.unregister(fd)
            os.close(fd)
        with self._lock:
            self._workers.pop(w.future, None)
        peak = usage.ru_maxrss * 1024 if usage is not None else 0
        body = b"".join(w.chunks)
        if len(body) > 8:  # a result, then the worker's own peak RSS (wait4's includes its parent's)
            peak = struct.unpack_from(">Q", body, len(body) - 8)[0]
            w.chunks = [body[:-8]]
        meta: AttemptMeta = {"pid": w.pid, "peak_rss": peak, "exit": code, "measured": "process"}
        if usage is not None:  # the worker and the children it reaped (a shell task's command)
            meta["cpu_time"] = usage.ru_utime + usage.ru_stime
        w.future.podium_meta = meta
        if log is not None:
            meta["log"] = log
        outcome = self._outcome(w, code, peak)
        try:
            if isinstance(outcome, TaskFailedError):
                w.future.set_exception(outcome)
            else:
                w.future.set_result(outcome)
        except InvalidStateError:
            pass

    def _abandon(self, sel: selectors.BaseSelector, w: _Worker, exc: Exception) -> None:
        kill_group(w.pid)
        with self._lock:
            self._workers.pop(w.future, None)
        self._live.logs.pop(w.future, None)
        for fd in (w.pidfd, w.out, w.ctl, *w.capture.fds):
            if fd in sel.get_map():
                sel.unregister(fd)
            try:
                os.close(fd)
            except OSError:
                pass
        msg = f"lost track of the worker process for task {w.call.task_id!r}: {exc!r}"
        try:
            w.future.set_exception(failure(WORKER_LOST, "WorkerLost", msg))
        except InvalidStateError:
            pass

    def _outcome(self, w: _Worker, code: int, peak: int) -> Any:
        task = w.call.task_id
        if w.reason is not None:
            return failure(
                w.reason, _TYPES[w.reason], w.message, retryable=w.reason != CANCELLED, peak_rss=peak
            )
        if w.chunks:
            try:
                status, value = pickle.loads(b"".join(w.chunks))
            except Exception as exc:
                msg = f"worker process for task {task!r} sent a broken result ({exc})"
                return failure(WORKER_LOST, "ProtocolError", msg)
            if status == "ok":
                return value
            rec = ErrorRecord.from_dict(value)
            rec.extra.setdefault("peak_rss", peak)
            return TaskFailedError(rec)
        memory = w.call.resources.memory
        if code < 0:
            sig = signame(-code)
            if -code == signal.SIGKILL and memory and peak >= OOM_RSS_FRACTION * memory:
                msg = (
                    f"worker process for task {task!r} was killed by SIGKILL at {peak / 1024**2:.0f}MiB "
                    f"peak RSS (memory request {memory / 1024**2:.0f}MiB): out of memory"
                )
                return failure(OOM, "OutOfMemory", msg, peak_rss=peak)
            msg = f"worker process for task {task!r} was killed by {sig}"
            return failure(WORKER_LOST, "WorkerLost", msg, signal=sig, peak_rss=peak)
        msg = f"worker process for task {task!r} exited with code {code} without a result"
        return failure(WORKER_LOST, "WorkerLost", msg, exit_code=code, peak_rss=peak)


_TYPES = {TIMEOUT: "TimeoutError", CANCELLED: "Cancelled"}


@atexit.register
def _kill_leftovers() -> None:
    for ex in list(_LIVE):
        ex._kill_all_now()
