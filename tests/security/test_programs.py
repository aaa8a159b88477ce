"""Which programs a shell task may run: only those the user allowed, checked when the spec is
validated and again when the task runs (a parameter or an upstream result may choose argv[0]).

Attacks: any program with no opt-in; a parameter choosing the executable; a spec ``PATH``
pointing at the attacker's folder; ``LD_PRELOAD`` loading the attacker's library into an
allowed program; environment names that break the run (``C=D``, NUL bytes).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from security_helpers import audited, cli, write

from podium.errors import SpecError, TaskFailedError
from podium.executors.kinds import run_call
from podium.load import load_workflow
from podium.model import Resources, TaskCall, TaskSpec
from podium.registry import Registry


def shell_spec(tmp: Path, argv: str, extra: str = "", params: str = "") -> Path:
    text = f"name: sh\n{params}tasks:\n  t:\n    kind: shell\n    argv: {argv}\n{extra}"
    return write(tmp / "s.yaml", text)


def execs(log: list[tuple[str, str]], word: str) -> list[tuple[str, str]]:
    return [e for e in log if word in e[1]]


def test_a_shell_task_needs_its_program_allowed(tmp_path: Path) -> None:
    sentinel = tmp_path / "RAN"
    shell_spec(tmp_path, f"[touch, {sentinel}]")
    with audited() as log:
        v = cli(["validate", "s.yaml"], cwd=tmp_path)
        r = cli(["run", "s.yaml", "--store", "memory:", "--no-progress"], cwd=tmp_path)
    for code, _out, err in (v, r):
        assert code == 2 and "program 'touch' is not allowed" in err and "--allow-program touch" in err
    assert not sentinel.exists() and not execs(log, "touch")
    code, _out, err = cli(
        ["run", "s.yaml", "--store", "memory:", "--no-progress", "--allow-program", "touch"], tmp_path
    )
    assert code == 0, err
    assert sentinel.exists()


def test_allow_programs_in_podium_toml(tmp_path: Path) -> None:
    sentinel = tmp_path / "RAN"
    shell_spec(tmp_path, f"[touch, {sentinel}]")
    write(tmp_path / "podium.toml", 'allow_programs = ["touch"]\n')
    code, _out, err = cli(["run", "s.yaml", "--store", "memory:", "--no-progress"], cwd=tmp_path)
    assert code == 0, err
    assert sentinel.exists()


def test_a_parameter_cannot_choose_the_program(tmp_path: Path) -> None:
    sentinel = tmp_path / "RAN"
    shell_spec(tmp_path, f"['${{params.prog}}', {sentinel}]", params="params: {prog: {default: echo}}\n")
    code, _out, err = cli(["validate", "s.yaml"], cwd=tmp_path)
    assert code == 2 and "the program comes from an expression" in err
    with audited() as log:
        code, out, err = cli(
            [
                "run",
                "s.yaml",
                "--store",
                "memory:",
                "--no-progress",
                "--allow-program",
                "echo",
                "-p",
                "prog=touch",
            ],
            cwd=tmp_path,
        )
    assert code == 1 and "program 'touch' is not allowed" in out  # refused when the task ran
    assert "failed" in err
    assert not sentinel.exists() and not execs(log, "touch")


def test_the_spec_path_does_not_choose_the_executable(tmp_path: Path) -> None:
    """``env: {PATH: evil}`` must not make the allowed name ``echo`` run the attacker's echo."""
    evil, sentinel = tmp_path / "evil", tmp_path / "HIJACKED"
    fake = write(evil / "echo", f"#!/bin/sh\ntouch {sentinel}\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    shell_spec(tmp_path, "[echo, hi]", extra=f"    env: {{PATH: '{evil}'}}\n")
    code, _out, err = cli(
        ["run", "s.yaml", "--store", "memory:", "--no-progress", "--allow-program", "echo"], tmp_path
    )
    assert code == 0, err
    assert not sentinel.exists()


@pytest.mark.parametrize(
    ("key", "why"),
    [
        ("LD_PRELOAD", "changes what code a program loads"),
        ("LD_LIBRARY_PATH", "changes what code a program loads"),
        ("DYLD_INSERT_LIBRARIES", "changes what code a program loads"),
        ("C=D", "may not contain '='"),
        ("A\x00B", "may not contain '='"),
        ("", "non-empty name"),
    ],
)
def test_environment_names_are_checked_at_validation(tmp_path: Path, key: str, why: str) -> None:
    spec = write(
        tmp_path / "s.json",
        '{"tasks": {"t": {"argv": ["echo"], "env": {%s: "x"}}}}' % __import__("json").dumps(key),  # noqa: UP031
    )
    with pytest.raises(SpecError) as e:
        load_workflow(spec, cwd=tmp_path, allow_programs=["echo"], registry=Registry())
    assert why in str(e.value) and "tasks.t.env" in str(e.value)


def test_nul_bytes_in_argv_are_refused_at_validation(tmp_path: Path) -> None:
    spec = write(tmp_path / "s.json", '{"tasks": {"t": {"argv": ["echo", "a\\u0000b"]}}}')
    with pytest.raises(SpecError, match=r"argv\[1\]: contains a NUL byte"):
        load_workflow(spec, cwd=tmp_path, allow_programs=["echo"], registry=Registry())


def call(argv: list[str], env: dict[str, str] | None = None) -> TaskCall:
    config = {"argv": argv, **({"env": env} if env else {})}
    spec = TaskSpec(name="t", kind="shell", config=config)
    return TaskCall("r", "t", 1, spec, {}, spec.config, Resources())


def test_the_executor_checks_the_program_again() -> None:
    """A call that reaches an executor without validation (a tampered store, a bug) is
    refused there: nothing starts."""
    with audited() as log, pytest.raises(TaskFailedError, match="program 'true' is not allowed"):
        run_call(call(["true"]), Registry())
    assert not log
    reg = Registry()
    reg.grant(reg.policy.widen(programs=["true"]))
    assert run_call(call(["true"]), reg)["returncode"] == 0
    with pytest.raises(TaskFailedError, match="changes what code a program loads"):
        run_call(call(["true"], {"LD_PRELOAD": "/tmp/x.so"}), reg)


def test_any_program_is_an_explicit_choice(tmp_path: Path) -> None:
    sentinel = tmp_path / "RAN"
    shell_spec(tmp_path, f"[touch, {sentinel}]")
    assert cli(["validate", "s.yaml", "--allow-program", "*"], cwd=tmp_path)[0] == 0
    assert os.path.exists(tmp_path / "s.yaml") and not sentinel.exists()
