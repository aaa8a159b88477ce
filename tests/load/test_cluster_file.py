"""The cluster file format as docs/cluster.md documents it: its complete example loads to the
nodes it describes, every key the loader accepts is in the doc's tables, the errors the doc
shows are the ones given, and an unknown key or a misspelt resource gets a suggestion."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from podium.errors import SpecError
from podium.load import cluster as cluster_file
from podium.load.cluster import load_cluster
from podium.model.resources import STANDARD

DOC = Path(__file__).resolve().parents[2] / "docs" / "cluster.md"
GiB = 1024**3


def blocks(kind: str) -> list[str]:
    return re.findall(rf"```{kind}\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)


def complete_example() -> str:
    [text] = [b for b in blocks("yaml") if "complete" in b or b.startswith("# cluster.yaml")]
    return text


def test_the_complete_example_loads_to_the_nodes_it_describes(tmp_path: Path) -> None:
    (tmp_path / "cluster.yaml").write_text(complete_example())
    cl = load_cluster(tmp_path / "cluster.yaml")
    assert [n.name for n in cl.nodes] == ["cpu-0", "cpu-1", "fast", "gpu"]
    cpu0, fast, gpu = cl.nodes[0], cl.nodes[2], cl.nodes[3]
    assert cpu0.capacity.cpu == 4 and cpu0.capacity.memory == 16 * GiB
    assert dict(cpu0.labels) == {"pool": "cpu", "zone": "a"} and cpu0.speed == 1.0
    assert dict(cpu0.prices) == {"cpu": 0.04, "memory": 0.005}
    assert dict(fast.capacity.custom) == {"licence": 2.0} and fast.speed == 2.0
    assert fast.prices["licence"] == 1.5
    assert gpu.capacity.gpu == 2 and [g.index for g in gpu.gpus] == [0, 1]
    assert gpu.gpus[0].uuid == "GPU-0b1c" and gpu.gpus[1].memory == 80 * GiB


def test_every_key_is_documented_and_in_the_example() -> None:
    doc, example = DOC.read_text(encoding="utf-8"), complete_example()
    for key in (*cluster_file.TOP_KEYS, *cluster_file.NODE_KEYS, *cluster_file.GPU_KEYS, *STANDARD[:3]):
        assert f"| `{key}` |" in doc, f"{key} is not in a table of docs/cluster.md"
        assert re.search(rf"\b{key}:", example), f"{key} is not in the complete example"


def test_the_errors_the_doc_shows_are_the_errors_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = next(b for b in blocks("yaml") if "capcity" in b)
    [shown] = [b for b in blocks("text") if "capcity" in b]
    (tmp_path / "cluster.yaml").write_text(bad)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SpecError) as e:
        load_cluster("cluster.yaml")
    assert f"error: {e.value}\n" == shown


@pytest.mark.parametrize(
    ("text", "where", "says"),
    [
        (
            "nodez: []\nnodes: [{name: a, capacity: {cpu: 1}}]\n",
            "c.yaml:1:1: nodez",
            "(did you mean 'nodes'?)",
        ),
        (
            "nodes:\n  - {name: a, capacity: {cpu: 1}, lables: {}}\n",
            "c.yaml:2:35: nodes[0].lables",
            "'labels'",
        ),
        ("nodes:\n  - {name: a, capacity: {cpu: 1}, cpu: 2}\n", "nodes[0].cpu", "amounts go in capacity"),
        ("nodes:\n  - {name: a, capacity: {CPU: 1}}\n", "nodes[0].capacity.CPU", "(did you mean 'cpu'?)"),
        ("nodes:\n  - {name: a, capacity: {cpu: 1}, prices: {mem: 1}}\n", "prices.mem", "'memory'"),
        (
            "nodes:\n  - {name: a, capacity: {cpu: 1}, gpus: [{index: 0, memroy: 1GiB}]}\n",
            "gpus[0].memroy",
            "'memory'",
        ),
        (
            "nodes:\n  - {name: a, capacity: {cpu: 1}}\n  - {name: a, capacity: {cpu: 2}}\n",
            "c.yaml:3:12: nodes[1].name",
            "duplicate",
        ),
    ],
)
def test_problems_have_their_place_and_a_suggestion(tmp_path: Path, text: str, where: str, says: str) -> None:
    f = tmp_path / "c.yaml"
    f.write_text(text)
    with pytest.raises(SpecError) as e:
        load_cluster(f)
    line = next(ln for ln in str(e.value).splitlines() if where in ln)
    assert says in line, str(e.value)


def test_custom_resources_stay_custom(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("nodes:\n  - {name: a, capacity: {cpu: 1, tpu: 4, gpus_shared: 2}, prices: {tpu: 3}}\n")
    [node] = load_cluster(f).nodes
    assert dict(node.capacity.custom) == {"tpu": 4.0, "gpus_shared": 2.0} and node.prices["tpu"] == 3.0
