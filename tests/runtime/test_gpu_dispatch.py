"""GPUs handed to tasks at dispatch, on a node declared with 4 GPUs (no GPU is needed).

What each task reports about itself (its ``CUDA_VISIBLE_DEVICES``, ``podium.context().gpus``)
is compared with the event log's ``TaskStarted`` and with the log's intervals: at no instant
does a device hold more than one GPU, a whole GPU is never shared, and every task sees exactly
the devices it was granted.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gpu_tasks
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from podium.errors import GPU_OOM
from podium.executors.local import LocalExecutor
from podium.model import Node, Resources, TaskSpec, Workflow
from podium.model import events as ev
from podium.model.devices import parse_gpus
from podium.runtime.engine import Engine
from podium.runtime.view import fold
from podium.store import open_store

GPU_NODE = Node("gpu-a", Resources.of(cpu=16, memory="8GiB"), gpus=parse_gpus([0, 1, 2, 3]))
SHELL_REPORT = ["sh", "-c", 'echo "$CUDA_VISIBLE_DEVICES|$PODIUM_GPUS|$OMP_NUM_THREADS"; sleep "$1"', "-"]


@pytest.fixture
def gpu_executor() -> Iterator[LocalExecutor]:
    ex = LocalExecutor([GPU_NODE], registry=gpu_tasks.registry("sh"))
    yield ex
    ex.shutdown()


def shell_task(name: str, gpu: float, seconds: float, cpu: float = 1.0) -> TaskSpec:
    return TaskSpec(
        name,
        kind="shell",
        config={"argv": (*SHELL_REPORT, f"{seconds:g}")},
        resources=Resources.of(cpu=cpu, gpu=gpu),
    )


def granted(events: list[ev.Event]) -> dict[str, tuple[float, float, list[int], float]]:
    """task -> (start, end, devices granted, gpu request) from the log."""
    out: dict[str, Any] = {}
    starts = {e.task_id: e for e in events if e.type == ev.TASK_STARTED}
    for e in events:
        if e.type == ev.TASK_SUCCEEDED:
            s = starts[e.task_id]
            out[e.task_id] = (s.ts, e.ts, s.data.get("gpus", []), s.data["res"].get("gpu", 0.0))
    return out


def assert_never_over_committed(grants: dict[str, tuple[float, float, list[int], float]]) -> None:
    """At every start, each device holds at most one GPU; a whole GPU is nobody else's."""
    for _, (s0, _, _, _) in grants.items():
        running = [(gs, g) for (s, e, gs, g) in grants.values() if s <= s0 < e]
        for device in range(4):
            shares = [min(g, 1) for gs, g in running if device in gs]
            if any(g >= 1 for g in shares):
                assert len(shares) == 1, f"whole GPU {device} shared at {s0}: {shares}"
            assert sum(shares) <= 1 + 1e-9, f"GPU {device} over-committed at {s0}: {shares}"


