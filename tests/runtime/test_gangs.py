"""Gang-scheduled tasks on local processes: N workers started together, all or none.

Real worker processes on the real local executor: each worker reports the torch.distributed
variables it was started with; a worker that dies stops the others and the gang retries as one
attempt; a gang the node cannot hold at once is rejected before the run.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import gpu_tasks
import pytest

from podium.errors import SpecError
from podium.executors.inline import InlineExecutor
from podium.executors.local import LocalExecutor
from podium.model import Const, Node, Resources, RetryPolicy, TaskSpec, Workflow
from podium.model import events as ev
from podium.model.devices import parse_gpus
from podium.runtime.engine import Engine
from podium.runtime.view import fold
from podium.store import open_store
from podium.types import Store

NODE = Node("local", Resources.of(cpu=4, memory="8GiB"), gpus=parse_gpus(4))


@pytest.fixture
def ex() -> Iterator[LocalExecutor]:
    e = LocalExecutor([NODE], registry=gpu_tasks.registry("sh"))
    yield e
    e.shutdown()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = open_store(str(tmp_path / "p.db"))
    yield s
    s.close()


def test_workers_start_together_with_their_ranks_and_the_result_is_rank_0s(
    ex: LocalExecutor, store: Store, tmp_path: Path
) -> None:
    log = tmp_path / "ranks.log"
    gang = TaskSpec(
        "ddp",
        call="gpu_tasks:gang_member",
        args={"log": Const(str(log)), "hold": Const(0.3)},
        resources=Resources.of(cpu=1, gpu=1),
        workers=3,
    )
    shell = TaskSpec(
        "tool",
        kind="shell",
        config={
            "argv": ("sh", "-c", "echo $RANK/$WORLD_SIZE/$LOCAL_RANK/$MASTER_ADDR/$CUDA_VISIBLE_DEVICES")
        },
        resources=Resources.of(cpu=0.5),
        workers=2,
        after=("ddp",),
    )
    result = Engine(store, ex).run(Workflow.build("gang", [gang, shell]), {})
    assert result.status == "succeeded"
    assert result.values["ddp"] == {"rank": 0, "world": 3, "attempt": 1}
    lines = [line.split() for line in log.read_text().splitlines()]
    assert sorted(int(r) for _, r, _ in lines) == [0, 1, 2]
    assert len({pid for *_, pid in lines}) == 3  # one process per worker
    started = next(e for e in store.events(result.run_id) if e.type == ev.TASK_STARTED and e.task_id == "ddp")
    assert started.data["workers"] == 3
    devices = [d for _, gpus in started.data["ranks"] for d in gpus]
    assert sorted(devices) == [0, 1, 2] or len(set(devices)) == 3  # each worker its own GPU
    out = result.values["tool"]["stdout"].strip().split("/")
    assert out[:4] == ["0", "2", "0", "127.0.0.1"] and out[4] == ""  # rank 0's output; no GPU
    view = fold(store.events(result.run_id))
    assert view.tasks["ddp"].ranks is not None and len(view.tasks["ddp"].ranks) == 3


def test_a_dead_worker_stops_the_others_and_the_gang_retries_as_one(
    ex: LocalExecutor, store: Store, tmp_path: Path
) -> None:
    log = tmp_path / "ranks.log"
    gang = TaskSpec(
        "ddp",
        call="gpu_tasks:gang_member",
        args={"log": Const(str(log)), "fail_rank": Const(1), "fail_attempts": Const(1), "linger": Const(600)},
        resources=Resources.of(cpu=1),
        workers=3,
        retry=RetryPolicy(attempts=2, delay=0.01, jitter=0.0),
    )
    # the survivors of the first attempt would wait 600 s (past the test timeout): the gang kills them
    result = Engine(store, ex).run(Workflow.build("retry", [gang]), {})
    assert result.status == "succeeded"
    assert result.values["ddp"]["attempt"] == 2
    lines = [line.split() for line in log.read_text().splitlines()]
    first = [int(pid) for a, _, pid in lines if a == "1"]
    assert sorted(int(r) for a, r, _ in lines if a == "1") == [0, 1, 2]
    assert sorted(int(r) for a, r, _ in lines if a == "2") == [0, 1, 2]
    for pid in first:  # every worker of the failed attempt is gone, not left running
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    attempts = [e for e in store.events(result.run_id) if e.task_id == "ddp" and e.type == ev.TASK_STARTED]
    assert len(attempts) == 2  # one attempt for the gang, not one per worker


def test_a_gang_the_nodes_cannot_hold_at_once_is_rejected_before_the_run(
    ex: LocalExecutor, store: Store
) -> None:
    big = TaskSpec("big", call="gpu_tasks:report", resources=Resources.of(cpu=2), workers=3)
    with pytest.raises(SpecError, match=r"big\.workers.*3 workers never fit at once: the nodes hold 2"):
        Engine(store, ex).run(Workflow.build("big", [big]), {})
    assert store.list_runs() == []


def test_two_gangs_that_do_not_fit_together_run_one_after_the_other(
    ex: LocalExecutor, store: Store, tmp_path: Path
) -> None:
    log = tmp_path / "ranks.log"
    gangs = [
        TaskSpec(
            f"g{i}",
            call="gpu_tasks:gang_member",
            args={"log": Const(str(log)), "hold": Const(0.2)},
            resources=Resources.of(cpu=1.5),
            workers=2,
        )
        for i in range(2)
    ]
    result = Engine(store, ex).run(Workflow.build("two", gangs), {})
    assert result.status == "succeeded"
    events = store.events(result.run_id)
    span = {}
    for e in events:
        if e.task_id in ("g0", "g1") and e.type in (ev.TASK_STARTED, ev.TASK_SUCCEEDED):
            span.setdefault(e.task_id, []).append(e.ts)
    (s0, e0), (s1, e1) = span["g0"], span["g1"]
    assert e0 <= s1 or e1 <= s0  # 2 x 1.5 cpu each: never both at once on 4 cpus


def test_an_executor_that_cannot_start_gangs_is_refused_before_the_run(store: Store) -> None:
    inline = InlineExecutor([NODE])
    gang = TaskSpec("ddp", call="gpu_tasks:report", resources=Resources.of(cpu=1), workers=2)
    with pytest.raises(SpecError, match=r"ddp\.workers.*executor 'inline' cannot start gang-scheduled tasks"):
        Engine(store, inline).run(Workflow.build("inline", [gang]), {})
    assert store.list_runs() == []
