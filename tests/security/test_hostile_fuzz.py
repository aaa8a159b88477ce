"""Hostile specs, drawn at random: validating them runs no code, and running whatever passes
executes nothing outside the allow-lists.

The project grants a module (``hostile_*``: it imports os, subprocess and importlib, so a walk
out of it would reach them), the programs ``echo`` and ``true``, the host 127.0.0.1 and the
variables ``PODIUM_FUZZ_*``. The drawn specs try ``call`` paths with dotted walks and dunders,
URLs to cloud metadata, link-local, other loopback addresses (a canary server listens on
127.0.0.2) and redirects to them, programs that are not allowed (also through a parameter),
loader variables and a hijacked PATH, and parameters holding ``${...}``.

Proof that nothing escaped, for every example: no sentinel file appears (every hostile
command would create one), the audit hook saw no ``os.system``/exec/spawn and only
``echo``/``true`` started, and the canary server counted no request. The validation test also
checks the allowed module's top-level code never ran. Both run in well under a minute.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from security_helpers import Server, audited, json_reply, reply, unique, write

from podium.errors import PodiumError
from podium.executors.local import LocalExecutor
from podium.load import load_workflow
from podium.model import Node, Resources
from podium.registry import Registry
from podium.runtime.engine import Engine
from podium.store.memory import MemoryStore

SCALE = max(1, int(os.environ.get("PODIUM_FUZZ_SCALE", "1")))
FUZZ = settings(
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
MODULE = """
import os, subprocess, importlib, builtins
from os import system
SIDE = {side!r}
if SIDE:
    with open(SIDE, "w") as f:
        f.write("imported")

def hello(x=None, **kw):
    return x

class Tools:
    @staticmethod
    def double(x=1, **kw):
        return x * 2

