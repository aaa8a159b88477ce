"""Worker processes: every run the server starts runs in a process of its own.

A worker is ``python -m podium run FILE --run-id ID ...`` (or ``podium resume``) with the store
URL in ``PODIUM_STORE`` (kept out of argv, where ``ps`` shows it),
argv lists only, started in its own session so a Ctrl-C of the server does not reach it, its
output in a 0600 log file under the server's state directory. A worker that crashes takes
down only its run; the server notices (``poll``) and resumes the run, up to ``MAX_RESTARTS``
times. The server's own records (``ServerState``) say which runs its workers started, so a
restarted server adopts the workers still alive (watching them, able to signal them) and
resumes the runs whose worker died. Invariants: at most ``max_active`` workers at once;
only a process the server started itself, or one whose pid and start time match its records,
is ever signalled (a reused pid is never hit).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from podium.errors import ConflictError, NotFoundError
from podium.model import states as st
from podium.runtime.owner import owner_gone, owner_pid
from podium.server.problems import Forbidden, NotSupported, TooBusy
from podium.server.state import ServerState

log = logging.getLogger("podium.server")
#: Times the server resumes a run whose worker died before giving up on it.
MAX_RESTARTS = 2
_ACTIVE = frozenset({st.RUN_CREATED_STATE, st.RUN_RUNNING})


@dataclass
class Worker:
    run_id: str
    pid: int
    started: float  # the process's start time (psutil), to recognise it later
    proc: subprocess.Popen[bytes] | None  # None: adopted from an earlier server


def _process_start(pid: int) -> float | None:
    import psutil

    try:
        return float(psutil.Process(pid).create_time())
    except psutil.Error:
        return None


def _alive(w: Worker) -> bool:
    if w.proc is not None:
        return w.proc.poll() is None
    import psutil

    try:
        p = psutil.Process(w.pid)
        return abs(p.create_time() - w.started) < 1.0 and p.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _wait_exit(w: Worker, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while _alive(w) and time.monotonic() < deadline:
        time.sleep(0.02)


_RESUME_FROM: list[bool] = []


def supports_resume_from(python: str = sys.executable) -> bool:
    """Whether the workers' ``podium resume`` takes ``--from TASK`` (asked once, of the same
    command the workers run)."""
    if not _RESUME_FROM:
        try:
            done = subprocess.run(
                [python, "-m", "podium", "resume", "--help"], capture_output=True, text=True, timeout=60
            )
            _RESUME_FROM.append("--from" in done.stdout)
        except (OSError, subprocess.TimeoutExpired):
            return False
    return _RESUME_FROM[0]


class Workers:
    """Starts, watches, cancels and resumes the server's worker processes."""

    def __init__(
        self,
        store: Any,
        store_url: str,
        state: ServerState,
        catalog: Any,
        *,
        log_dir: Path,
        cwd: Path,
        max_active: int,
        python: str = sys.executable,
    ) -> None:
        self.store = store
        self.store_url = store_url
        self.state = state
        self.catalog = catalog
        self.log_dir = log_dir
        self.cwd = cwd
        self.max_active = max_active
        self.python = python
        self.workers: dict[str, Worker] = {}
        self.cancelling: set[str] = set()  # cancel asked while the worker was starting
        self.lock = threading.Lock()
        self.log_dir.mkdir(parents=True, exist_ok=True, mode=0o700)

    # -- starting --------------------------------------------------------------------------
    def active(self) -> int:
        with self.lock:
            return sum(1 for w in self.workers.values() if _alive(w))

    def _room(self) -> None:
        if self.max_active == 0:
            raise TooBusy("this server starts no runs (max_active_runs = 0)")
        if self.active() >= self.max_active:
            raise TooBusy(f"the server already runs {self.max_active} runs (max_active_runs); try later")

    def launch(self, reg: Any, pairs: list[str]) -> str:
        """Start a run of a registered workflow; its id (the run is created by the worker)."""
        self._room()
        self.catalog.check_unchanged(reg)
        run_id = uuid.uuid4().hex[:12]
        argv = [self.python, "-m", "podium", "run", reg.entry.resolved, "--run-id", run_id]
        argv += ["--no-progress"]
        for m in self.catalog.config.allow_modules:
            argv += ["--allow-module", m]
        for pair in pairs:
            argv += ["-p", pair]
        self._spawn(run_id, reg.name, argv)
        return run_id

    def resume(self, run_id: str, from_task: str | None = None) -> None:
        record = self.store.get_run(run_id)
        if from_task is not None and not supports_resume_from(self.python):
            raise ConflictError(
                f"resume from a task ({from_task!r}) is not available in this version; resume the whole run"
            )
        if record.status == st.RUN_SUCCEEDED and from_task is None:
            raise ConflictError(f"run {run_id!r} succeeded; there is nothing to resume")
        reg = self.catalog.for_run(record.source, record.workflow)
        if reg is None:
            raise Forbidden(
                f"run {run_id!r} is of workflow {record.workflow!r} as it was when the run started, "
                "which this server has not registered; resume it with `podium resume`"
            )
        if from_task is not None:  # an unknown task is refused here, naming the closest ones
            from podium.runtime.rerun import downstream

            downstream(reg.workflow, from_task)
        with self.lock:
            w = self.workers.get(run_id)
        if w is not None and record.status in st.RUN_FINISHED:
            _wait_exit(w, 3.0)  # the run ended; its worker is closing the store and exiting
        if w is not None and _alive(w):
            raise ConflictError(f"run {run_id!r} is still running (worker {w.pid})")
        if record.status in _ACTIVE and record.owner and not owner_gone(record.owner):
            raise ConflictError(f"run {run_id!r} is still being run by {record.owner}; cancel it first")
        self._room()
        argv = [self.python, "-m", "podium", "resume", run_id, "--no-progress"]
        if from_task is not None:
            argv += ["--from", from_task]
        self._spawn(run_id, record.workflow, argv)

    def _spawn(self, run_id: str, workflow: str, argv: list[str]) -> None:
        log_path = self.log_dir / f"{run_id}.log"
        fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self.state.record_launch(run_id, workflow, str(log_path))
        # the store URL travels in the environment, not in argv: a password in it stays out of `ps`
        env = dict(os.environ, PYTHONUNBUFFERED="1", PODIUM_STORE=self.store_url)
        try:
            proc = subprocess.Popen(
                argv,
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                stdout=fd,
                stderr=fd,
                start_new_session=True,
                env=env,
            )
        except OSError as e:
            self.state.finish(run_id, None, f"cannot start a worker: {e.strerror}")
            raise
        finally:
            os.close(fd)
        started = _process_start(proc.pid) or time.time()
        self.state.set_worker(run_id, proc.pid, started)
        with self.lock:
            self.workers[run_id] = Worker(run_id, proc.pid, started, proc)
        log.info("run %s: worker %d started (podium %s)", run_id, proc.pid, argv[3])

    def wait_created(self, run_id: str, timeout: float = 30.0) -> None:
        """Wait until the worker has written the run (or has died trying: its error, 422)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.store.get_run(run_id)
                return
            except NotFoundError:
                pass
            with self.lock:
                w = self.workers.get(run_id)
            if w is None or not _alive(w):
                self.poll()
                launch = self.state.launch(run_id)
                note = launch.note if launch is not None else None
                with contextlib.suppress(NotFoundError):
                    self.store.get_run(run_id)
                    return
                raise NotSupported(note or f"the worker for run {run_id!r} exited before starting it")
            time.sleep(0.02)

    # -- stopping --------------------------------------------------------------------------
    def cancel(self, run_id: str) -> None:
        record = self.store.get_run(run_id)
        if record.status in st.RUN_FINISHED:
            raise ConflictError(f"run {run_id!r} has already {record.status}; nothing to cancel")
        self.store.request_cancel(run_id)  # any orchestrator, in any process, polls for this
        with self.lock:
            self.cancelling.add(run_id)
        self._signal_cancel(run_id)

    def _signal_cancel(self, run_id: str) -> None:
        """SIGINT (the CLI's Ctrl-C: tasks stopped, run marked cancelled) to the run's worker once
        its engine owns the run. A worker still starting is left alone: its engine clears old
        cancel requests when it takes the run, so the request is repeated then (``poll``)."""
        with self.lock:
            w = self.workers.get(run_id)
        if w is None or not _alive(w):
            with self.lock:
                self.cancelling.discard(run_id)
            return
        try:
            record = self.store.get_run(run_id)
        except NotFoundError:
            return
        if owner_pid(record.owner) != w.pid:
            return
        if record.status in _ACTIVE:
            self.store.request_cancel(run_id)
            with contextlib.suppress(ProcessLookupError):
                os.kill(w.pid, signal.SIGINT)
        with self.lock:
            self.cancelling.discard(run_id)

    # -- watching --------------------------------------------------------------------------
    def poll(self) -> list[str]:
        """Reap workers that ended; resume runs whose worker died. Returns the runs resumed."""
        ended: list[Worker] = []
        with self.lock:
            for run_id, w in list(self.workers.items()):
                if not _alive(w):
                    ended.append(w)
                    del self.workers[run_id]
        resumed = []
        for w in ended:
            code = w.proc.returncode if w.proc is not None else None
            if self._after_exit(w.run_id, code):
                resumed.append(w.run_id)
        for run_id in list(self.cancelling):  # after the resumes: a resumed run is still to cancel
            self._signal_cancel(run_id)
        return resumed

    def _after_exit(self, run_id: str, code: int | None) -> bool:
        try:
            record = self.store.get_run(run_id)
        except NotFoundError:
            self.state.finish(run_id, code, self._last_line(run_id) or f"the worker exited with code {code}")
            return False
        if record.status not in _ACTIVE:
            self.state.finish(run_id, code)
            return False
        launch = self.state.launch(run_id)
        restarts = launch.restarts if launch is not None else MAX_RESTARTS
        if restarts >= MAX_RESTARTS:
            self.state.finish(run_id, code, f"the worker died {restarts + 1} times; not resumed again")
            return False
        self.state.count_restart(run_id)
        try:
            self.resume(run_id)
        except Exception as e:  # keep watching the others; the reason stays in the records
            self.state.finish(run_id, code, f"could not resume after the worker died: {e}")
            return False
        return True

    def adopt(self) -> tuple[list[str], list[str]]:
        """At start: adopt workers of an earlier server that still run, resume runs whose
        worker died. Returns ``(adopted, resumed)`` run ids."""
        adopted, resumed = [], []
        for launch in self.state.unfinished():
            w = None
            if launch.pid is not None and launch.pid_started is not None:
                w = Worker(launch.run_id, launch.pid, launch.pid_started, None)
            if w is not None and _alive(w):
                with self.lock:
                    self.workers[launch.run_id] = w
                adopted.append(launch.run_id)
            elif self._after_exit(launch.run_id, None):
                resumed.append(launch.run_id)
        return adopted, resumed

    def _last_line(self, run_id: str) -> str | None:
        """The worker's last error, on one line (from its last ``error:`` line to the end)."""
        try:
            text = (self.log_dir / f"{run_id}.log").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return None
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        if not lines:
            return None
        start = max((i for i, ln in enumerate(lines) if ln.startswith("error: ")), default=len(lines) - 1)
        return "; ".join(lines[start:]).removeprefix("error: ")[:1000]
