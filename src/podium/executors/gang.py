"""Gangs on local nodes: the workers of a gang-scheduled task, started together as processes.

``LocalGang.submit(call)`` starts one worker process per grant of the call (one ``Grant`` per
rank: its node and GPUs), through the ``ProcessExecutor`` of that node, each with its rank's
variables (``taskenv.rank_env``: ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``,
``MASTER_PORT``...), and returns ONE future for the attempt:

- when every worker succeeded it resolves to rank 0's result;
- as soon as one worker fails, the others are killed (their process groups; a collective
  would otherwise wait for the dead one until its own timeout), and once all have exited the
  attempt fails with the most telling failure: a lost worker, then out of memory, then a
  timeout, then the task's own error; workers killed by the gang itself count last. A lost
  worker makes the engine retry the whole gang as one attempt, like any lost worker;
- ``kill`` kills every worker.

``MASTER_ADDR`` is 127.0.0.1 (local nodes are processes of this machine) and ``MASTER_PORT`` a
port found free on it just before the workers start; if another process takes it meanwhile,
the workers fail to meet and the attempt fails as the task's own error.

Invariants: the attempt's future resolves once, after every worker process has exited (so
the engine never hands out a worker's resources while it still runs); a gang that could not
start all its workers kills those it started and fails.
"""

from __future__ import annotations

import functools
import socket
import threading
from collections.abc import Mapping
from concurrent.futures import Future, InvalidStateError
from typing import Any

from podium.executors.failure import worst
from podium.executors.process import ProcessExecutor
from podium.executors.taskenv import rank_env
from podium.model.task import TaskCall
from podium.types import AttemptFuture, meta_of, outcome_of


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` now (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class _Gang:
    __slots__ = ("errors", "future", "left", "lock", "members", "stopping", "value")

    def __init__(self, future: AttemptFuture, size: int) -> None:
        self.future = future
        self.members: list[tuple[ProcessExecutor, Future[Any]]] = []
        self.left = size
        self.errors: list[BaseException] = []
        self.value: Any = None
        self.stopping = False
        self.lock = threading.Lock()


class LocalGang:
    """Runs gang-scheduled calls on the process executors of local nodes (see the module
    docstring)."""

    def __init__(self, procs: Mapping[str, ProcessExecutor]) -> None:
        self._procs = procs
        self._gangs: dict[Future[Any], _Gang] = {}

    def owns(self, future: Future[Any]) -> bool:
        return future in self._gangs

    def submit(self, call: TaskCall) -> AttemptFuture:
        fut = AttemptFuture()
        fut.set_running_or_notify_cancel()
        gang = _Gang(fut, len(call.grants))
        master = ("127.0.0.1", free_port())
        try:
            for rank, grant in enumerate(call.grants):
                pool = self._procs[grant.node]
                gang.members.append(
                    (pool, pool.start(call, rank_env(call, rank, master, pool.limit_threads), rank))
                )
        except BaseException:
            for pool, f in gang.members:
                pool.kill(f)
            raise
        self._gangs[fut] = gang
        for rank, (_, member) in enumerate(gang.members):
            member.add_done_callback(functools.partial(self._done, gang, rank))
        return fut

    def kill(self, future: Future[Any]) -> None:
        gang = self._gangs.get(future)
        if gang is not None:
            self._stop(gang)

    def _stop(self, gang: _Gang) -> None:
        with gang.lock:
            if gang.stopping:
                return
            gang.stopping = True
        for pool, f in gang.members:
            pool.kill(f)

    def _done(self, gang: _Gang, rank: int, f: Future[Any]) -> None:
        value, exc = outcome_of(f)
        with gang.lock:
            gang.left -= 1
            if exc is not None:
                gang.errors.append(exc)
            elif rank == 0:
                gang.value = value
                gang.future.podium_meta = meta_of(f)
            last = gang.left == 0
        if exc is not None:
            self._stop(gang)
        if not last:
            return
        self._gangs.pop(gang.future, None)
        try:
            if gang.errors:
                gang.future.set_exception(worst(gang.errors))
            else:
                gang.future.set_result(gang.value)
        except InvalidStateError:
            pass


__all__ = ["LocalGang", "free_port", "worst"]
