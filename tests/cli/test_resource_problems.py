"""A task that fits no node is a problem of the spec like any other: ``podium run`` and
``podium validate`` report it together with the spec's other problems (one line each, with
its place in the file) before any run is written, for YAML specs and Python flows alike."""

from __future__ import annotations

from pathlib import Path

from inprocess_cli import cli

CLUSTER = "nodes:\n  - name: small\n    capacity: {cpu: 2, memory: 4GiB}\n"
SPEC = """\
name: fits
tasks:
  big:
    argv: [sh, -c, "true"]
    resources: {cpu: 4}
  fat:
    argv: [sh, -c, "true"]
    resources: {memory: 8GiB}
    retries: lots
  ok:
    argv: [sh, -c, "true"]
    timout: 5s
"""
FLOW = """\
import podium

@podium.task(cpu=4)
def big() -> int:
    return 1

@podium.task()
def small(x: int) -> int:
    return x

@podium.flow(name="fits_py")
def fits_py():
    small(big(), y=2)
"""


def folder(tmp_path: Path) -> Path:
    (tmp_path / "podium.toml").write_text('allow_programs = ["sh"]\n')
    (tmp_path / "cluster.yaml").write_text(CLUSTER)
    (tmp_path / "spec.yaml").write_text(SPEC)
    (tmp_path / "fits_flow.py").write_text(FLOW)
    return tmp_path


def test_run_reports_resource_and_spec_problems_together_before_writing(tmp_path: Path) -> None:
    work = folder(tmp_path)
    code, out, err = cli(
        ["run", "spec.yaml", "--cluster", "cluster.yaml", "--no-progress", "--store", "s.db"], work
    )
    assert code == 2 and out == ""
    lines = err.splitlines()
    assert lines[0] == "error: 4 problems:", err
    assert (
        lines[1]
        == "  - spec.yaml:5:5: tasks.big.resources: no node can ever satisfy it (cpu 4 > 2 on node small)"
    )
    assert lines[2].startswith(
        "  - spec.yaml:8:5: tasks.fat.resources: no node can ever satisfy it (memory 8GiB"
    )
    assert lines[3].startswith("  - spec.yaml:9:14: tasks.fat.retries:")
    assert lines[4].startswith("  - spec.yaml:12:5: tasks.ok.timout: unknown key 'timout'")
    assert "did you mean 'timeout'" in lines[4]
    assert not (work / "s.db").exists()  # no store, no run


def test_a_python_flow_gets_the_same_report(tmp_path: Path) -> None:
    work = folder(tmp_path)
    code, out, err = cli(["run", "fits_flow.py", "--cluster", "cluster.yaml", "--store", "s.db"], work)
    assert code == 2 and out == ""
    assert "tasks.big.resources: no node can ever satisfy it (cpu 4 > 2 on node small)" in err
    assert "unexpected keyword argument 'y'" in err  # the flow's own mistake, in the same report
    assert not (work / "s.db").exists()


def test_a_broken_cluster_file_and_a_broken_spec_are_reported_together(tmp_path: Path) -> None:
    work = folder(tmp_path)
    (work / "cluster.yaml").write_text(CLUSTER + "    cpus: 2\n")
    code, _, err = cli(["run", "spec.yaml", "--cluster", "cluster.yaml", "--store", "s.db"], work)
    assert code == 2
    assert "  - cluster.yaml:4:5: nodes[0].cpus: unknown key 'cpus' in a node: amounts go in capacity" in err
    assert "tasks.ok.timout: unknown key" in err
    assert not (work / "s.db").exists()


def test_validate_and_plan_report_resources_with_the_other_problems(tmp_path: Path) -> None:
    work = folder(tmp_path)
    for command in ("validate", "plan"):
        code, _, err = cli([command, "spec.yaml", "--cluster", "cluster.yaml"], work)
        assert code == 2 and err.startswith("error: 4 problems:"), err
        assert "tasks.big.resources: no node can ever satisfy it" in err and "tasks.ok.timout" in err


def test_run_reports_resources_and_parameter_values_together(tmp_path: Path) -> None:
    work = folder(tmp_path)
    spec = "params: {n: int}\ntasks:\n  big: {argv: [sh, -c, 'true'], resources: {cpu: 4}}\n"
    (work / "p.yaml").write_text(spec)
    code, _, err = cli(["run", "p.yaml", "-p", "n=abc", "--cluster", "cluster.yaml", "--store", "s.db"], work)
    assert code == 2
    assert err.splitlines() == [
        "error: 2 problems:",
        "  - p.yaml:3:33: tasks.big.resources: no node can ever satisfy it (cpu 4 > 2 on node small)",
        "  - param n: expected int, got 'abc'",
    ]
    assert not (work / "s.db").exists()
