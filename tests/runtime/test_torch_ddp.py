"""The PyTorch DistributedDataParallel example on local processes (gloo, CPU, 2 workers).

Runs ``examples/torch_ddp.py`` for real: the gang's two workers meet through the MASTER_ADDR
and MASTER_PORT Podium gives them, train together, and reach the single-worker accuracy within
a point; the weights reach the evaluation tasks as tensors through the result path.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from podium.executors.local import LocalExecutor
from podium.load import load_workflow
from podium.model import Node, Resources
from podium.runtime.engine import Engine
from podium.store import open_store

pytestmark = pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="needs the torch extra")
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "torch_ddp.py"


@pytest.mark.timeout(300)
def test_ddp_on_two_worker_processes_matches_one_worker(tmp_path: Path) -> None:
    wf = load_workflow(EXAMPLE).workflow
    ex = LocalExecutor([Node("local", Resources.of(cpu=2, memory="4GiB"))])
    store = open_store(str(tmp_path / "p.db"))
    try:
        result = Engine(store, ex).run(wf, {"epochs": "8"})
    finally:
        ex.shutdown()
    assert result.status == "succeeded"
    v = result.values
    assert v["train_ddp"]["workers"] == 2 and v["train_ddp"]["threads"] == 1
    assert v["evaluate"]["workers"] == 2 and v["evaluate_2"]["workers"] == 1
    assert v["compare"]["ddp"] > 0.9 and v["compare"]["within_a_point"], v["compare"]
    store.close()
