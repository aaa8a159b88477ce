"""A node SIGKILLed mid-run under Ray's DEFAULT health checks (Ray itself declares it dead only
15 s or more later): Podium notices it on its own, restarts the lost tasks on live nodes within
seconds, never runs more tasks on a node than its cpus, records where each task really ran,
never re-runs a committed task, and gives work to a replacement node when it joins.

Every task appends ``start`` and ``end`` lines (its Ray node id, wall time) to a ledger, so what
really happened is compared with what the engine recorded. The session's cluster is restarted
for this module with the topology below and Ray's default health settings, and restored after.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ray_helpers import in_thread, task, wait_for

from podium.errors import WORKER_LOST
from podium.executors.ray import RayExecutor
from podium.model import Const, TaskSpec, Workflow
from podium.model import events as ev
from podium.runtime.engine import Engine
from podium.store.sqlite import SqliteStore

pytestmark = pytest.mark.ray

#: A head with 1 cpu and two workers with 2 cpus each, as a small real cluster would be.
DEATH_TOPOLOGY: dict[str, tuple[dict[str, float], int]] = {"head": ({}, 1), "w1": ({}, 2), "w2": ({}, 2)}
TASKS = 48
SECONDS = 1.5
#: Every task lost with the node restarts on a live node within this many seconds of the kill.
RESTART_WITHIN = 5.0


@pytest.fixture(scope="module")
def dead_cluster(ray_cluster: Any) -> Iterator[Any]:
    ray_cluster.restart(DEATH_TOPOLOGY, tuned=False)
    try:
        yield ray_cluster
    finally:
        ray_cluster.restart()  # the session's usual cluster again


def _read(ledger: Path) -> list[tuple[str, str, str, float]]:
    """(what, tag, node id, wall time) of every complete ledger line."""
    out = []
    for line in ledger.read_text().splitlines() if ledger.exists() else []:
        parts = line.split()
        if len(parts) == 5:
            out.append((parts[0], parts[1], parts[2], float(parts[4])))
    return out


def test_sigkilled_node_under_default_health_checks(dead_cluster: Any, registry: Any, tmp_path: Path) -> None:
    cluster = dead_cluster
    ledger = tmp_path / "ledger"
    args = {"ledger": Const(str(ledger)), "seconds": Const(SECONDS)}
    tags = [f"t{i:02d}" for i in range(TASKS)]
    fn = task("stint")
    specs = [TaskSpec(t, call=fn, args={"tag": Const(t), **args}, expected_duration=SECONDS) for t in tags]
    wf = Workflow.build("node-death", specs)
    cpus = {cluster.nodes[n].node_id: c for n, (_r, c) in DEATH_TOPOLOGY.items()}
    executor = RayExecutor(registry=registry)
    store = SqliteStore(str(tmp_path / "podium.db"))
    t0 = time.time()
    runner, outcome = in_thread(lambda: Engine(store, executor).run(wf))
    try:
        doomed = cluster.nodes["w2"].node_id

        def running_on_doomed() -> bool:
            lines = _read(ledger)
            ended = {tag for what, tag, _n, _t in lines if what == "end"}
            started = [tag for what, tag, n, _t in lines if what == "start"]
            busy = [tag for what, tag, n, _t in lines if what == "start" and n == doomed and tag not in ended]
            return len(started) >= 0.4 * TASKS and len(busy) == 2

        wait_for("40% of the tasks started, two of them on w2", running_on_doomed)
        killed_at = time.time()
        cluster.remove("w2")  # SIGKILL of its raylet; its workers die with it
        replacement = cluster.add("w2").node_id  # joins under the same name, a new node id
        cpus[replacement] = DEATH_TOPOLOGY["w2"][1]
        runner.join(timeout=180)
        assert not runner.is_alive(), "the run did not finish"
        makespan = time.time() - t0
    finally:
        runner.join(timeout=30)
        executor.shutdown()
    assert "error" not in outcome, outcome.get("error")
    result = outcome["result"]
    events = store.events(result.run_id)
    results = store.results(result.run_id)
    store.close()
    assert result.ok, result.status
    assert set(results) == set(wf.tasks)

    lines = _read(ledger)
    starts: dict[str, list[tuple[str, float]]] = defaultdict(list)
    ends: dict[str, list[tuple[str, float]]] = defaultdict(list)
    for what, tag, node, at in lines:
        (starts if what == "start" else ends)[tag].append((node, at))

    # a task's last run is the one committed; a run before it can only be one the dying node took
    # with it (it may have reached its end there around the kill: its result never counted)
    committed: dict[str, str] = {}
    for tag in wf.tasks:
        runs = sorted(ends[tag], key=lambda r: r[1])
        assert runs, f"{tag} never ran to its end"
        committed[tag] = runs[-1][0]
        for node, at in runs[:-1]:
            assert node == doomed and at >= killed_at - 2.0, f"{tag} ran to its end twice"
    # the tasks lost with w2 restarted on a live node within seconds
    lost = [t for t, s in starts.items() if doomed in dict(s) and committed[t] != doomed]
    assert lost, "no task was running on w2 when it was killed"
    restarts = {}
    for tag in lost:
        later = [at for node, at in starts[tag] if node != doomed and at > killed_at]
        assert later, f"{tag} never restarted"
        restarts[tag] = min(later) - killed_at
    assert max(restarts.values()) <= RESTART_WITHIN, restarts
    # at no instant does a node run more tasks than its cpus (a lost task ran until the kill)
    intervals: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for tag, s in starts.items():
        for node, at in s:
            done = [t for n, t in ends[tag] if n == node and t >= at]
            intervals[node].append((at, min(done) if done else killed_at))
    for node, spans in intervals.items():
        moments = sorted([(a, 1) for a, _ in spans] + [(b, -1) for _, b in spans], key=lambda m: (m[0], m[1]))
        peak = now = 0
        for _, step in moments:
            now += step
            peak = max(peak, now)
        assert peak <= cpus[node], f"{executor.node_name(node)} ran {peak} tasks at once on {cpus[node]} cpus"
    # the log names the node each task really ran on, and when it started there
    started_on = {(e.task_id, e.attempt): e.data["node"] for e in events if e.type == ev.TASK_STARTED}
    for e in events:
        if e.type == ev.TASK_SUCCEEDED:
            recorded = e.data.get("node", started_on[(e.task_id, e.attempt)])
            node = committed[e.task_id]
            assert recorded == executor.node_name(node), f"{e.task_id}: log says {recorded}, it ran on {node}"
            ran_from = max(at for n, at in starts[e.task_id] if n == node)
            # recorded in the worker just before the function ran (never after it; on a busy machine
            # unpickling the call can take a tenth of a second), not when the task was submitted
            assert ran_from - 0.5 <= e.data["started"] <= ran_from + 0.01, (
                e.task_id,
                e.data["started"],
                ran_from,
            )
    retried = Counter(e.data["error"]["kind"] for e in events if e.type == ev.TASK_RETRYING)
    assert set(retried) <= {WORKER_LOST}
    # the replacement got work once it joined
    assert any(node == replacement for e in ends.values() for node, _ in e), "the replacement w2 ran nothing"
    print(
        f"\nnode death (default health checks): {len(lost)} tasks lost, restarted "
        f"{min(restarts.values()):.2f}-{max(restarts.values()):.2f}s after the kill; makespan {makespan:.1f}s"
    )
