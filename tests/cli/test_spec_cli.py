"""`podium validate`, `graph` and `schema`: exit codes, messages, no tracebacks, nothing written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from podium.cli import main

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "specs"


def podium_proc(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "podium", *args], cwd=cwd, capture_output=True, text=True, timeout=60
    )


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        main(args)
        code = 0
    except SystemExit as e:
        code = int(e.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


#: Flags granting what the example specs use (their own podium.toml grants the same).
EXAMPLE_GRANTS = [
    "--allow-module", "demo_tasks", "--module-path", str(EXAMPLES),
    "--allow-program", "python3", "--allow-host", "127.0.0.1",
]  # fmt: skip


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The project folder; its podium.toml lets specs run any program (these tests are about
    other mistakes: shell tasks here name placeholder programs like ``x``)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "podium.toml").write_text('allow_programs = ["*"]\n')
    return tmp_path


def spec(dir_: Path, text: str | bytes, name: str = "spec.yaml") -> str:
    path = dir_ / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(textwrap.dedent(text))
    return name


def bad(args: list[str], capsys: pytest.CaptureFixture[str], work: Path) -> str:
    """Run a command that must fail with exit 2, a one-line-per-problem message, no traceback,
    and no file written."""
    before = sorted(p.name for p in work.iterdir())
    code, out, err = run(args, capsys)
    assert code == 2, (out, err)
    assert err.startswith("error: ")
    assert "Traceback" not in err and out == ""
    assert sorted(p.name for p in work.iterdir()) == before
    return err


# -- the happy paths --------------------------------------------------------------------------
def test_validate_ok_summary_through_a_real_process(tmp_path: Path) -> None:
    proc = podium_proc(
        "validate", str(EXAMPLES / "pipeline.yaml"), *EXAMPLE_GRANTS, "-p", "label=x", cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith("workflow 'demo-pipeline': 7 tasks, 2 params, 9 edges, fits 1 node")
    assert os.listdir(tmp_path) == []


def test_validate_python_flow_mentions_required_params(
    work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(["validate", str(EXAMPLES / "pipeline_flow.py")], capsys)
    assert code == 0 and "7 tasks" in out and "required params: label" in out


def test_allow_modules_from_podium_toml(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (work / "podium.toml").write_text(
        f'allow_modules = ["demo_tasks"]\nmodule_paths = ["{EXAMPLES}"]\n'
        'allow_programs = ["python3"]\nallow_hosts = ["127.0.0.1"]\n'
    )
    code, _, err = run(["validate", str(EXAMPLES / "pipeline.yaml")], capsys)
    assert code == 0, err


def test_graph_mermaid_and_dot(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["graph", str(EXAMPLES / "pipeline.yaml"), *EXAMPLE_GRANTS], capsys)
    assert code == 0
    assert out.startswith("flowchart TD")
    assert 't2[["train<br/>demo_tasks:train<br/>map over model"]]' in out
    assert 't3 -->|"if route.label == #quot;good#quot;"| t4' in out
    assert "t4 -.-> t6" in out  # after: an ordering edge
    code, out, _ = run(["graph", str(EXAMPLES / "pipeline.yaml"), *EXAMPLE_GRANTS, "--format", "dot"], capsys)
    assert code == 0 and out.startswith('digraph "demo-pipeline" {')
    assert '"train" [label="train\\ndemo_tasks:train\\nmap over model", peripheries=2];' in out
    assert '"route" -> "notify" [style=dashed, label="if route.label == \\"bad\\""];' in out
    assert '"load" -> "features";' in out


def test_schema_prints_valid_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["schema"], capsys)
    assert code == 0
    schema = json.loads(out)
    assert schema["title"] == "Podium workflow spec" and "tasks" in schema["required"]


# -- every bad input: exit 2, a clear message, no traceback -----------------------------------
def test_cycle(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    name = spec(work, "tasks:\n  a: {argv: ['${b}']}\n  b: {argv: ['${a}']}\n")
    assert "dependency cycle: a -> b -> a" in bad(["validate", name], capsys, work)


def test_unknown_task_reference(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    name = spec(work, "tasks:\n  load: {argv: [x]}\n  t: {argv: ['${lod}']}\n")
    err = bad(["validate", name], capsys, work)
    assert "spec.yaml:3:14: tasks.t.argv[0]: refers to unknown task 'lod' (did you mean 'load'?)" in err


def test_duplicate_task_names(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    name = spec(work, "tasks:\n  t: {argv: [x]}\n  t: {argv: [y]}\n")
    assert "spec.yaml:3:3: tasks.t: duplicate key 't' (first at line 2)" in bad(
        ["validate", name], capsys, work
    )


def test_unknown_key_with_did_you_mean(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    name = spec(work, "tasks:\n  t:\n    argv: [x]\n    retires: 3\n")
    err = bad(["validate", name], capsys, work)
    assert "spec.yaml:4:5: tasks.t.retires: unknown key 'retires' in task (did you mean 'retries'?)" in err


def test_malformed_duration(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    name = spec(work, "tasks:\n  t:\n    argv: [x]\n    timeout: 10x\n")
    err = bad(["validate", name], capsys, work)
    assert "error: spec.yaml:4:14: tasks.t.timeout: malformed duration '10x': use e.g. '90s'" in err


def test_malformed_size(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    name = spec(work, "tasks:\n  t:\n    argv: [x]\n    resources: {memory: 2 elephants}\n")
    err = bad(["validate", name], capsys, work)
    assert "spec.yaml:4:25: tasks.t.resources.memory: malformed size '2 elephants'" in err


def test_yaml_syntax_error(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    name = spec(work, "tasks:\n  t: {argv: [x]\n  u: 1\n")
    err = bad(["validate", name], capsys, work)
    assert err.startswith("error: spec.yaml:3:3: YAML syntax error: ") and "expected ',' or '}'" in err


def test_yaml_aliases_rejected(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    name = spec(work, "x: &big [a, a]\ntasks:\n  t: {argv: *big}\n")
    assert "spec.yaml:1:4: YAML anchors (&big) are not allowed in specs" in bad(
        ["validate", name], capsys, work
    )


def test_billion_laughs_rejected_fast(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"a{i}: &a{i} [{','.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    name = spec(work, "\n".join(lines) + "\n")
    assert "YAML anchors (&a0) are not allowed" in bad(["validate", name], capsys, work)


def test_non_utf8_bytes(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    name = spec(work, b"tasks:\n  t: {argv: [caf\xe9]}\n")
    err = bad(["validate", name], capsys, work)
    assert "spec.yaml: not valid UTF-8: byte 0xe9 at byte offset 23" in err


def test_oversized_spec_bytes(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    name = spec(work, "tasks:\n  t: {argv: [x]}\n" + "# padding\n" * 200)
    err = bad(["validate", name, "--max-bytes", "1000"], capsys, work)
    assert "over the limit of 1000 bytes (raise it with --max-bytes)" in err
    code, _, _ = run(["validate", name, "--max-bytes", "5000"], capsys)
    assert code == 0


def test_oversized_default_limit_through_a_real_process(tmp_path: Path) -> None:
    (tmp_path / "big.yaml").write_text("tasks:\n  t: {argv: [x]}\n" + "#" * (1024 * 1024))
    proc = podium_proc("validate", "big.yaml", cwd=tmp_path)
    assert proc.returncode == 2
    assert "over the limit of 1048576 bytes" in proc.stderr and "Traceback" not in proc.stderr


def test_too_many_tasks(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    name = spec(work, "tasks:\n" + "".join(f"  t{i}: {{argv: [x]}}\n" for i in range(5)))
    assert "5 tasks, over the limit of 4 (raise it with --max-tasks)" in bad(
        ["validate", name, "--max-tasks", "4"], capsys, work
    )


def test_too_deep(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    name = spec(work, "tasks:\n  t: {argv: [x], args: " + "[" * 40 + "]" * 40 + "}\n")
    assert "nesting deeper than 32 levels (raise the limit with --max-depth)" in bad(
        ["validate", name], capsys, work
    )


def test_unknown_parameter(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    name = spec(work, "params: {n: int}\ntasks:\n  t: {argv: ['${params.n}']}\n")
    err = bad(["validate", name, "-p", "n=1", "-p", "colour=red"], capsys, work)
    assert "param colour: unknown parameter (declared: n)" in err


def test_mistyped_and_missing_parameters(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    name = spec(
        work, "params: {n: int, flag: bool}\ntasks:\n  t: {argv: ['${params.n}', '${params.flag}']}\n"
    )
    err = bad(["validate", name, "-p", "n=ten"], capsys, work)
    assert "2 problems" in err and "param n: expected int, got 'ten'" in err
    assert "param flag: required parameter not given" in err


def test_param_without_equals(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    name = spec(work, "tasks:\n  t: {argv: [x]}\n")
    assert "parameter 'n': expected NAME=VALUE" in bad(["validate", name, "-p", "n"], capsys, work)


def test_disallowed_module(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    name = spec(work, "tasks:\n  t: {call: 'shutil:rmtree', args: {path: /}}\n")
    err = bad(["validate", name], capsys, work)
    assert (
        "spec.yaml:2:13: tasks.t.call: module 'shutil' is not allowed: allow it with --allow-module shutil"
        in err
    )


def test_unknown_function_in_allowed_module(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    name = spec(work, "tasks:\n  t: {call: 'demo_tasks:nope'}\n")
    (work / "demo_tasks.py").write_text("def load():\n    return 1\n")
    err = bad(["validate", name, "--allow-module", "demo_tasks"], capsys, work)
    assert "tasks.t.call: 'nope' is not defined in module 'demo_tasks'" in err


def test_unplaceable_resources(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    name = spec(work, "tasks:\n  t: {argv: [x], resources: {cpu: 4096, tpu: 1}}\n")
    err = bad(["validate", name], capsys, work)
    assert "tasks.t.resources: no node can ever satisfy it (cpu 4096 >" in err and "tpu 1 > 0" in err


def test_missing_file_and_unknown_type(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert "error: nope.yaml: no such file" in bad(["validate", "nope.yaml"], capsys, work)
    (work / "x.toml").write_text("")
    assert "unknown spec type '.toml'" in bad(["graph", "x.toml"], capsys, work)


def test_all_problems_listed_together(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    name = spec(
        work,
        """
        tasks:
          a: {argv: ['${b}'], timout: 1s}
          b: {argv: ['${a}'], timeout: soon}
          c: {kind: htp}
        """,
    )
    err = bad(["validate", name], capsys, work)
    lines = err.splitlines()
    assert lines[0] == "error: 4 problems:"
    assert all(line.startswith("  - spec.yaml:") for line in lines[1:])


def test_bad_python_flow_file(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (work / "cli_bad_flow_mod.py").write_text(
        "import podium\n\n@podium.task\ndef t(x):\n    return x\n\n@podium.flow\ndef f():\n    t(1, 2)\n"
    )
    err = bad(["validate", "cli_bad_flow_mod.py"], capsys, work)
    assert "tasks.t: bad arguments for t: too many positional arguments" in err


def test_bad_input_through_a_real_process_has_no_traceback(tmp_path: Path) -> None:
    (tmp_path / "spec.yaml").write_bytes(b"tasks:\n  a: &x {argv: [\xff]}\n")
    proc = podium_proc("validate", "spec.yaml", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: spec.yaml: not valid UTF-8") and "Traceback" not in proc.stderr
    proc = podium_proc("graph", "spec.yaml", "--format", "png", cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "png" in proc.stderr
    assert sorted(os.listdir(tmp_path)) == ["spec.yaml"]


def test_validate_against_a_cluster_file(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (work / "cluster.yaml").write_text(
        "nodes:\n  - {name: small, capacity: {cpu: 2, memory: 1GiB}}\n"
        "  - {name: gpu-box, capacity: {cpu: 4, memory: 8GiB, gpu: 1}}\n"
    )
    ok = spec(work, "tasks:\n  t: {argv: [x], resources: {cpu: 4, gpu: 1}}\n", "ok.yaml")
    code, out, err = run(["validate", ok, "--cluster", "cluster.yaml"], capsys)
    assert code == 0, err
    assert "fits 2 nodes" in out
    name = spec(work, "tasks:\n  t: {argv: [x], resources: {cpu: 8, memory: 2GiB}}\n")
    err = bad(["validate", name, "--cluster", "cluster.yaml"], capsys, work)
    assert "tasks.t.resources: no node can ever satisfy it (cpu 8 > 4 on node gpu-box)" in err
