"""GPU devices of a node: parsing the inventory and the pool that grants them.

The pool is checked against an independent model of what it must guarantee: every device's
shares sum to at most one GPU, a whole grant takes devices nobody else holds, a share goes to a
device with room, and returning every grant leaves the node idle.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from podium.errors import InvalidValueError
from podium.model.cluster import Node
from podium.model.devices import UNIT, Gpu, GpuPool, parse_gpus, per_node, request_problem
from podium.model.resources import Resources

GIB = 1024**3


def test_inventory_from_a_count_a_list_or_mappings() -> None:
    assert parse_gpus(4) == (Gpu(0), Gpu(1), Gpu(2), Gpu(3))
    assert parse_gpus([2, 5]) == (Gpu(2), Gpu(5))
    got = parse_gpus([{"index": 1, "uuid": "GPU-x", "memory": "16GiB"}])
    assert got == (Gpu(1, "GPU-x", 16 * GIB),)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (-1, "count from 0 to 1024"),
        (10**9, "count from 0 to 1024"),  # a config cannot make the inventory huge
        (list(range(5000)), "at most 1024 per node"),
        (True, "count or a list"),
        ("4", "count or a list"),
        ([0, 0], "distinct"),
        ([0, -2], "gpus[1]"),
        ([{"index": 0, "colour": "red"}], "unknown key 'colour'"),
        ([{"index": 0, "uuid": 7}], "gpus[0].uuid"),
        ([{"uuid": "GPU-x"}], "gpus[0]: a device index"),
    ],
)
def test_bad_inventories_say_what_is_wrong(value: object, message: str) -> None:
    with pytest.raises(InvalidValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_gpus(value)


def test_requests_above_one_gpu_must_be_whole() -> None:
    assert request_problem(0.5) is None and request_problem(2) is None and request_problem(1) is None
    assert "whole number" in (request_problem(1.5) or "")


def test_a_node_capacity_counts_its_devices() -> None:
    node = Node("g", Resources.of(cpu=8), gpus=parse_gpus([0, 1, 2, 3]))
    assert node.capacity.gpu == 4
    assert node.holds(Resources.of(cpu=1, gpu=0.25)) == 8  # cpu limits before the 16 shares
    assert node.holds(Resources.of(cpu=0.5, gpu=0.25)) == 16
    assert node.holds(Resources.of(cpu=1, gpu=3)) == 1
    assert per_node(parse_gpus(4), 0.3) == 12  # 3 shares of 0.3 per device, never 13 by pooling
    sized = (Gpu(0, memory=16 * GIB), Gpu(1, memory=8 * GIB))
    assert per_node(sized, 0.25, 8 * GIB) == 3  # device 0 holds two by memory, device 1 one


def test_two_whole_gpus_never_come_from_two_half_used_devices() -> None:
    pool = GpuPool(parse_gpus(2))
    assert pool.take(0.5) == (0,) and pool.take(0.5) == (0,)  # best fit fills device 0 first
    assert pool.take(0.5) == (1,)
    assert pool.take(1) is None  # 0.5 of device 1 is free, but no whole device is
    pool.give((1,), 0.5)
    assert pool.take(1) == (1,)


def test_gpu_memory_is_accounted_per_device() -> None:
    pool = GpuPool((Gpu(0, memory=10 * GIB), Gpu(1, memory=10 * GIB)))
    assert pool.take(0.25, 6 * GIB) == (0,)
    assert pool.take(0.25, 6 * GIB) == (1,)  # device 0 has share room but not memory room
    assert pool.take(0.25, 6 * GIB) is None
    assert pool.take(0.25, 4 * GIB) in ((0,), (1,))


requests = st.sampled_from([0.1, 0.25, 0.3, 0.5, 0.75, 1, 1, 2, 3, 4])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(requests, st.booleans()), max_size=40))
def test_pool_never_over_commits_a_device(ops: list[tuple[float, bool]]) -> None:
    """Random takes (and gives of a random earlier grant) on a node declared with 4 GPUs."""
    pool = GpuPool(parse_gpus([0, 1, 2, 3]))
    held: list[tuple[tuple[int, ...], float]] = []
    for k, (gpu, give_back) in enumerate(ops):
        if give_back and held:
            granted, g = held.pop(k % len(held))
            pool.give(granted, g)
        free_whole = [d for d in range(4) if all(d not in gs for gs, _ in held)]
        held_on = {d: sum(round(g * UNIT) if g < 1 else UNIT for gs, g in held if d in gs) for d in range(4)}
        room = {d: UNIT - held_on[d] for d in range(4)}
        got = pool.take(gpu)
        if gpu >= 1:
            assert (got is None) == (len(free_whole) < gpu)
            if got is not None:
                assert len(got) == gpu and set(got) <= set(free_whole)  # whole: exclusive devices
        else:
            assert (got is None) == all(room[d] < round(gpu * UNIT) for d in range(4))
            if got is not None:
                assert len(got) == 1 and room[got[0]] >= round(gpu * UNIT)
        if got is not None:
            held.append((got, gpu))
        for d in range(4):  # independent count of what each device holds: at most one GPU
            shares = [g for gs, g in held if d in gs]
            assert all(g < 1 for g in shares) or len(shares) == 1
            assert sum(min(g, 1) for g in shares) <= 1 + 1e-9
    for granted, g in held:
        pool.give(granted, g)
    assert pool.idle()
