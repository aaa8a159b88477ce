"""Fuzzing the loader and `podium validate`: any input gives a Workflow or a clean PodiumError.

Together these run well over 500 examples in the normal suite (more with PODIUM_FUZZ_SCALE).
"""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from podium.cli import main
from podium.errors import PodiumError
from podium.load import Limits, yamlsafe
from podium.load.schema import ALL_TASK_KEYS, RETRY_KEYS, TOP_KEYS
from podium.load.spec import load_spec
from podium.model import Workflow
from podium.registry import Registry

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "specs"
#: Multiply every example count, e.g. ``PODIUM_FUZZ_SCALE=20 pytest tests/load/test_load_fuzz.py``.
SCALE = max(1, int(os.environ.get("PODIUM_FUZZ_SCALE", "1")))
FUZZ = settings(deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
SMALL = Limits(max_bytes=20_000, max_tasks=50, max_depth=12)


def check(data: bytes, fmt: str) -> None:
    try:
        wf = load_spec(data, f"fuzz.{fmt}", fmt, allow_modules=(), registry=Registry(), limits=SMALL)
    except PodiumError as e:
        assert str(e)  # a message, never an empty error
    else:
        assert isinstance(wf, Workflow)


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
    check(text.encode(), "yaml")


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
