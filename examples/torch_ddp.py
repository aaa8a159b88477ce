"""Distributed data-parallel training with PyTorch, as a gang-scheduled Podium task.

load -> prepare -> train_ddp (a gang: 2 worker processes, DistributedDataParallel over gloo on
CPU) and, beside it, train_single (the same model and steps on one worker) -> evaluate both
(the trained weights travel between tasks as tensors through the normal result path) ->
compare.

The two trainings see the same global batches: each DDP worker takes its half of every batch
(``rank::world_size``), and DDP averages the gradients, so both follow the same optimisation
and should reach the same accuracy (the example's check: within a point).

Run it:  podium run examples/torch_ddp.py  (needs the torch extra: pip install 'podium[torch]')
The data set is scikit-learn's bundled handwritten digits (no download).
"""

from __future__ import annotations

from typing import Any

import podium


@podium.task(cpu=1, expected_duration="1s")
def prepare(seed: int) -> dict[str, Any]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    digits = load_digits()
    x_train, x_test, y_train, y_test = train_test_split(
        digits.data, digits.target, test_size=0.3, random_state=seed, stratify=digits.target
    )
    scaler = StandardScaler().fit(x_train)
    return {
        "x_train": scaler.transform(x_train).astype("float32"),
        "y_train": y_train,
        "x_test": scaler.transform(x_test).astype("float32"),
        "y_test": y_test,
    }


def _model(seed: int) -> Any:
    import torch

    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10))


def _fit(data: dict[str, Any], epochs: int, batch: int, seed: int, rank: int, world: int) -> dict[str, Any]:
    """Train on this worker's share (``rank::world``) of every global batch; rank 0's weights."""
    import torch

    model = _model(seed)
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        model = DistributedDataParallel(model)
    x = torch.from_numpy(data["x_train"])
    y = torch.from_numpy(data["y_train"]).long()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    order = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        perm = torch.randperm(len(x), generator=order)  # the same on every worker
        for start in range(0, len(x), batch):
            mine = perm[start : start + batch][rank::world]
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x[mine]), y[mine]).backward()
            opt.step()  # DDP has averaged the gradients over the workers by now
    net = model.module if world > 1 else model
    return {"state": {k: v.detach().clone() for k, v in net.state_dict().items()}, "workers": world}


@podium.task(workers=2, cpu=1, memory="1GiB", retries=1, expected_duration="10s")
def train_ddp(data: dict[str, Any], epochs: int, batch: int, seed: int) -> dict[str, Any]:
    import torch
    import torch.distributed as dist

    ctx = podium.context()
    dist.init_process_group("gloo", init_method="env://")  # RANK, WORLD_SIZE, MASTER_* from Podium
    try:
        out = _fit(data, epochs, batch, seed, ctx.rank, ctx.world_size)
    finally:
        dist.destroy_process_group()
    out["threads"] = torch.get_num_threads()  # from OMP_NUM_THREADS, set from cpu=1
    return out


@podium.task(cpu=1, memory="1GiB", isolation="process", expected_duration="10s")
def train_single(data: dict[str, Any], epochs: int, batch: int, seed: int) -> dict[str, Any]:
    return _fit(data, epochs, batch, seed, 0, 1)


@podium.task(cpu=1, expected_duration="1s")
def evaluate(trained: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    import torch

    model = _model(0)
    model.load_state_dict(trained["state"])
    with torch.no_grad():
        pred = model(torch.from_numpy(data["x_test"])).argmax(dim=1).numpy()
    return {"workers": trained["workers"], "accuracy": float((pred == data["y_test"]).mean())}


@podium.task(cpu=0.25, expected_duration="0.05s")
def compare(ddp: dict[str, Any], single: dict[str, Any]) -> dict[str, Any]:
    gap = abs(ddp["accuracy"] - single["accuracy"])
    return {"ddp": ddp["accuracy"], "single": single["accuracy"], "gap": gap, "within_a_point": gap <= 0.01}


@podium.flow(name="torch-ddp")
def ddp_flow(epochs: int = 15, batch: int = 64, seed: int = 0) -> None:
    data = prepare(seed=seed)
    ddp = evaluate(train_ddp(data, epochs=epochs, batch=batch, seed=seed), data)
    single = evaluate(train_single(data, epochs=epochs, batch=batch, seed=seed), data)
    compare(ddp, single)
