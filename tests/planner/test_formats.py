"""Real formats in (STG, WfCommons, cluster YAML) and the `podium plan` command."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from podium.cli import main
from podium.errors import SpecError
from podium.load.cluster import load_cluster
from podium.load.stg import SLEEP, load_stg, to_workflow
from podium.load.wfcommons import load_wfcommons
from podium.registry import REGISTRY

STG = """\
  4
  0  0  0
  1  3  1  0
  2  2  1  0
  3  4  1  1
  4  1  2  2  3
  5  0  1  4
# a comment
"""


def bench_data() -> Path:
    root = Path(__file__).resolve().parents[2]
    return Path(os.environ.get("PODIUM_BENCH_DATA", root.parent / "shared" / "bench-data"))


def test_stg_is_read_with_ids_as_in_the_file(tmp_path: Path) -> None:
    f = tmp_path / "g.stg"
    f.write_text(STG)
    req = load_stg(f)
    assert list(req.tasks) == ["0", "1", "2", "3", "4", "5"]
    assert req.tasks["4"].deps == ("2", "3") and req.tasks["3"].duration == 4.0
    assert req.tasks["5"].duration == 0.0 and req.tasks["1"].resources.cpu == 1.0


def test_bad_stg_lists_every_problem(tmp_path: Path) -> None:
    f = tmp_path / "bad.stg"
    f.write_text("3\n0 0 0\n1 x 1 0\n2 3 2 0\n3 1 1 9\n4 0 0\n")
    with pytest.raises(SpecError) as e:
        load_stg(f)
    text = str(e.value)
    assert "line 3" in text and "line 4" in text and "unknown predecessor 9" in text


def test_wfcommons_new_and_old_layouts(tmp_path: Path) -> None:
    new = {
        "workflow": {
            "specification": {"tasks": [{"id": "a", "parents": []}, {"id": "b", "parents": ["a"]}]},
            "execution": {
                "tasks": [
                    {"id": "a", "runtimeInSeconds": 2.5, "coreCount": 2, "memoryInBytes": 1000},
                    {"id": "b", "runtimeInSeconds": 1.0},
                ]
            },
        }
    }
    f = tmp_path / "new.json"
    f.write_text(json.dumps(new))
    req = load_wfcommons(f)
    assert req.tasks["a"].duration == 2.5 and req.tasks["a"].resources.cpu == 2.0
    assert req.tasks["a"].resources.memory == 1000 and req.tasks["b"].deps == ("a",)
    old = {
        "workflow": {
            "tasks": [
                {"name": "x", "runtime": 3, "parents": []},
                {"name": "y", "runtime": 1, "parents": ["x"]},
            ]
        }
    }
    g = tmp_path / "old.json"
    g.write_text(json.dumps(old))
    req = load_wfcommons(g)
    assert req.tasks["y"].deps == ("x",) and req.tasks["x"].duration == 3.0


def test_bad_wfcommons_lists_every_problem(tmp_path: Path) -> None:
    doc = {
        "workflow": {
            "specification": {"tasks": [{"id": "a", "parents": ["zz"]}, {"id": "b"}]},
            "execution": {"tasks": [{"id": "a", "runtimeInSeconds": -1}]},
        }
    }
    f = tmp_path / "bad.json"
    f.write_text(json.dumps(doc))
    with pytest.raises(SpecError) as e:
        load_wfcommons(f)
    text = str(e.value)
    assert "runtimeInSeconds must be a number >= 0" in text
    assert "'b' has no entry" in text and "unknown parent 'zz'" in text


def test_real_wfcommons_files_load() -> None:
    files = sorted((bench_data() / "wfcommons").glob("**/*-001.json"))
    if not files:
        pytest.skip("benchmark data not present")
    for f in files:
        req = load_wfcommons(f)
        assert req.tasks and all(t.duration >= 0 for t in req.tasks.values())


def test_cluster_yaml(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text(
        "nodes:\n"
        "  - name: cpu-a\n"
        "    capacity: {cpu: 8, memory: 32GiB, gpu: 0, tpu: 2}\n"
        "    prices: {cpu: 0.05, memory: 0.01, gpu: 2.5}\n"
        "    speed: 1.5\n"
        "    labels: {zone: a}\n"
        "    count: 2\n"
    )
    cl = load_cluster(f)
    assert [n.name for n in cl.nodes] == ["cpu-a-0", "cpu-a-1"]
    n = cl.nodes[0]
    assert n.capacity.memory == 32 * 1024**3 and dict(n.capacity.custom) == {"tpu": 2.0}
    assert n.speed == 1.5 and n.prices["gpu"] == 2.5 and n.labels["zone"] == "a"


def test_bad_cluster_yaml_lists_every_problem_with_its_location(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text(
        "nodes:\n"
        "  - name: ok\n    capacity: {cpu: 1}\n"
        "  - name: bad\n    capacity: {cpu: x, memory: 3QB}\n    prices: {cpu: -1}\n"
        "    speed: 0\n    colour: red\n"
        "  - capacity: {cpu: 1}\n    count: 0\n"
    )
    with pytest.raises(SpecError) as e:
        load_cluster(f)
    text = str(e.value)
    for where in (
        "nodes[1].colour",
        "nodes[1].capacity.cpu",
        "nodes[1].capacity.memory",
        "nodes[1].prices.cpu",
        "nodes[1].speed",
        "nodes[2].name",
        "nodes[2].count",
    ):
        assert where in text
    f.write_text("nodes: [\n")
    with pytest.raises(SpecError, match=r"c\.yaml:2:1: YAML syntax error"):
        load_cluster(f)


def test_to_workflow_builds_sleep_tasks(tmp_path: Path) -> None:
    f = tmp_path / "g.stg"
    f.write_text(STG)
    wf = to_workflow(load_stg(f), scale=0.01)
    assert wf.tasks["4"].deps == ("2", "3") and wf.tasks["3"].args["seconds"] == pytest.approx(0.04)
    assert REGISTRY.resolve(SLEEP)(0.0) == 0.0


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        main(args)
        code = 0
    except SystemExit as e:
        code = int(e.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_plan_json_and_html(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "g.stg"
    f.write_text(STG)
    page = tmp_path / "gantt.html"
    code, out, _ = run_cli(["plan", str(f), "--processors", "2", "--json", "--html", str(page)], capsys)
    assert code == 0
    doc = json.loads(out)
    assert set(doc) == {"makespan", "cost", "objective", "lower_bound", "tasks"}
    assert doc["makespan"] == 8.0  # 0 -> 1(3) -> 3(4) -> 4(1): the critical path
    assert [t["id"] for t in doc["tasks"]] == ["0", "1", "2", "3", "4", "5"]
    assert set(doc["tasks"][0]) == {"id", "node", "start", "end"}
    html = page.read_text()
    assert "<svg" in html and "http" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")


def test_cli_plan_prints_gantt_and_figures(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "g.stg"
    f.write_text(STG)
    code, out, _ = run_cli(["plan", str(f), "--processors", "2", "--alpha", "1", "--beta", "2"], capsys)
    assert code == 0
    assert "T = 8 s" in out and "lower bound = " in out and "gap = " in out and "█" in out


def test_cli_bad_arguments_exit_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "g.stg"
    f.write_text(STG)
    for args in (
        ["plan", str(f), "--processors", "0"],
        ["plan", str(f), "--deadline", "10", "--budget", "3"],
        ["plan", str(tmp_path / "missing.stg")],
        ["plan", str(f), "--deadline", "soon"],
    ):
        code, _, err = run_cli(args, capsys)
        assert code == 2, args
        assert err.startswith("error: ") and err.count("\n") == 1, err
    code, _, err = run_cli(["plan", str(f), "--processors", "2", "--deadline", "5s"], capsys)
    assert code == 4 and "below the critical-path bound 8s" in err


def test_cli_plans_a_podium_spec_and_says_where_durations_came_from(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "flow.yaml"
    spec.write_text(
        "name: demo\n"
        "tasks:\n"
        "  a:\n    call: podium.load.stg:sleep\n    expected_duration: 3\n"
        "  b:\n    call: podium.load.stg:sleep\n    after: [a]\n"
    )
    args = ["plan", str(spec), "--processors", "2", "--allow-module", "podium.load.stg"]
    code, out, err = run_cli(args, capsys)
    assert code == 0, err
    assert "T = 4 s" in out and "durations: 1 declared, 1 default (1 s)" in out