def test_process_and_shell_tasks_see_exactly_their_gpus(tmp_path: Path, gpu_executor: LocalExecutor) -> None:
    requests = {"w1": 1, "w2": 2, "h1": 0.5, "h2": 0.5, "q1": 0.25, "w3": 1, "none": 0}
    tasks = [
        TaskSpec(
            f"p_{k}",
            call="gpu_tasks:report",
            args={"seconds": 0.3},
            resources=Resources.of(cpu=1, gpu=g),
            isolation="process",
        )
        for k, g in requests.items()
    ]
    tasks += [shell_task(f"s_{k}", g, 0.3) for k, g in requests.items()]
    store = open_store(str(tmp_path / "p.db"))
    result = Engine(store, gpu_executor).run(Workflow.build("gpus", tasks), {})
    assert result.status == "succeeded"
    events = store.events(result.run_id)
    grants = granted(events)
    assert_never_over_committed(grants)
    for name, value in result.values.items():
        _, _, devices, gpu = grants[name]
        want = ",".join(str(d) for d in devices)
        assert len(devices) == (0 if not gpu else max(1, int(gpu)))
        if name.startswith("p_"):
            assert value["gpus"] == devices  # podium.context() in the worker process
            assert value["cuda"] == (want if gpu else None)
        else:
            cuda, podium_gpus, _ = value["stdout"].strip().split("|")
            assert cuda == podium_gpus == want
    view = fold(events)
    assert view.tasks["p_w2"].gpus == grants["p_w2"][2]  # recorded in TaskStarted, for `podium show`
    store.close()


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.tuples(st.sampled_from([0.2, 0.25, 0.5, 0.7, 1, 1, 2, 3, 4]), st.sampled_from([0.0, 0.05, 0.1])),
        min_size=1,
        max_size=9,
    )
)
def test_random_gpu_requests_are_never_over_committed(
    tmp_path_factory: pytest.TempPathFactory, gpu_executor: LocalExecutor, reqs: list[tuple[float, float]]
) -> None:
    """Concurrent shell tasks with random whole and fractional requests: each sees exactly its
    grant (from what the task prints) and no device is ever over-committed."""
    tasks = [shell_task(f"t{i}", g, secs, cpu=0.5) for i, (g, secs) in enumerate(reqs)]
    store = open_store(str(tmp_path_factory.mktemp("run") / "p.db"))
    result = Engine(store, gpu_executor).run(Workflow.build("random", tasks), {})
    assert result.status == "succeeded"
    grants = granted(store.events(result.run_id))
    assert_never_over_committed(grants)
    for name, value in result.values.items():
        _, _, devices, gpu = grants[name]
        cuda = value["stdout"].split("|")[0]
        assert cuda == ",".join(str(d) for d in devices)
        assert len(devices) == max(1, int(gpu))
    store.close()


def test_thread_tasks_get_their_gpus_from_the_context(tmp_path: Path, gpu_executor: LocalExecutor) -> None:
    tasks = [TaskSpec(f"t{i}", call="gpu_tasks:report", resources=Resources.of(gpu=1)) for i in range(4)]
    store = open_store(str(tmp_path / "p.db"))
    result = Engine(store, gpu_executor).run(Workflow.build("threads", tasks), {})
    seen = sorted(v["gpus"][0] for v in result.values.values())
    assert seen == [0, 1, 2, 3]  # four whole GPUs, one each, all at once
    store.close()


def test_thread_counts_follow_the_cpu_request_unless_the_task_sets_them(
    tmp_path: Path, gpu_executor: LocalExecutor
) -> None:
    own = TaskSpec(
        "own",
        kind="shell",
        config={
            "argv": ("sh", "-c", "echo $OMP_NUM_THREADS $MKL_NUM_THREADS"),
            "env": {"OMP_NUM_THREADS": "7"},
        },
        resources=Resources.of(cpu=3),
    )
    tasks = [
        TaskSpec("two", call="gpu_tasks:report", resources=Resources.of(cpu=2), isolation="process"),
        TaskSpec("half", call="gpu_tasks:report", resources=Resources.of(cpu=0.5), isolation="process"),
        shell_task("sh", 0, 0, cpu=2.5),
        own,
    ]
    store = open_store(str(tmp_path / "p.db"))
    v = Engine(store, gpu_executor).run(Workflow.build("threads", tasks), {}).values
    assert (v["two"]["omp"], v["two"]["mkl"], v["two"]["openblas"]) == ("2", "2", "2")
    assert v["half"]["omp"] == "1"  # rounded up, at least one
    assert v["sh"]["stdout"].strip().split("|")[2] == "3"
    assert v["own"]["stdout"].split() == ["7", "3"]  # the task's own env wins
    store.close()


def test_a_cuda_out_of_memory_is_its_own_failure_kind(tmp_path: Path, gpu_executor: LocalExecutor) -> None:
    wf = Workflow.build("oom", [TaskSpec("big", call="gpu_tasks:cuda_oom", resources=Resources.of(gpu=1))])
    store = open_store(str(tmp_path / "p.db"))
    result = Engine(store, gpu_executor).run(wf, {})
    assert result.status == "failed"
    assert fold(store.events(result.run_id)).tasks["big"].error["kind"] == GPU_OOM
    store.close()
