"""Entry points: load_workflow / load_source (resume), parse_params, project configuration."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from podium.errors import SpecError, UsageError
from podium.load import Config, load_config, load_source, load_workflow, parse_params
from podium.policy import Policy
from podium.registry import Registry

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "specs"

FLOWS = """
import podium

@podium.task
def one(x: int = 1) -> int:
    return x

@podium.flow
def first(n: int = 2):
    one(n)

@podium.flow(name="second-flow")
def second():
    one(3)
    one(4)
"""


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


def test_yaml_source_is_json_and_reloads(tmp_path: Path) -> None:
    spec = write(tmp_path / "w.yaml", "tasks:\n  a: {argv: [echo, hi]}\n")
    loaded = load_workflow(spec, cwd=tmp_path, allow_programs=["echo"])
    source = json.loads(json.dumps(loaded.source))
    assert source == {
        "kind": "yaml",
        "path": str(spec.resolve()),
        "sha256": loaded.source["sha256"],
        "allow_modules": [],
        "allow": {
            "modules": [],
            "root": str(tmp_path.resolve()),
            "module_paths": [],
            "secrets_dir": None,
            "policy": Policy(programs=("echo",)).to_json(),
        },
        "flow": None,
    }
    assert load_source(source) == loaded.workflow  # what was granted comes with the source


def test_load_source_refuses_a_changed_file(tmp_path: Path) -> None:
    spec = write(tmp_path / "w.yaml", "tasks:\n  a: {argv: [echo, hi]}\n")
    source = load_workflow(spec, cwd=tmp_path, allow_programs=["echo"]).source
    spec.write_text("tasks:\n  a: {argv: [echo, changed]}\n")
    with pytest.raises(SpecError, match="the spec changed since the run started"):
        load_source(source)
    with pytest.raises(SpecError, match="incomplete"):
        load_source({"kind": "yaml"})


def test_python_file_flows_are_picked_by_name(tmp_path: Path) -> None:
    path = write(tmp_path / "flows_pick_mod.py", FLOWS)
    with pytest.raises(SpecError, match=r"defines 2 flows \(first, second-flow\): pick one with"):
        load_workflow(path)
    first = load_workflow(f"{path}:first")
    assert first.workflow.name == "first" and first.source["flow"] == "first"
    second = load_workflow(f"{path}:second-flow")
    assert list(second.workflow.tasks) == ["one", "one_2"]
    assert first.source["kind"] == "python" and first.source["path"] == str(path.resolve())
    assert load_source(second.source) == second.workflow
    with pytest.raises(SpecError, match="no flow named 'third'"):
        load_workflow(f"{path}:third")


def test_python_file_problems_are_spec_errors(tmp_path: Path) -> None:
    none = write(tmp_path / "noflow_mod.py", "x = 1\n")
    with pytest.raises(SpecError, match=r"defines no @podium\.flow"):
        load_workflow(none)
    broken = write(tmp_path / "broken_syntax_mod.py", "def f(:\n")
    with pytest.raises(SpecError, match=r"broken_syntax_mod.py:1:\d+: Python syntax error"):
        load_workflow(broken)
    raising = write(tmp_path / "raising_mod.py", "raise RuntimeError('boom')\n")
    with pytest.raises(SpecError, match=r"importing it failed: RuntimeError: boom \(at raising_mod.py:1\)"):
        load_workflow(raising)
    clash = write(tmp_path / "json.py", "x = 1\n")
    with pytest.raises(SpecError, match="already imported from elsewhere"):
        load_workflow(clash)


def test_file_level_errors(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="no such file"):
        load_workflow(tmp_path / "missing.yaml")
    with pytest.raises(SpecError, match=r"unknown spec type '\.txt'"):
        load_workflow(write(tmp_path / "w.txt", "x"))
    (tmp_path / "d.yaml").mkdir()
    with pytest.raises(SpecError, match="is a directory"):
        load_workflow(tmp_path / "d.yaml")
    with pytest.raises(SpecError, match=r"selects a flow in a \.py file only"):
        load_workflow(str(write(tmp_path / "w.yaml", "tasks: {a: {argv: [x]}}")) + ":f")


def test_parse_params() -> None:
    assert parse_params(["n=10", "s= a=b ", 'l=["x", 1]', 'd={"k": 2}', "t=[oops", "e="]) == {
        "n": "10",
        "s": " a=b ",
        "l": ["x", 1],
        "d": {"k": 2},
        "t": "[oops",
        "e": "",
    }
    with pytest.raises(UsageError, match="expected NAME=VALUE"):
        parse_params(["n"])
    with pytest.raises(UsageError, match="name before '=' is empty"):
        parse_params(["=3"])


def test_config_from_podium_toml_and_pyproject(tmp_path: Path) -> None:
    root = str(tmp_path.resolve())
    assert load_config(tmp_path) == Config(root=root)
    write(tmp_path / "pyproject.toml", '[tool.podium]\nallow_modules = ["pkg_a"]\n')
    assert load_config(tmp_path).allow_modules == ("pkg_a",)
    write(tmp_path / "podium.toml", 'allow_modules = ["pkg_b", "pkg_c.sub"]\n')
    assert load_config(tmp_path) == Config(("pkg_b", "pkg_c.sub"), str(tmp_path / "podium.toml"), root)
    write(tmp_path / "podium.toml", "allow_modules = 3\n")
    with pytest.raises(SpecError, match="allow_modules: expected a list of module names"):
        load_config(tmp_path)
    write(tmp_path / "podium.toml", "allow_modules = [\n")
    with pytest.raises(SpecError, match=r"podium\.toml: cannot be read as TOML"):
        load_config(tmp_path)


def test_config_allows_modules_for_specs(tmp_path: Path) -> None:
    write(tmp_path / "cfg_allowed_mod.py", "def go():\n    return 1\n")
    spec = write(tmp_path / "w.yaml", "tasks:\n  a: {call: 'cfg_allowed_mod:go'}\n")
    with pytest.raises(SpecError, match="not allowed"):
        load_workflow(spec, cwd=tmp_path, registry=Registry())
    write(tmp_path / "podium.toml", 'allow_modules = ["cfg_allowed_mod"]\n')
    loaded = load_workflow(spec, cwd=tmp_path, registry=Registry())
    assert loaded.source["allow_modules"] == ["cfg_allowed_mod"]
    assert load_source(loaded.source, registry=Registry()) == loaded.workflow


def test_example_specs_all_load() -> None:
    """From their folder, whose podium.toml grants what they use."""
    for path in sorted(EXAMPLES.glob("*.yaml")):
        assert load_workflow(path, cwd=EXAMPLES, registry=Registry()).workflow.tasks


def test_a_source_without_recorded_grants_uses_the_current_configuration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Runs started before grants were recorded in their source still resume."""
    spec = write(tmp_path / "w.yaml", "tasks:\n  a: {argv: [echo, hi]}\n")
    source = dict(load_workflow(spec, cwd=tmp_path, allow_programs=["echo"]).source)
    del source["allow"]
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SpecError, match="program 'echo' is not allowed"):
        load_source(source, registry=Registry())
    write(tmp_path / "podium.toml", 'allow_programs = ["echo"]\n')
    assert load_source(source, registry=Registry()).tasks["a"].kind == "shell"
