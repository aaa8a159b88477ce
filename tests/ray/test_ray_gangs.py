"""Gang-scheduled tasks on a real 2-node Ray cluster (Ray's default health checks).

Each node has 1 cpu and 2 declared GPUs (Ray counts them; no device is needed), so a gang of
two 1-cpu workers can only run one worker per node. Proven here, for real:

- ``examples/torch_ddp.py`` runs its 2-worker DistributedDataParallel gang (gloo, CPU) with one
  worker on each node, and reaches the single-worker accuracy within a point;
- a worker killed mid-training (SIGKILL to the pid it reported) stops the other, and the gang
  is retried as ONE attempt (a free lost-worker retry) on the same two nodes, and succeeds;
- a node lost mid-training (removed without grace) stops the gang, which reruns on the live
  nodes (one that joined meanwhile included);
- a gang past its timeout has both workers killed, and one the nodes can never hold together
  is rejected before the run;
- the GPUs a task or a gang's worker holds on Ray are Ray's assignment, in
  ``podium.context().gpus`` and ``CUDA_VISIBLE_DEVICES`` alike (and a worker's ``PODIUM_GPUS``);
- every placement group a gang used is removed after it;
- a large result of a gpu Ray task (put in the object store by its worker) and of a gang (in
  rank 0's reply) reaches its downstream task from the object store and is committed as an
  artifact.
"""

from __future__ import annotations

import importlib.util
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ray_helpers import in_thread, task, wait_for

from podium.errors import SpecError
from podium.executors.ray import RayExecutor
from podium.load import load_workflow
from podium.model import Const, Ref, Resources, TaskSpec, Workflow
from podium.model import events as ev
from podium.runtime.engine import Engine
from podium.store import open_store

pytestmark = pytest.mark.ray
needs_torch = pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="needs the torch extra")

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "torch_ddp.py"
#: Two nodes of 1 cpu each: a gang of two 1-cpu workers spreads one per node.
GANG_TOPOLOGY: dict[str, tuple[dict[str, float], int]] = {"head": ({}, 1), "node-w": ({}, 1)}
GPUS = {"head": 2, "node-w": 2}


@pytest.fixture(scope="module")
def gang_cluster(ray_cluster: Any) -> Iterator[Any]:
    ray_cluster.restart(GANG_TOPOLOGY, tuned=False, gpus=GPUS)
    try:
        yield ray_cluster
    finally:
        ray_cluster.restart()  # the session's usual cluster again


def _placement_groups_removed() -> bool:
    from ray.util.placement_group import placement_group_table

    return all(pg["state"] == "REMOVED" for pg in placement_group_table().values())


def _started(events: list[Any], task_id: str) -> list[Any]:
    return [e for e in events if e.type == ev.TASK_STARTED and e.task_id == task_id]


@needs_torch
@pytest.mark.timeout(300)
def test_ddp_example_runs_one_worker_per_node_and_matches_one_worker(
    gang_cluster: Any, tmp_path: Path
) -> None:
    wf = load_workflow(EXAMPLE).workflow
    ex = RayExecutor()
    store = open_store(str(tmp_path / "p.db"))
    try:
        result = Engine(store, ex).run(wf, {"epochs": "4"})
        events = store.events(result.run_id)
    finally:
        ex.shutdown()
        store.close()
    assert result.status == "succeeded", result.view.tasks
    v = result.values
    assert v["train_ddp"]["workers"] == 2 and v["train_ddp"]["threads"] == 1
    assert v["evaluate"]["workers"] == 2 and v["evaluate_2"]["workers"] == 1
    assert v["compare"]["ddp"] > 0.9 and v["compare"]["within_a_point"], v["compare"]
    print(
        f"\nDDP on 2 Ray nodes: accuracy {v['compare']['ddp']:.4f}, one worker {v['compare']['single']:.4f}"
    )
    (started,) = _started(events, "train_ddp")
    assert sorted(node for node, _gpus in started.data["ranks"]) == ["head", "node-w"]
    wait_for("the gang's placement group removed", _placement_groups_removed, timeout=30)


