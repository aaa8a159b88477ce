"""Plans with GPUs as devices and gangs as N workers at once, checked independently.

For random DAGs of whole and fractional GPU requests and gangs on nodes declared with 4 GPUs,
every plan must: give each worker of a task its own node slot (a gang's ``ranks``) and as many
devices as it asks (one for a share); never put more than one GPU's worth of shares on a device
at any instant, nor share a device a whole request holds; respect each node's cpu with every
worker counted; and price every worker (R counts a gang once per worker).
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from podium.errors import InfeasibleError
from podium.model.cluster import Cluster, Node
from podium.model.devices import parse_gpus
from podium.model.problem import PlanRequest, PlanTask
from podium.model.resources import Resources
from podium.model.workflow import Objective
from podium.planner.plan import Plan, plan

GPU_PRICE = 3.0


def gpu_node(name: str, cpu: float, speed: float = 1.0) -> Node:
    return Node(name, Resources.of(cpu=cpu), {"cpu": 1.0, "gpu": GPU_PRICE}, speed, gpus=parse_gpus(4))


@st.composite
def gpu_instances(draw: st.DrawFn) -> tuple[PlanRequest, Cluster]:
    nodes = [
        gpu_node(f"n{j}", draw(st.sampled_from([4.0, 8.0])), draw(st.sampled_from([1.0, 2.0])))
        for j in range(draw(st.integers(1, 2)))
    ]
    tasks = {}
    for i in range(draw(st.integers(1, 12))):
        deps = (
            tuple(sorted(draw(st.sets(st.sampled_from([f"t{k}" for k in range(i)]), max_size=2))))
            if i
            else ()
        )
        gpu = draw(st.sampled_from([0.0, 0.25, 0.3, 0.5, 0.75, 1.0, 2.0, 4.0]))
        workers = draw(st.sampled_from([1, 1, 1, 2, 3]))
        if workers > 1 and gpu > 2:
            gpu = 1.0
        res = Resources.of(cpu=draw(st.sampled_from([0.5, 1.0, 2.0])), gpu=gpu)
        tasks[f"t{i}"] = PlanTask(float(draw(st.sampled_from([1, 2, 3, 5]))), res, deps, workers=workers)
    return PlanRequest(tasks), Cluster(tuple(nodes))


def planned(req: PlanRequest, cl: Cluster, obj: Objective, time_limit: float = 0.0) -> Plan | None:
    """The plan, or None when some gang truly never fits (checked here by counting)."""
    try:
        return plan(req, cl, obj, time_limit=time_limit)
    except InfeasibleError:
        assert any(sum(n.holds(t.resources) for n in cl.nodes) < t.workers for t in req.tasks.values())
        return None


def check_devices(p: Plan | None, req: PlanRequest, cl: Cluster) -> None:
    if p is None:
        return
    nodes = {n.name: n for n in cl.nodes}
    usage = []  # (node, start, end, cpu, devices, gpu share per device)
    cost = 0.0
    for name, t in req.tasks.items():
        s = p.slots[name]
        for d in t.deps:
            assert p.slots[d].end <= s.start + 1e-9
        ranks = s.ranks or (s.node,)
        assert len(ranks) == t.workers and ranks[0] == s.node
        gpus = s.gpus or ((),) * t.workers
        assert len(gpus) == t.workers
        slowest = min(nodes[r].speed for r in ranks)
        assert s.end - s.start == pytest.approx(t.duration / slowest, abs=1e-9)
        for where, devices in zip(ranks, gpus, strict=True):
            g = t.resources.gpu
            assert len(devices) == (0 if not g else max(1, int(g))), (name, devices)
            assert len(set(devices)) == len(devices)
            usage.append((where, s.start, s.end, t.resources.cpu, devices, min(g, 1.0)))
            cost += (t.resources.cpu + t.resources.gpu * GPU_PRICE) / 3600 * (s.end - s.start)
    for where0, s0, e0, *_ in usage:
        if e0 <= s0:
            continue
        here = [u for u in usage if u[0] == where0 and u[1] <= s0 < u[2]]
        assert sum(u[3] for u in here) <= nodes[where0].capacity.cpu + 1e-9
        for device in range(4):
            shares = [u[5] for u in here if device in u[4]]
            assert sum(shares) <= 1 + 1e-9, f"device {device} of {where0} over-committed at {s0}"
            if 1.0 in shares:
                assert len(shares) == 1, f"whole device {device} of {where0} shared at {s0}"
    assert p.cost == pytest.approx(cost, rel=1e-9, abs=1e-12)
    assert p.makespan == pytest.approx(max(s.end for s in p.slots.values()), abs=1e-9)


@settings(max_examples=100, deadline=None)
@given(gpu_instances(), st.sampled_from([Objective(), Objective(alpha=1.0, beta=5.0)]))
def test_plans_pack_devices_and_gangs_without_over_commit(
    inst: tuple[PlanRequest, Cluster], obj: Objective
) -> None:
    req, cl = inst
    check_devices(planned(req, cl, obj), req, cl)


@settings(max_examples=25, deadline=None)
@given(gpu_instances())
def test_improved_plans_keep_the_device_rules(inst: tuple[PlanRequest, Cluster]) -> None:
    req, cl = inst
    check_devices(planned(req, cl, Objective(), 0.05), req, cl)


def test_two_whole_gpus_wait_for_two_idle_devices() -> None:
    """Four half-GPU tasks fill two devices; a 3-GPU task then needs a device they do not hold:
    it waits for the first pair to end, never combining the halves' spare room."""
    tasks = {f"h{i}": PlanTask(2.0, Resources.of(cpu=0.1, gpu=0.5)) for i in range(5)}
    tasks["big"] = PlanTask(1.0, Resources.of(cpu=0.1, gpu=3))
    req, cl = PlanRequest(tasks), Cluster((gpu_node("n0", 8),))
    p = plan(req, cl, Objective())
    check_devices(p, req, cl)
    big = p.slots["big"]
    overlapping = [n for n, s in p.slots.items() if n != "big" and s.start < big.end and big.start < s.end]
    assert len({d for n in overlapping for d in p.slots[n].gpus[0]}) <= 1


def test_a_gang_too_large_for_one_node_spreads_over_two() -> None:
    req = PlanRequest({"ddp": PlanTask(4.0, Resources.of(cpu=2, gpu=1), workers=6)})
    cl = Cluster((gpu_node("a", 8), gpu_node("b", 8)))
    p = plan(req, cl, Objective())
    check_devices(p, req, cl)
    assert (
        sorted(p.slots["ddp"].ranks) == ["a"] * 4 + ["b"] * 2
        or sorted(p.slots["ddp"].ranks) == ["a"] * 2 + ["b"] * 4
    )
