"""Fuzzing the loader and `podium validate`: any input gives a Workflow or a clean SpecError.

Properties: a generated valid DAG loads to a Workflow with exactly its tasks (in order) and its
edges (references in argv, ``after``, ``when``); the same DAG with one field broken raises a
SpecError whose problem names that task and field, at the line holding it; any input at all
either loads to a Workflow whose edges stay inside it, or raises a SpecError whose every
problem names the file (with ``line:col`` within the text where given). Together these run
well over 500 examples in the normal suite (more with PODIUM_FUZZ_SCALE).
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import re
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from podium.cli import main
from podium.errors import SpecError
from podium.load import Limits, yamlsafe
from podium.load.config import Config
from podium.load.schema import ALL_TASK_KEYS, RETRY_KEYS, TOP_KEYS
from podium.load.spec import load_spec
from podium.model import Workflow
from podium.model.graph import topological_order
from podium.policy import Policy
from podium.registry import Registry

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "specs"
#: Multiply every example count, e.g. ``PODIUM_FUZZ_SCALE=20 pytest tests/load/test_load_fuzz.py``.
SCALE = max(1, int(os.environ.get("PODIUM_FUZZ_SCALE", "1")))
FUZZ = settings(deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
SMALL = Limits(max_bytes=20_000, max_tasks=50, max_depth=12)


ECHO = Config(policy=Policy(programs=("echo",)))  # the generated shell tasks run echo


def load(data: bytes, fmt: str) -> Workflow:
    return load_spec(data, f"fuzz.{fmt}", fmt, registry=Registry(), limits=SMALL, config=ECHO)


def check(data: bytes, fmt: str) -> SpecError | Workflow:
    """Load ``data``: a Workflow closed over its own tasks, or a SpecError naming where."""
    name = f"fuzz.{fmt}"
    try:
        wf = load(data, fmt)
    except SpecError as e:
        assert e.problems
        lines = len(data.decode("utf-8", "replace").splitlines()) + 1
        for p in e.problems:
            text = str(p)
            assert p.message.strip(), text
            assert text.startswith(name), text  # every problem names the file ...
            pos = re.match(rf"{re.escape(name)}:(\d+):(\d+)", text)
            if pos:  # ... and, where it gives one, a position inside it
                assert 1 <= int(pos.group(1)) <= lines and int(pos.group(2)) >= 1, text
        return e
    assert isinstance(wf, Workflow) and wf.tasks
    for t in wf.tasks.values():
        assert set(t.deps) <= set(wf.tasks), (t.name, t.deps)
    assert set(topological_order(wf.deps())) == set(wf.tasks)  # acyclic
    return wf


@settings(FUZZ, max_examples=150 * SCALE)
@given(st.binary(max_size=400))
def test_random_bytes_as_yaml(data: bytes) -> None:
    check(data, "yaml")


@settings(FUZZ, max_examples=100 * SCALE)
@given(st.binary(max_size=300))
def test_random_bytes_with_the_pure_python_parser(data: bytes) -> None:
    fast = yamlsafe._Loader
    yamlsafe._Loader = yamlsafe._PureLoader
    try:
        check(data, "yaml")
    finally:
        yamlsafe._Loader = fast


@settings(FUZZ, max_examples=60 * SCALE)
@given(st.binary(max_size=200))
def test_random_bytes_as_json(data: bytes) -> None:
    check(data, "json")


SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["10m", "1h30m", "500ms", "10x", "512MiB", "2GB", "lots", "-1", "", "thread", "process"]),
    st.sampled_from(
        ["${a}", "${b.k.0}", "${params.n}", "x-${a}-${params.n}", "$${a}", "${", "${}", "${params}"]
    ),
    st.sampled_from(["python", "http", "shell", "all_success", "none_failed", "GET", "m:f", "user", "oom"]),
    st.text(max_size=8),
)
KEYS = st.one_of(
    st.sampled_from([*TOP_KEYS, *ALL_TASK_KEYS, *RETRY_KEYS, "a", "b", "n", "task", "equals"]),
    st.text(max_size=5),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(KEYS, inner, max_size=5)),
    max_leaves=25,
)
RANDOM_TASK = st.dictionaries(st.sampled_from(ALL_TASK_KEYS), VALUES, max_size=6)
WORD = st.sampled_from(["echo", "x", "${a}", "${b.k}", "${params.n}", "v-${c.0}", "$${z}"])
VALID_TASK = st.fixed_dictionaries(
    {"argv": st.lists(WORD, min_size=1, max_size=3)},
    optional={
        "timeout": st.sampled_from(["1s", "10m", 5]),
        "retries": st.one_of(st.integers(0, 3), st.fixed_dictionaries({"attempts": st.integers(1, 3)})),
        "resources": st.fixed_dictionaries(
            {"cpu": st.sampled_from([0.5, 1]), "memory": st.sampled_from(["1MiB", 0])}
        ),
        "after": st.lists(st.sampled_from(["a", "b", "c"]), max_size=2),
        "when": st.fixed_dictionaries({"task": st.sampled_from(["a", "b", "c"]), "equals": SCALARS}),
        "trigger": st.sampled_from(["all_success", "none_failed"]),
    },
)
TASK = st.one_of(VALID_TASK, RANDOM_TASK)
SPEC = st.fixed_dictionaries(
    {},
    optional={
        "name": VALUES,
        "params": st.one_of(
            st.dictionaries(st.sampled_from(["n", "m"]), VALUES, max_size=2),
            st.just({"n": {"type": "int", "default": 3}}),
        ),
        "objective": VALUES,
        "fail_fast": VALUES,
        "tasks": st.one_of(
            st.dictionaries(st.sampled_from(["a", "b", "c", "params", "x[1]"]), TASK, max_size=4), VALUES
        ),
    },
)


@settings(FUZZ, max_examples=250 * SCALE)
@given(SPEC)
def test_random_spec_shaped_documents(spec: dict) -> None:
    text = yaml.safe_dump(spec, allow_unicode=True)
    out = check(text.encode(), "yaml")
    if isinstance(out, SpecError):  # a well-formed mapping: every problem has a place in it
        for p in out.problems:
            where = re.match(r"fuzz\.yaml:\d+:\d+: (\w+)", str(p))
            assert where and where.group(1) in TOP_KEYS, str(p)


NAMES = st.from_regex(r"[a-z][a-z0-9_-]{0,7}", fullmatch=True).filter(lambda n: not n.startswith("params"))


@st.composite
def dags(draw: st.DrawFn) -> tuple[dict, dict[str, set[str]]]:
    """A valid spec of shell tasks in a random DAG, and each task's expected dependencies:
    references in argv (``${t}``, ``x-${t.k}``, ``${t.0}``), ``after`` and ``when``; literal
    ``$${t}`` and parameter references are not edges."""
    names = draw(st.lists(NAMES, min_size=1, max_size=7, unique=True))
    tasks: dict[str, dict] = {}
    deps: dict[str, set[str]] = {}
    for i, name in enumerate(names):
        earlier = st.sampled_from(names[:i]) if i else st.nothing()
        refs = draw(st.sets(earlier, max_size=2)) if i else set()
        after = draw(st.sets(earlier, max_size=2)) if i else set()
        when = draw(st.one_of(st.none(), earlier)) if i else None
        forms = ["${T}", "x-${T.k}", "${T.0}"]
        words = [draw(st.sampled_from(forms)).replace("T", r) for r in sorted(refs)]
        words += draw(st.lists(st.sampled_from(["plain", "$${" + name + "}", "${params.n}"]), max_size=2))
        task: dict = {"argv": ["echo", *draw(st.permutations(words))]}
        if after:
            task["after"] = sorted(after)
        if when is not None:
            task["when"] = {"task": when, "equals": draw(st.sampled_from([True, 3, "ok"]))}
        if draw(st.booleans()):
            task["resources"] = {"cpu": draw(st.sampled_from([0.5, 1, 2])), "memory": "1MiB"}
        if draw(st.booleans()):
            task["timeout"] = draw(st.sampled_from(["1s", "10m", 5]))
        tasks[name] = task
        deps[name] = refs | after | ({when} if when is not None else set())
    return {"name": "dag", "params": {"n": {"type": "int", "default": 3}}, "tasks": tasks}, deps


@settings(FUZZ, max_examples=100 * SCALE)
@given(dags(), st.sampled_from(["yaml", "json"]))
def test_a_valid_dag_loads_with_its_tasks_and_edges(dag: tuple[dict, dict[str, set[str]]], fmt: str) -> None:
    spec, deps = dag
    text = yaml.safe_dump(spec, sort_keys=False) if fmt == "yaml" else json.dumps(spec, indent=1)
    wf = check(text.encode(), fmt)
    assert isinstance(wf, Workflow), wf
    assert list(wf.tasks) == list(spec["tasks"])  # declaration order kept
    for name, task in spec["tasks"].items():
        t = wf.tasks[name]
        assert t.kind == "shell"
        assert set(t.deps) == deps[name], (name, t.deps, deps[name])
        assert t.after == tuple(task.get("after", ()))
        assert (t.when.task if t.when else None) == task.get("when", {}).get("task")
        assert t.resources.cpu == task.get("resources", {}).get("cpu", t.resources.cpu)
        timeout = {"1s": 1.0, "10m": 600.0, 5: 5.0}.get(task.get("timeout"))
        assert t.timeout == timeout


#: (field, broken value, text the reported line must hold)
BREAKS = [
    ("timeout", "lots", "timeout"),
    ("after", ["nope"], "nope"),
    ("resources", {"cpu": -1}, "cpu"),
    ("colour", "red", "colour"),
    ("retries", {"attempts": 0}, "attempts"),
    ("when", {"task": "nope", "equals": 1}, "nope"),
    ("argv", ["echo", "${nope}"], "nope"),
    ("argv", ["echo", "${unterminated"], "unterminated"),
    ("isolation", "vm", "isolation"),
]


@settings(FUZZ, max_examples=100 * SCALE)
@given(dags(), st.sampled_from(BREAKS), st.data())
def test_a_broken_field_is_named_with_its_task_and_line(
    dag: tuple[dict, dict[str, set[str]]], broken: tuple[str, object, str], data: st.DataObject
) -> None:
    spec, _ = dag
    spec = copy.deepcopy(spec)
    victim = data.draw(st.sampled_from(list(spec["tasks"])))
    field, value, marker = broken
    spec["tasks"][victim][field] = value
    text = yaml.safe_dump(spec, sort_keys=False)
    err = check(text.encode(), "yaml")
    assert isinstance(err, SpecError), text
    lines = text.splitlines()
    named = []
    for p in err.problems:
        m = re.match(r"fuzz\.yaml:(\d+):\d+: (\S+):", str(p))
        if m and m.group(2).startswith(f"tasks.{victim}.{field}"):
            named.append(p)
            assert marker in lines[int(m.group(1)) - 1], (str(p), lines[int(m.group(1)) - 1])
    assert named, (victim, field, [str(p) for p in err.problems])


@settings(FUZZ, max_examples=100 * SCALE)
@given(
    SPEC,
    st.integers(0, 400),
    st.sampled_from(["&a ", "*a", ": ", "- ", "{", "]", "\t", "!!python/name:os.system ", "\x00", "'"]),
)
def test_mutated_yaml_text(spec: dict, where: int, junk: str) -> None:
    text = yaml.safe_dump(spec)
    where = min(where, len(text))
    check((text[:where] + junk + text[where:]).encode(), "yaml")


ARGS = st.lists(
    st.one_of(
        st.sampled_from(
            [
                "validate",
                "graph",
                "schema",
                "--allow-module",
                "demo_tasks",
                "-p",
                "label=x",
                "n=abc",
                "bogus=1",
                "=",
                "--max-bytes",
                "--max-depth",
                "--max-tasks",
                "0",
                "3",
                "--format",
                "dot",
                "mermaid",
                "--cluster",
                str(EXAMPLES / "pipeline.yaml"),
                str(EXAMPLES / "services.yaml"),
                str(EXAMPLES / "minimal.yaml"),
                str(EXAMPLES / "missing.yaml"),
                str(EXAMPLES / "pipeline_flow.py") + ":nope",
                "--help",
            ]
        ),
        st.text(max_size=6),
    ),
    max_size=7,
)


@settings(FUZZ, max_examples=120 * SCALE)
@given(ARGS)
def test_random_command_lines(args: list[str]) -> None:
    out, err = io.StringIO(), io.StringIO()
    code: object = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(["validate", *args] if args[:1] not in (["validate"], ["graph"], ["schema"]) else args)
        except SystemExit as e:
            code = e.code
    assert code in (0, 2, None), (args, code, err.getvalue())
    assert "Traceback" not in err.getvalue()
    if code == 2:
        assert err.getvalue().startswith("error: ")