def _held_ddp_gang(tmp_path: Path) -> tuple[Path, TaskSpec]:
    """A 2-worker DDP gang that trains until ``signals/hold`` is removed (made here), and its
    signals folder."""
    signals = tmp_path / "signals"
    signals.mkdir()
    (signals / "hold").touch()
    gang = TaskSpec(
        "ddp",
        call=task("ddp_train"),
        args={"signals": Const(str(signals)), "steps": Const(20)},
        resources=Resources.of(cpu=1),
        workers=2,
    )
    return signals, gang


@needs_torch
@pytest.mark.timeout(300)
def test_a_worker_killed_mid_training_retries_the_gang_as_one_attempt(
    gang_cluster: Any, registry: Any, tmp_path: Path
) -> None:
    signals, gang = _held_ddp_gang(tmp_path)
    ex = RayExecutor(registry=registry)
    store = open_store(str(tmp_path / "p.db"))
    # the gang trains for minutes: it ends only because a worker dies
    try:
        runner, outcome = in_thread(lambda: Engine(store, ex).run(Workflow.build("kill-one", [gang]), {}))
        n = wait_for("both workers training", lambda: _training(signals), 120)
        first = {r: (signals / f"{n}.{r}").read_text().split() for r in (0, 1)}
        os.kill(int(first[1][0]), signal.SIGKILL)  # rank 1's process, mid-training
        (signals / "hold").unlink()  # the next attempt trains a few steps
        runner.join(240)
        assert not runner.is_alive() and "error" not in outcome, outcome
        result = outcome["result"]
        events = store.events(result.run_id)
    finally:
        ex.shutdown()
        store.close()
    assert result.status == "succeeded"
    assert result.values["ddp"]["attempt"] == n + 1 and result.values["ddp"]["world"] == 2
    attempts = _started(events, "ddp")
    assert [e.attempt for e in attempts] == list(range(1, n + 2))  # one attempt per gang, not per worker
    (retry,) = [e for e in events if e.type == ev.TASK_RETRYING and e.task_id == "ddp" and e.attempt == n]
    assert retry.data["error"]["kind"] == "worker_lost" and retry.data["free"] == "worker_lost"
    for pid, _node in first.values():  # rank 0 was stopped, not left waiting for its dead peer
        wait_for(f"worker {pid} gone", lambda pid=pid: not _alive(int(pid)), timeout=30)
    # one worker per node, where the engine granted them, in both attempts
    second = {r: (signals / f"{n + 1}.{r}").read_text().split() for r in (0, 1)}
    ids = {node["NodeID"]: node["Labels"]["podium-node"] for node in _ray_nodes()}
    for e, seen in zip(attempts[-2:], (first, second), strict=True):
        assert [ids[seen[r][1]] for r in (0, 1)] == [node for node, _ in e.data["ranks"]]
        assert {ids[seen[r][1]] for r in (0, 1)} == {"head", "node-w"}
    wait_for("the gangs' placement groups removed", _placement_groups_removed, timeout=30)


def test_a_gang_past_its_timeout_has_every_worker_killed(
    gang_cluster: Any, registry: Any, tmp_path: Path
) -> None:
    gang = TaskSpec(
        "slow",
        call=task("hold"),  # never signalled: each worker would wait 60 s
        args={"tag": Const("slow"), "signals": Const(str(tmp_path))},
        resources=Resources.of(cpu=1),
        workers=2,
        timeout=4.0,
    )
    ex = RayExecutor(registry=registry)
    store = open_store(str(tmp_path / "p.db"))
    try:
        result = Engine(store, ex).run(Workflow.build("slow", [gang]), {})
        events = store.events(result.run_id)
    finally:
        ex.shutdown()
        store.close()
    assert result.status == "failed"
    (failed,) = [e for e in events if e.type == ev.TASK_FAILED and e.task_id == "slow"]
    assert (
        failed.data["error"]["kind"] == "timeout"
        and "gang's workers were killed" in failed.data["error"]["message"]
    )
    pids = [int(p.name.split(".")[1]) for p in tmp_path.glob("slow.*.started")]
    assert len(pids) == 2  # both workers had started
    for pid in pids:
        wait_for(f"worker {pid} gone", lambda pid=pid: not _alive(pid), timeout=30)
    wait_for("the gang's placement group removed", _placement_groups_removed, timeout=30)


