"""What a ``call:`` may name, and where an allowed module comes from.

Attacks: walking from an allowed module into what it imported (``demo:os.system``), dunders,
and a module planted next to an untrusted spec that shadows the allowed one and runs its
top-level code during ``podium validate``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from security_helpers import audited, cli, unique, write

import podium
from podium.errors import PodiumError, SpecError
from podium.load import load_workflow
from podium.registry import Registry

MODULE = """
import os, subprocess, importlib
import podium
from os import system as shell_out

SIDE = {side!r}
if SIDE:
    with open(SIDE, "w") as f:
        f.write("imported")

def hello(x=1):
    return x

@podium.task
def decorated(x=1):
    return x + 1

class Tools:
    @staticmethod
    def double(x):
        return 2 * x

    class Inner:
        @staticmethod
        def triple(x):
            return 3 * x

alias = hello
"""


def project(tmp: Path, side: Path | None = None) -> tuple[Path, str]:
    """A project folder with an allowed module (its name unique to the test) in podium.toml."""
    mod = unique("demo")
    write(tmp / f"{mod}.py", MODULE.format(side=str(side) if side else ""))
    write(tmp / "podium.toml", f'allow_modules = ["{mod}"]\n')
    return tmp, mod


def spec(tmp: Path, call: str, args: str = "{}") -> Path:
    return write(tmp / "s.yaml", f"name: s\ntasks:\n  t: {{call: '{call}', args: {args}}}\n")


ATTACKS = [
    "os.system",
    "subprocess.run",
    "importlib.import_module",
    "podium.registry.importlib.import_module",
    "shell_out",
    "hello.__globals__",
    "__builtins__",
    "Tools.__init__",
    "hello.__code__",
    "__import__",
    "Tools.__subclasses__",
    "alias",
]


@pytest.mark.parametrize("attr", ATTACKS)
def test_a_call_cannot_walk_out_of_the_allowed_module(tmp_path: Path, attr: str) -> None:
    root, mod = project(tmp_path)
    with pytest.raises(SpecError) as e:
        load_workflow(spec(root, f"{mod}:{attr}"), cwd=root, registry=Registry())
    assert "tasks.t.call" in str(e.value)


@pytest.mark.parametrize("attr", ATTACKS)
def test_the_registry_refuses_the_same_walks_at_run_time(tmp_path: Path, attr: str) -> None:
    root, mod = project(tmp_path)
    reg = Registry()
    reg.allow(mod, str(root / f"{mod}.py"))
    with pytest.raises(SpecError, match=r"not a function defined in|dunder|not defined in"):
        reg.resolve(f"{mod}:{attr}")


def test_legit_calls_still_resolve(tmp_path: Path) -> None:
    root, mod = project(tmp_path)
    for call, x, want in [
        (f"{mod}:hello", 5, 5),
        (f"{mod}:decorated", 5, 6),
        (f"{mod}:Tools.double", 5, 10),
        (f"{mod}:Tools.Inner.triple", 5, 15),
    ]:
        loaded = load_workflow(spec(root, call, f"{{x: {x}}}"), cwd=root, registry=Registry())
        assert loaded.workflow.tasks["t"].call == call
        reg = Registry()
        reg.allow(mod, str(root / f"{mod}.py"))
        assert reg.resolve(call)(x=x) == want


def test_the_dotted_module_name_in_the_issue_is_refused(tmp_path: Path) -> None:
    """``demo_tasks:podium.registry.importlib.import_module`` validated on the old code."""
    root, mod = project(tmp_path)
    with pytest.raises(SpecError) as e:
        load_workflow(
            spec(root, f"{mod}:podium.registry.importlib.import_module"), cwd=root, registry=Registry()
        )
    assert "podium.registry.importlib.import_module" in str(e.value)


def test_running_os_system_through_an_allowed_module_runs_nothing(tmp_path: Path) -> None:
    root, mod = project(tmp_path)
    sentinel = tmp_path / "PWNED"
    spec(root, f"{mod}:os.system", f"{{command: 'touch {sentinel}'}}")
    with audited() as log:
        code, _out, err = cli(["run", "s.yaml", "--store", "memory:", "--no-progress"], cwd=root)
    assert code == 2 and err.startswith("error: ") and "os.system" in err
    assert not sentinel.exists()
    assert not [e for e in log if "touch" in e[1]]


def test_registry_entries_are_exported_on_purpose() -> None:
    reg = Registry()
    reg.register("tools:anything", len)
    assert reg.resolve("tools:anything") is len  # registered by name: no walk, no module check


def test_decorated_task_resolves_to_its_function() -> None:
    @podium.task
    def inner(x: int = 1) -> int:
        return x

    # a task defined inside a function is registered under its full qualname, on purpose
    assert podium.registry.REGISTRY.resolve(inner.call) is inner.fn


# -- where allowed modules come from ------------------------------------------------------------
def test_validate_never_imports_a_module_planted_next_to_the_spec(tmp_path: Path) -> None:
    """The spec's folder holds a module named like the allowed one: validating the spec must
    neither import it nor run its top-level code."""
    mod = unique("demo")
    side = tmp_path / "SHADOW_RAN"
    work = tmp_path / "project"
    write(work / "podium.toml", f'allow_modules = ["{mod}"]\n')
    write(tmp_path / "downloads" / f"{mod}.py", MODULE.format(side=str(side)))
    write(tmp_path / "downloads" / "s.yaml", f"name: s\ntasks:\n  t: {{call: '{mod}:hello'}}\n")
    code, _out, err = cli(["validate", str(tmp_path / "downloads" / "s.yaml")], cwd=work)
    assert not side.exists(), "validate ran the top-level code of a module next to the spec"
    assert code == 2 and f"module {mod!r} was not found" in err


def test_validate_does_not_run_the_allowed_modules_code_either(tmp_path: Path) -> None:
    side = tmp_path / "RAN"
    root, mod = project(tmp_path / "p", side)
    spec(root, f"{mod}:hello")
    code, out, err = cli(["validate", "s.yaml"], cwd=root)
    assert code == 0, err
    assert "OK s.yaml" in out
    assert not side.exists(), "validate imported the allowed module"


def test_project_module_wins_over_a_planted_one_at_run_time(tmp_path: Path) -> None:
    mod = unique("demo")
    planted, real = tmp_path / "PLANTED", tmp_path / "REAL"
    work = tmp_path / "project"
    write(work / "podium.toml", f'allow_modules = ["{mod}"]\n')
    write(work / f"{mod}.py", MODULE.format(side=str(real)))
    write(tmp_path / "downloads" / f"{mod}.py", MODULE.format(side=str(planted)))
    write(tmp_path / "downloads" / "s.yaml", f"name: s\ntasks:\n  t: {{call: '{mod}:hello'}}\n")
    s = str(tmp_path / "downloads" / "s.yaml")
    code, _out, err = cli(["run", s, "--store", "memory:", "--no-progress"], cwd=work)
    assert code == 0, err
    assert real.exists() and not planted.exists()


def test_the_spec_folder_is_used_only_when_the_user_says_so(tmp_path: Path) -> None:
    mod = unique("demo")
    write(tmp_path / "specs" / f"{mod}.py", MODULE.format(side=""))
    s = write(tmp_path / "specs" / "s.yaml", f"name: s\ntasks:\n  t: {{call: '{mod}:hello'}}\n")
    with pytest.raises(SpecError, match="was not found"):
        load_workflow(s, allow_modules=[mod], cwd=tmp_path, registry=Registry())
    reg = Registry()
    loaded = load_workflow(
        s, allow_modules=[mod], module_paths=[tmp_path / "specs"], cwd=tmp_path, registry=reg
    )
    assert reg.resolve(f"{mod}:hello")(x=4) == 4
    assert loaded.source["allow"]["module_paths"] == [str(tmp_path / "specs")]


def test_a_package_in_the_project_root_is_checked_without_importing_it(tmp_path: Path) -> None:
    pkg = unique("pkg")
    side = tmp_path / "PKG_RAN"
    write(tmp_path / pkg / "__init__.py", f"with open({str(side)!r}, 'w') as f:\n    f.write('x')\n")
    write(tmp_path / pkg / "tasks.py", "def go(x=0):\n    return x + 100\n")
    s = write(tmp_path / "s.yaml", f"name: s\ntasks:\n  t: {{call: '{pkg}.tasks:go'}}\n")
    reg = Registry()
    load_workflow(s, allow_modules=[pkg], cwd=tmp_path, registry=reg)
    assert not side.exists()
    with pytest.raises(SpecError, match="'nope' is not defined"):
        load_workflow(
            write(tmp_path / "t.yaml", f"tasks:\n  t: {{call: '{pkg}.tasks:nope'}}\n"),
            allow_modules=[pkg],
            cwd=tmp_path,
            registry=Registry(),
        )
    assert reg.resolve(f"{pkg}.tasks:go")(x=1) == 101  # run time: now it is imported
    assert side.exists()


def test_errors_of_the_registry_are_podium_errors() -> None:
    reg = Registry()
    for bad in ["nocolon", ":f", "m:", "m:1x", "m:a..b", "m: f"]:
        with pytest.raises(PodiumError):
            reg.resolve(bad)


SLOW = """
import time
time.sleep(0.3)  # other threads ask for the function while this module is still running

def ready(x=0):
    return x + 1
"""


@pytest.mark.parametrize("where", ["installed", "project"])
def test_threads_resolving_a_module_being_imported_wait_for_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    """The first task of a run imports the module; tasks starting meanwhile on other threads
    must wait for it, not see a half-run module without the function."""
    import threading

    mod = unique("slow")
    write(tmp_path / f"{mod}.py", SLOW)
    reg = Registry()
    reg.allow(mod)
    if where == "installed":
        monkeypatch.syspath_prepend(str(tmp_path))
    else:
        reg.locate(mod, str(tmp_path))
    got: list[object] = []

    def worker() -> None:
        try:
            got.append(reg.resolve(f"{mod}:ready")(x=1))
        except Exception as e:  # recorded, asserted below
            got.append(e)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert got == [2] * 8