alias = hello
"""
WORDS = [
    "hello", "Tools", "double", "alias", "os", "system", "subprocess", "run", "Popen", "importlib",
    "import_module", "builtins", "eval", "exec", "getattr", "open", "__class__", "__init__",
    "__globals__", "__builtins__", "__import__", "__subclasses__", "__dict__", "__call__", "_x",
]  # fmt: skip
PROGRAMS = [
    "echo", "true", "touch", "sh", "/bin/sh", "python3", "env", "rm", "./echo", "/bin/echo",
    "${params.p}", "ec${params.p}", "${t0}", "${env.PODIUM_FUZZ_TOKEN}",
]  # fmt: skip
PARAM_VALUES = [
    "x", "touch", "sh", "/bin/sh", "python3", "${env.HOME}", "${secrets.k}", "$(touch {s})",
    "`touch {s}`", "; touch {s}", "${{params.p}}", "$${x}", "{s}", "echo",
]  # fmt: skip


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("hostile")
    sentinel = root / "SENTINEL"
    canary = Server(lambda h: json_reply(h, {"canary": True}), host="127.0.0.2")
    hops = {
        "/to-canary": canary.url + "/x",
        "/to-metadata": "http://169.254.169.254/latest/meta-data/",
        "/to-v6-metadata": "http://[fd00:ec2::254]/",
        "/to-same": "/ok",
        "/to-file": "file:///etc/passwd",
    }

    def allowed(h: Any) -> None:
        path = h.path.split("?")[0]
        if path in hops:
            reply(h, 302, Location=hops[path])
        else:
            json_reply(h, {"ok": path})

    server = Server(allowed)
    evil = root / "evil"
    for name in ("echo", "true"):  # a PATH the spec may point at: each would touch the sentinel
        fake = write(evil / name, f"#!/bin/sh\ntouch {sentinel}\n")
        fake.chmod(0o755)
    validate_mod, run_mod = unique("hostile"), unique("hostile")
    imported = root / "IMPORTED"
    write(root / f"{validate_mod}.py", MODULE.format(side=str(imported)))
    write(root / f"{run_mod}.py", MODULE.format(side=""))
    write(
        root / "podium.toml",
        f'allow_modules = ["{validate_mod}", "{run_mod}"]\nallow_programs = ["echo", "true"]\n'
        'allow_hosts = ["127.0.0.1"]\nallow_env = ["PODIUM_FUZZ_*"]\nhttp_timeout = 1\n',
    )
    os.environ["PODIUM_FUZZ_TOKEN"] = "fuzz-token-value"
    reg = Registry()
    ex = LocalExecutor([Node("local", Resources.of(cpu=4, memory="1GiB"))], registry=reg)
    ok = {shutil.which("echo"), shutil.which("true")}
    yield {
        "root": root,
        "sentinel": sentinel,
        "imported": imported,
        "canary": canary,
        "server": server,
        "evil": evil,
        "modules": (validate_mod, run_mod),
        "registry": reg,
        "executor": ex,
        "programs": {p for p in ok if p},
    }
    ex.shutdown()
    canary.close()
    server.close()


def _call(draw: st.DrawFn, mod: str, stealthy: bool, s: str) -> tuple[str, dict[str, Any]]:
    """(call, args): a legit name with hostile arguments, a known walk to something that runs a
    command (with the arguments it needs to create the sentinel), or a random walk."""
    touch = {"command": f"touch {s}"}
    legit = [(f"{mod}:hello", {"x": "${params.p}"}), (f"{mod}:Tools.double", {"x": f"touch {s}"})]
    walks = [
        (f"{mod}:system", touch), (f"{mod}:os.system", touch), (f"{mod}:alias", {"x": 1}),
        (f"{mod}:subprocess.run", {"args": ["touch", s]}), (f"{mod}:builtins.exec", {"source": "1"}),
        (f"{mod}:importlib.import_module", {"name": "os"}), ("os:system", touch),
        (f"{mod}.os:system", touch), (f"{mod}:hello.__globals__", {}), (f"{mod}:Tools.__init__", {}),
    ]  # fmt: skip
    if stealthy and draw(st.booleans()):
        return draw(st.sampled_from(legit))
    if not stealthy and draw(st.integers(0, 2)) == 0:
        module = draw(st.sampled_from([mod, mod, "os", "subprocess", "builtins", f"{mod}.os"]))
        parts = draw(
            st.lists(st.sampled_from(WORDS) | st.from_regex(r"\A[a-z_]{1,6}\Z"), min_size=1, max_size=3)
        )
        return f"{module}:{'.'.join(parts)}", touch
    return draw(st.sampled_from(legit + walks))


def _url(draw: st.DrawFn, w: dict[str, Any], stealthy: bool) -> str:
    c, ok = w["canary"].port, w["server"].port
    # spellings of the canary's address that only DNS resolution reveals (they pass validation)
    hidden = [f"2130706434:{c}", f"0x7f000002:{c}", f"127.2:{c}", f"0177.0.0.2:{c}", f"127.0.0.1:{ok}"]
    literal = [
        f"127.0.0.2:{c}", f"[::ffff:127.0.0.2]:{c}", f"localhost:{c}", "169.254.169.254", "[fd00:ec2::254]",
        "[fe80::1]", "10.0.0.1", "[::1]:1", "0.0.0.0:1",
    ]  # fmt: skip
    host = draw(st.sampled_from(hidden if stealthy else hidden + literal))
    path = draw(
        st.sampled_from(["/ok", "/to-canary", "/to-metadata", "/to-v6-metadata", "/to-same", "/to-file"])
    )
    scheme = draw(
        st.sampled_from(["http", "http", "https"] if stealthy else ["http", "https", "file", "ftp"])
    )
    creds = "" if stealthy else draw(st.sampled_from(["", "u:p@"]))
    return f"{scheme}://{creds}{host}{path}"


SHELL_ENVS = [
    {"PATH": "{evil}"},
    {"X": "${env.PODIUM_FUZZ_TOKEN}"},
    {"LD_PRELOAD": "/tmp/x.so"},
    {"C=D": "1"},
]


@st.composite
def hostile_specs(
    draw: st.DrawFn, w: dict[str, Any], mod: str, stealthy: bool = False
) -> tuple[dict[str, Any], dict[str, str]]:
    """A spec of 1-3 hostile tasks and its parameters. ``stealthy``: mostly attacks that pass
    validation (so they meet the checks made when tasks run); calls that walk out of the
    module stay among them, since only validation and the registry stop those."""
    s = str(w["sentinel"])
    tasks: dict[str, Any] = {}
    for i in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["python", "http", "shell"]))
        if kind == "python":
            call, args = _call(draw, mod, stealthy, s)
            task: dict[str, Any] = {"call": call, "args": args}
        elif kind == "http":
            task = {"kind": "http", "url": _url(draw, w, stealthy)}
            if draw(st.booleans()):
                task["headers"] = {"Authorization": "Bearer ${env.PODIUM_FUZZ_TOKEN}"}
        else:
            programs = [*PROGRAMS[:2], "${params.p}", "ec${params.p}"] if stealthy else PROGRAMS
            task = {
                "kind": "shell",
                "argv": [
                    draw(st.sampled_from(programs)),
                    draw(st.sampled_from([s, f"touch {s}", "${params.p}"])),
                ],
            }
            env = draw(st.none() | st.sampled_from(SHELL_ENVS[:2] if stealthy else SHELL_ENVS))
            if env:
                task["env"] = {k: v.replace("{evil}", str(w["evil"])) for k, v in env.items()}
        if i and draw(st.booleans()):
            task["after"] = [f"t{i - 1}"]
        task["trigger"] = "all_done"
        tasks[f"t{i}"] = task
    doc = {"name": "hostile", "params": {"p": {"type": "str", "default": "x"}}, "tasks": tasks}
    value = draw(st.sampled_from(PARAM_VALUES)).replace("{s}", s)
    return doc, {"p": value}


def _check_nothing_escaped(w: dict[str, Any], log: list[tuple[str, str]], hits_before: int) -> None:
    assert not w["sentinel"].exists(), "a hostile command ran"
    for name, args in log:
        assert name == "subprocess.Popen", (name, args)
        assert any(repr(p) in args[: len(repr(p)) + 2] for p in w["programs"]), args
    assert len(w["canary"].hits) == hits_before, w["canary"].hits[hits_before:]


@given(data=st.data())
@settings(FUZZ, max_examples=200 * SCALE)
def test_validating_hostile_specs_runs_no_code(world: dict[str, Any], data: st.DataObject) -> None:
    doc, _params = data.draw(hostile_specs(world, world["modules"][0]))
    spec = write(world["root"] / "v.yaml", yaml.safe_dump(doc))
    with audited() as log:
        try:
            load_workflow(spec, cwd=world["root"], registry=Registry())
        except PodiumError as e:
            assert str(e)
    assert not log, log
    assert not world["imported"].exists(), "validation imported the allowed module"
    assert world["modules"][0] not in __import__("sys").modules


@given(data=st.data())
@settings(FUZZ, max_examples=100 * SCALE)
def test_running_what_passes_executes_nothing_outside_the_allow_lists(
    world: dict[str, Any], data: st.DataObject
) -> None:
    doc, params = data.draw(
        hostile_specs(world, world["modules"][1], stealthy=data.draw(st.integers(0, 3)) > 0)
    )
    spec = write(world["root"] / "r.yaml", yaml.safe_dump(doc))
    world["sentinel"].unlink(missing_ok=True)  # each example starts clean (shrinking included)
    hits = len(world["canary"].hits)
    with audited() as log:
        try:
            wf = load_workflow(spec, cwd=world["root"], registry=world["registry"]).workflow
        except PodiumError as e:
            event("refused: " + str(e).split(": ")[-1][:50])
            wf = None
        if wf is not None:
            result = Engine(MemoryStore(), world["executor"], registry=world["registry"]).run(wf, params)
            event(f"ran: {result.status}")
            for t in result.view.tasks.values():
                event(f"task {t.state}")
    _check_nothing_escaped(world, log, hits)