def test_a_gang_the_cluster_can_never_hold_is_rejected_before_the_run(
    gang_cluster: Any, registry: Any, tmp_path: Path
) -> None:
    big = TaskSpec("big", call=task("devices"), resources=Resources.of(cpu=1), workers=3)
    ex = RayExecutor(registry=registry)
    store = open_store(str(tmp_path / "p.db"))
    try:
        with pytest.raises(SpecError, match=r"big\.workers.*3 workers never fit at once: the nodes hold 2"):
            Engine(store, ex).run(Workflow.build("too-big", [big]), {})
        assert store.list_runs() == []
    finally:
        ex.shutdown()
        store.close()


def test_gpus_on_ray_are_rays_assignment_in_the_context_and_the_environment(
    gang_cluster: Any, registry: Any, tmp_path: Path
) -> None:
    tasks = [
        TaskSpec(
            f"one{i}",
            call=task("devices"),
            args={"seconds": Const(1.0)},
            resources=Resources.of(cpu=0.4, gpu=1),
        )
        for i in range(2)
    ]
    gang = TaskSpec(
        "gang",
        call=task("devices"),
        resources=Resources.of(cpu=0.5, gpu=2),
        workers=2,
        after=("one0", "one1"),
    )
    ex = RayExecutor(registry=registry)
    store = open_store(str(tmp_path / "p.db"))
    try:
        result = Engine(store, ex).run(Workflow.build("gpus", [*tasks, gang]), {})
    finally:
        ex.shutdown()
        store.close()
    assert result.status == "succeeded", result.view.tasks
    for name in ("one0", "one1", "gang"):
        seen = result.values[name]
        assert seen["gpus"] == seen["ray"] and len(seen["gpus"]) == (2 if name == "gang" else 1), seen
        assert seen["cuda"] == ",".join(str(g) for g in seen["gpus"]), seen
    one0, one1 = result.values["one0"], result.values["one1"]
    if one0["node_id"] == one1["node_id"]:  # side by side on one node: never the same device
        assert one0["gpus"] != one1["gpus"]
    g = result.values["gang"]  # rank 0's view: its rank's variables, a master on its node
    assert g["rank"] == 0 and g["world"] == 2 and g["env"][:3] == ["0", "2", "0"]
    assert g["env"][3] == "127.0.0.1" and int(g["env"][4]) > 0 and g["omp"] == "1"
    assert g["podium_gpus"] == g["cuda"]
    wait_for("the gang's placement group removed", _placement_groups_removed, timeout=30)


