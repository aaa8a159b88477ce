"""``podium run --cluster FILE`` without Ray runs every node's tasks on this machine: its
``--help`` says so, and so does the run summary, in one line."""

from __future__ import annotations

from pathlib import Path

from inprocess_cli import cli

SPEC = 'tasks:\n  a: {argv: ["sh", "-c", "true"]}\n  b: {argv: ["sh", "-c", "true"], after: [a]}\n'


def setup(tmp_path: Path, count: int) -> Path:
    (tmp_path / "podium.toml").write_text('allow_programs = ["sh"]\n')
    (tmp_path / "spec.yaml").write_text(SPEC)
    (tmp_path / "cluster.yaml").write_text(
        f"nodes:\n  - {{name: n, count: {count}, capacity: {{cpu: 1, memory: 1GiB}}}}\n"
    )
    return tmp_path


def test_the_summary_says_the_nodes_share_this_machine(tmp_path: Path) -> None:
    work = setup(tmp_path, 3)
    code, out, err = cli(
        ["run", "spec.yaml", "--cluster", "cluster.yaml", "--no-progress", "--store", "s.db"], work
    )
    assert code == 0, err
    said = [ln for ln in out.splitlines() if "this machine" in ln]
    assert said == [
        "the 3 nodes of cluster.yaml share this machine (the local executor runs every node's tasks here)"
    ]
    assert out.rstrip().endswith(said[0])  # the summary's last line


def test_one_node_and_no_cluster_file(tmp_path: Path) -> None:
    work = setup(tmp_path, 1)
    _, out, _ = cli(
        ["run", "spec.yaml", "--cluster", "cluster.yaml", "--no-progress", "--store", "s.db"], work
    )
    assert "the node of cluster.yaml is this machine" in out
    _, out, _ = cli(["run", "spec.yaml", "--no-progress", "--store", "s.db"], work)
    assert "this machine" not in out  # nothing to say: the run's node is this machine


def test_help_says_the_nodes_are_not_separate_machines(tmp_path: Path) -> None:
    code, out, _ = cli(["run", "--help"], tmp_path)
    assert code == 0
    text = " ".join(out.split())
    assert "not separate machines: every node's tasks run on this machine" in text
