"""GPU inventories in cluster files, and gpu, gpu_memory and workers in specs."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

import podium
from podium.errors import SpecError
from podium.load.cluster import load_cluster
from podium.load.config import Config
from podium.load.spec import load_spec
from podium.model.devices import Gpu
from podium.policy import Policy

GIB = 1024**3
MOD = __name__


@podium.task
def step(x: object = None) -> object:
    return x


def cluster(tmp_path: Path, text: str) -> podium.Cluster:
    path = tmp_path / "cluster.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return load_cluster(str(path))


def spec(text: str) -> podium.Workflow:
    granted = Config(policy=Policy(programs=("true",)))
    return load_spec(textwrap.dedent(text).encode(), "spec.yaml", "yaml", allow_modules=[MOD], config=granted)


def spec_problems(text: str) -> str:
    with pytest.raises(SpecError) as e:
        spec(text)
    return str(e.value)


def test_cluster_nodes_declare_devices_by_count_indices_or_details(tmp_path: Path) -> None:
    c = cluster(
        tmp_path,
        """
        nodes:
          - {name: a, capacity: {cpu: 8}, gpus: 4}
          - {name: b, capacity: {cpu: 8}, gpus: [2, 3]}
          - name: c
            capacity: {cpu: 8, gpu: 1}
            gpus: [{index: 0, uuid: GPU-1234, memory: 80GiB}]
          - {name: d, capacity: {cpu: 8, gpu: 2}}
        """,
    )
    a, b, c_, d = c.nodes
    assert a.capacity.gpu == 4 and [g.index for g in a.gpus] == [0, 1, 2, 3]
    assert b.capacity.gpu == 2 and [g.index for g in b.gpus] == [2, 3]
    assert c_.gpus == (Gpu(0, "GPU-1234", 80 * GIB),)
    assert d.gpus == (Gpu(0), Gpu(1))  # a bare gpu capacity: devices numbered from 0


def test_bad_inventories_are_reported_with_their_place(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as e:
        cluster(
            tmp_path,
            """
            nodes:
              - {name: a, capacity: {cpu: 8}, gpus: [0, 0]}
              - {name: b, capacity: {cpu: 8, gpu: 2}, gpus: 4}
              - {name: c, capacity: {cpu: 8}, gpus: "all"}
            """,
        )
    text = str(e.value)
    assert "nodes[0].gpus" in text and "distinct" in text
    assert "nodes[1].gpus" in text and "capacity.gpu is 2 but gpus lists 4" in text
    assert "nodes[2].gpus" in text


def test_spec_reads_gpu_shares_gpu_memory_and_workers() -> None:
    wf = spec(
        f"""
        name: t
        tasks:
          half: {{call: "{MOD}:step", resources: {{gpu: 0.5, gpu_memory: 8GiB}}}}
          train: {{call: "{MOD}:step", resources: {{cpu: 2, gpu: 1}}, workers: 4}}
          tool: {{kind: shell, argv: ["true"], workers: 2}}
        """
    )
    assert wf.tasks["half"].resources.gpu == 0.5 and wf.tasks["half"].resources.gpu_memory == 8 * GIB
    assert wf.tasks["train"].workers == 4 and wf.tasks["tool"].workers == 2
    assert wf.tasks["half"].workers == 1


@pytest.mark.parametrize(
    ("body", "where", "what"),
    [
        ("{call: 'M:step', resources: {gpu: 1.5}}", "tasks.x.resources.gpu", "whole number"),
        ("{call: 'M:step', resources: {gpu_memory: 1GiB}}", "tasks.x.resources.gpu_memory", "needs a gpu"),
        ("{call: 'M:step', workers: 0}", "tasks.x.workers", "from 1 to"),
        ("{call: 'M:step', workers: true}", "tasks.x.workers", "from 1 to"),
        ("{kind: http, url: 'http://127.0.0.1/', workers: 2}", "tasks.x", "workers"),
    ],
)
def test_bad_gpu_and_worker_settings_are_one_line_each(body: str, where: str, what: str) -> None:
    text = spec_problems(f"name: t\ntasks:\n  x: {body.replace('M:', MOD + ':')}\n")
    assert where in text and what in text


def test_python_decorator_takes_workers_and_checks_it() -> None:
    @podium.task(workers=2, gpu=1)
    def ddp() -> int:
        return 0

    @podium.flow
    def good_flow() -> None:
        ddp()

    assert good_flow.build().tasks["ddp"].workers == 2
    with pytest.raises(SpecError, match=r"bad\.workers: expected a whole number from 1 to"):

        @podium.task(workers=-1)
        def bad() -> int:
            return 0