@needs_torch
@pytest.mark.timeout(300)
def test_a_lost_node_stops_the_gang_and_it_reruns_on_live_nodes(
    gang_cluster: Any, registry: Any, tmp_path: Path
) -> None:
    # last in this module: it changes the cluster, which the module's fixture then restarts
    signals, gang = _held_ddp_gang(tmp_path)
    ex = RayExecutor(registry=registry)
    store = open_store(str(tmp_path / "p.db"))
    try:
        runner, outcome = in_thread(lambda: Engine(store, ex).run(Workflow.build("lose-node", [gang]), {}))
        n = wait_for("both workers training", lambda: _training(signals), 120)
        first = {r: (signals / f"{n}.{r}").read_text().split() for r in (0, 1)}
        # a spare node joins (so the gang fits again), then node-w dies without grace
        gang_cluster.cluster.add_node(num_cpus=1, num_gpus=2, labels={"podium-node": "node-s"})
        wait_for("the spare node live", lambda: "node-s" in {n.name for n in ex.nodes()}, 60)
        gone = gang_cluster.remove("node-w")
        (signals / "hold").unlink()
        runner.join(240)
        assert not runner.is_alive() and "error" not in outcome, outcome
        result = outcome["result"]
        events = store.events(result.run_id)
    finally:
        ex.shutdown()
        store.close()
    assert result.status == "succeeded"
    assert gone in {node_id for _pid, node_id in first.values()}
    retries = [e for e in events if e.type == ev.TASK_RETRYING and e.task_id == "ddp"]
    assert retries and all(e.data["free"] == "worker_lost" for e in retries)
    (lost,) = [e for e in retries if e.attempt == n]
    assert "node 'node-w'" in lost.data["error"]["message"], lost.data
    assert len(_started(events, "ddp")) == len(retries) + 1  # every retry is one attempt of the gang
    last = result.values["ddp"]["attempt"]
    final = {r: (signals / f"{last}.{r}").read_text().split() for r in (0, 1)}
    assert all(node_id != gone for _pid, node_id in final.values())
    names = {n["NodeID"]: n["Labels"]["podium-node"] for n in _ray_nodes()}
    assert sorted(names.get(node_id, "?") for _pid, node_id in final.values()) == ["head", "node-s"]
    for pid, _node in first.values():  # the worker on the live node was stopped too
        wait_for(f"worker {pid} gone", lambda pid=pid: not _alive(int(pid)), timeout=30)
    wait_for("the gangs' placement groups removed", _placement_groups_removed, timeout=30)


def _training(signals: Path) -> int:
    """The latest attempt whose two workers both took a training step (0: none yet)."""
    both = [a for a in range(1, 10) if all((signals / f"{a}.{r}").exists() for r in (0, 1))]
    return max(both, default=0)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _ray_nodes() -> list[dict[str, Any]]:
    import ray

    return [n for n in ray.nodes() if n["Alive"]]


def test_large_results_of_ray_tasks_and_gangs_reach_their_readers_and_are_committed(
    gang_cluster: Any, registry: Any, tmp_path: Path
) -> None:
    """make (a gpu Ray task: its worker puts the 8 MiB array in the object store) -> stats (a gpu
    Ray task) -> gang (2 workers: rank 0's array comes back in its reply) -> gstats (a lane)."""
    from podium.runtime import codec
    from podium.store.artifacts import LocalArtifacts

    ledger = Const(str(tmp_path / "ledger"))
    gpu, cpu = Resources.of(cpu=0.4, gpu=1), Resources.of(cpu=0.4)
    specs = [
        TaskSpec("make", call=task("big_array"), args={"mib": Const(8), "ledger": ledger}, resources=gpu),
        TaskSpec("stats", call=task("array_stats"), args={"arr": Ref("make")}, resources=gpu),
        TaskSpec(
            "gang",
            call=task("big_array"),
            args={"mib": Const(8), "ledger": ledger},
            resources=Resources.of(cpu=0.5, gpu=2),
            workers=2,
            after=("stats",),
        ),
        TaskSpec("gstats", call=task("array_stats"), args={"arr": Ref("gang")}, resources=cpu),
    ]
    artifacts = LocalArtifacts(tmp_path / "artifacts")
    ex = RayExecutor(registry=registry)
    store = open_store(str(tmp_path / "p.db"))
    try:
        result = Engine(store, ex, artifacts=artifacts).run(Workflow.build("large", specs), {})
        records = store.results(result.run_id)
    finally:
        ex.shutdown()
        store.close()
    assert result.status == "succeeded", result.view.tasks
    n = 8 * (1 << 20) // 8
    for name in ("stats", "gstats"):
        got = result.values[name]
        assert got["n"] == n and got["sum"] == n * (n - 1) / 2 and got["last"] == n - 1, got
        # from Ray's object store (the worker's put, the gang's reply), not inside the call
        assert got["root"] not in ("builtins.bytes", "builtins.bytearray"), got
    for name in ("make", "gang"):
        ref = codec.reference(records[name])
        assert ref is not None and ref.size > n * 8 and artifacts.exists(ref.digest), name
