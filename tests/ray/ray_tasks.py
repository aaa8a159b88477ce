"""Tasks the Ray tests run on the workers; loaded there by file path through the registry snapshot.

Each task reports the Ray node id it ran on, so a test can compare where a task really ran with
where the engine placed it.
"""

from __future__ import annotations

import os
import time
from pathlib import Path


def _node_id() -> str:
    import ray

    return ray.get_runtime_context().get_node_id()


def where(tag: str) -> dict[str, str]:
    return {"tag": tag, "node_id": _node_id()}


def blob(n: int) -> bytes:
    return bytes(range(256)) * (n // 256)


def measure(data: bytes) -> dict[str, object]:
    return {"len": len(data), "sum": sum(data[:1024]), "node_id": _node_id()}


def boom(x: int) -> int:
    print(f"about to fail with x={x}")
    raise ValueError(f"bad x={x}")


def nap(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def hold(tag: str, signals: str, timeout: float = 60.0) -> dict[str, str]:
    """Write ``<signals>/<tag>.<pid>.started`` (holding this node id), then wait for ``<signals>/go``."""
    node_id = _node_id()
    d = Path(signals)
    tmp = d / f".{tag}.{os.getpid()}.tmp"
    tmp.write_text(node_id)
    tmp.rename(d / f"{tag}.{os.getpid()}.started")
    deadline = time.monotonic() + timeout
    while not (d / "go").exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{tag}: no go signal within {timeout}s")
        time.sleep(0.05)
    return {"tag": tag, "node_id": node_id}


def stint(tag: str, ledger: str, seconds: float) -> str:
    """Sleep ``seconds``, appending ``start`` and ``end`` lines (tag, Ray node id, pid, wall
    time) to ``ledger``: where and when this really ran, as the worker saw it."""
    node_id = _node_id()

    def note(what: str) -> None:
        with open(ledger, "a") as f:  # one short O_APPEND write per line: lines never mix
            f.write(f"{what} {tag} {node_id} {os.getpid()} {time.time():.6f}\n")

    note("start")
    time.sleep(seconds)
    note("end")
    return tag


def count(tag: str, ledger: str) -> str:
    """Append one line to ``ledger`` per run, so a test can count how often this ran."""
    with open(ledger, "a") as f:
        f.write(tag + "\n")
    return tag.upper()


def gate(value: str, marker: str) -> str:
    """Succeed with ``value + '!'`` only once ``marker`` exists."""
    if not os.path.exists(marker):
        raise RuntimeError(f"marker {marker} missing")
    return value + "!"


def devices(seconds: float = 0.0) -> dict[str, object]:
    """The GPUs this task holds as Podium, Ray and CUDA see them, and its gang rank."""
    import podium
    import ray

    time.sleep(seconds)
    ctx = podium.context()
    return {
        "gpus": list(ctx.gpus),
        "ray": [int(g) for g in ray.get_gpu_ids()],
        "cuda": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "podium_gpus": os.environ.get("PODIUM_GPUS"),
        "rank": ctx.rank,
        "world": ctx.world_size,
        "env": [
            os.environ.get(k) for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
        ],
        "omp": os.environ.get("OMP_NUM_THREADS"),
        "node_id": _node_id(),
        "pid": os.getpid(),
    }


def ddp_train(signals: str, steps: int) -> dict[str, object]:
    """A gang worker training a small model with DistributedDataParallel (gloo, env://).

    Writes ``<signals>/<attempt>.<rank>`` (its pid and Ray node id) once it has taken its first
    step, so a test can kill it mid-training. Trains ``steps`` steps, or for minutes while
    ``<signals>/hold`` exists when the attempt starts (rank 0 decides for the gang). Returns
    rank, world size, attempt, node id and its final loss."""
    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    import podium

    ctx = podium.context()
    dist.init_process_group("gloo", init_method="env://")
    try:
        torch.manual_seed(0)
        model = DistributedDataParallel(torch.nn.Linear(16, 1))
        opt = torch.optim.SGD(model.parameters(), lr=0.05)
        x = torch.randn(64, 16, generator=torch.Generator().manual_seed(ctx.rank))
        y = x.sum(dim=1, keepdim=True)
        total = torch.tensor([20_000 if (Path(signals) / "hold").exists() else steps])
        dist.broadcast(total, 0)  # every worker takes as many steps as rank 0
        loss = torch.tensor(0.0)
        for step in range(int(total)):
            opt.zero_grad()
            loss = torch.nn.functional.mse_loss(model(x), y)
            loss.backward()  # gradients averaged over the gang
            opt.step()
            if step == 0:
                tmp = Path(signals) / f".{ctx.attempt}.{ctx.rank}.tmp"
                tmp.write_text(f"{os.getpid()} {_node_id()}")
                tmp.rename(Path(signals) / f"{ctx.attempt}.{ctx.rank}")
            time.sleep(0.02)
    finally:
        dist.destroy_process_group()
    return {
        "rank": ctx.rank,
        "world": ctx.world_size,
        "attempt": ctx.attempt,
        "node_id": _node_id(),
        "loss": float(loss),
    }


def big_array(mib: int, ledger: str) -> object:
    """A float64 ``arange`` of ``mib`` MiB (one line appended to ``ledger`` per run)."""
    import numpy as np

    with open(ledger, "a") as f:
        f.write("big\n")
    return np.arange(mib * (1 << 20) // 8, dtype=np.float64)


def _root(arr: object) -> str:
    """The type of the object at the bottom of an array's ``base`` chain: ``builtins.bytes`` for
    an array unpickled from a call's bytes, a buffer of Ray's for a view of its object store."""
    while getattr(arr, "base", None) is not None:
        arr = arr.base  # type: ignore[attr-defined]
    return f"{type(arr).__module__}.{type(arr).__qualname__}"


def array_stats(arr: object, marker: str = "") -> dict[str, object]:
    """Size, sum and last item of a NumPy array, what memory it lies in (``_root``) and where
    it ran; fails unless ``marker`` exists (if given)."""
    import numpy as np

    if marker and not os.path.exists(marker):
        raise RuntimeError(f"marker {marker} missing")
    assert isinstance(arr, np.ndarray)
    return {
        "n": int(arr.size),
        "sum": float(arr.sum()),
        "last": float(arr[-1]),
        "root": _root(arr),
        "node_id": _node_id(),
    }
