"""The YAML/JSON front end: expressions, settings, equality with the Python API, bad input."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest

import podium
from podium.errors import SpecError
from podium.load import Config, Limits, load_workflow
from podium.load.spec import load_spec, parse_string
from podium.model import Const, Param, Ref, Resources, RetryPolicy, Template, When
from podium.policy import Policy
from podium.registry import Registry

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "specs"
MOD = __name__


@podium.task
def step(x: object = None, y: object = None) -> object:
    return x


#: Tests not about programs let a spec run any (shell tasks here name placeholders like ``x``).
ANY_PROGRAM = Config(policy=Policy(programs=("*",)))


def load(text: str, fmt: str = "yaml", **kw: object) -> podium.Workflow:
    kw.setdefault("allow_modules", [MOD])
    kw.setdefault("config", ANY_PROGRAM)
    return load_spec(textwrap.dedent(text).encode(), "spec.yaml" if fmt == "yaml" else "spec.json", fmt, **kw)  # type: ignore[arg-type]


def problems(text: str, fmt: str = "yaml", **kw: object) -> str:
    with pytest.raises(SpecError) as e:
        load(text, fmt, **kw)
    return str(e.value)


# -- expressions ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain", "plain"),
        ("${load}", Ref("load")),
        ("${load.key.0.x}", Ref("load", ("key", 0, "x"))),
        ("${params.n}", Param("n")),
        ("a-${params.n}-${t.k}!", Template(("a-", Param("n"), "-", Ref("t", ("k",)), "!"))),
        ("$${not}", "${not}"),
        ("cost $5 and $${x} ${t}", Template(("cost $5 and ${x} ", Ref("t")))),
        ("", ""),
    ],
)
def test_parse_string(text: str, expected: object) -> None:
    assert parse_string(text) == expected


@pytest.mark.parametrize("bad", ["${", "x ${a", "${}", "${a..b}", "${params}", "${params.a.b}", "${ a}"])
def test_parse_string_rejects_malformed(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_string(bad)


# -- equality with the Python API ---------------------------------------------------------------
def test_example_yaml_and_python_flow_build_equal_workflows() -> None:
    spec = load_workflow(EXAMPLES / "pipeline.yaml", cwd=EXAMPLES)  # its podium.toml grants the rest
    flow = load_workflow(EXAMPLES / "pipeline_flow.py")
    assert spec.workflow == flow.workflow
    wf = spec.workflow
    # and the pipeline really is non-trivial
    assert wf.tasks["train"].map_over == "model"
    assert wf.tasks["publish"].when == When("route", "good", ("label",))
    assert wf.tasks["notify"].kind == "http" and wf.tasks["archive"].kind == "shell"
    assert wf.tasks["archive"].after == ("publish", "notify")
    assert wf.tasks["train"].retry == RetryPolicy(3, 2.0, 3.0, 60.0, 0.0, ("user", "timeout"))
    assert wf.tasks["features"].timeout == 60.0 and wf.tasks["load"].expected_duration == 2.0
    assert wf.params["label"].default is podium.REQUIRED and wf.params["n"].default == 100
    assert wf.tasks["notify"].config["json"]["literal"] == "${not_an_expression}"


def test_json_spec_with_custom_resources_equals_python_flow(tmp_path: Path) -> None:
    spec = {
        "name": "custom",
        "objective": {"budget": 5},
        "params": {"models": {"type": "list", "default": ["a", "b"]}},
        "tasks": {
            "prep": {
                "call": f"{MOD}:step",
                "args": {"x": {"k": [1, 2]}},
                "resources": {"cpu": 0.5, "memory": "1.5GiB", "gpu": 0, "tpu": 2, "licence": 1},
                "retries": {"attempts": 2, "on": ["oom"]},
            },
            "fit": {
                "call": f"{MOD}:step",
                "args": {"x": "${params.models}", "y": ["${prep.k}", 3, "lit"]},
                "map": "x",
                "isolation": "process",
                "after": "prep",
            },
        },
    }
    (tmp_path / "custom.json").write_text(json.dumps(spec))

    @podium.flow(name="custom", alpha=1.0, budget=5)
    def custom(models: list = ["a", "b"]) -> None:  # noqa: B006
        p = step.options(
            name="prep",
            cpu=0.5,
            memory="1.5GiB",
            resources={"tpu": 2, "licence": 1},
            retries=1,
            retry_on=["oom"],
        )(x={"k": [1, 2]})
        step.options(name="fit", isolation="process", after=["prep"])(
            x=podium.each(models), y=[p["k"], 3, "lit"]
        )

    loaded = load_workflow(tmp_path / "custom.json", allow_modules=[MOD])
    assert loaded.workflow == custom.build()
    assert loaded.workflow.tasks["prep"].resources == Resources(
        0.5, int(1.5 * 1024**3), 0.0, (("licence", 1.0), ("tpu", 2.0))
    )
    assert loaded.workflow.tasks["fit"].args["y"] == (Ref("prep", ("k",)), 3, "lit")
    assert loaded.workflow.tasks["prep"].args["x"] == Const({"k": [1, 2]})
    assert loaded.source["kind"] == "json"


# -- settings -----------------------------------------------------------------------------------
def test_defaults_shorthands_and_yaml_quirks() -> None:
    wf = load(
        f"""
        params:
          label: str
          n: {{default: 3}}
        tasks:
          a:
            call: {MOD}:step
            args: {{x: yes, y: "${{params.label}}"}}
            retries: {{on: timeout}}
            when: {{task: b, equals: on}}
          b:
            argv: [echo, 1.5]
        """
    )
    assert wf.name == "spec"  # defaults to the file's stem
    assert wf.params["label"] == podium.ParamSpec("label", "str")
    assert wf.params["n"] == podium.ParamSpec("n", "int", 3)
    a = wf.tasks["a"]
    assert a.args["x"] == Const(True)  # YAML 1.1 booleans in values, as yaml.safe_load reads them
    assert a.retry.retry_on == ("timeout",)  # the key 'on' stays a string key
    assert a.when == When("b", True)
    assert wf.tasks["b"].kind == "shell" and wf.tasks["b"].config["argv"] == ("echo", "1.5")


def test_objective_deadline_and_budget_are_read() -> None:
    wf = load("objective: {deadline: 1h30m, beta: 2}\ntasks: {a: {argv: [x]}}")
    assert wf.objective.deadline == 5400.0
    assert "not both" in problems("objective: {deadline: 1m, budget: 2}\ntasks: {a: {argv: [x]}}")


# -- bad input: every problem at once, with positions -------------------------------------------
def test_unknown_key_has_position_and_suggestion() -> None:
    text = problems("tasks:\n  t:\n    argv: [x]\n    timout: 5s\n")
    assert "spec.yaml:4:5: tasks.t.timout: unknown key 'timout' in task (did you mean 'timeout'?)" in text


def test_malformed_duration_and_size_have_positions() -> None:
    text = problems("tasks:\n  t:\n    argv: [x]\n    timeout: 10x\n    resources: {memory: 12 potatoes}\n")
    assert "spec.yaml:4:14: tasks.t.timeout: malformed duration '10x': use e.g." in text
    assert "spec.yaml:5:25: tasks.t.resources.memory: malformed size '12 potatoes'" in text


def test_unknown_reference_and_undeclared_param() -> None:
    text = problems("tasks:\n  load: {argv: [x]}\n  t: {argv: [x, '${lod.x}', '${params.m}']}\n")
    assert "spec.yaml:3:17: tasks.t.argv[1]: refers to unknown task 'lod' (did you mean 'load'?)" in text
    assert "tasks.t.argv[2]: uses undeclared parameter 'm'" in text
    assert "2 problems" in text


def test_cycle_is_named() -> None:
    text = problems("tasks:\n  a: {argv: ['${b}']}\n  b: {argv: [x], after: c}\n  c: {argv: ['${a}']}\n")
    assert "dependency cycle: a -> b -> c -> a" in text


def test_duplicate_task_names_are_detected() -> None:
    text = problems("tasks:\n  t: {argv: [x]}\n  u: {argv: [y]}\n  t: {argv: [z]}\n")
    assert "spec.yaml:4:3: tasks.t: duplicate key 't' (first at line 2)" in text


def test_disallowed_module_is_never_imported() -> None:
    before = set(sys.modules)
    text = problems("tasks:\n  t: {call: 'antigravity:fly'}\n", allow_modules=[])
    assert "spec.yaml:2:13: tasks.t.call: module 'antigravity' is not allowed" in text
    assert "antigravity" not in set(sys.modules) - before


def test_unknown_function_in_allowed_module_names_the_task() -> None:
    text = problems(f"tasks:\n  t: {{call: '{MOD}:nope'}}\n", registry=Registry())
    assert "tasks.t.call" in text and "'nope' is not defined in module" in text


def test_a_misspelt_function_gets_a_did_you_mean() -> None:
    text = problems("tasks:\n  t: {call: 'json:dump_s'}\n", allow_modules=["json"])
    assert "tasks.t.call: 'dump_s' is not defined in module 'json'" in text
    assert text.endswith("; did you mean 'dumps' or 'dump'?")


def test_many_problems_listed_together() -> None:
    text = problems(
        """
        name: ""
        tasks:
          a: {kind: htp}
          b: {call: "x"}
          c: {argv: [], retries: -1, isolation: fork, cache: maybe}
          d: {url: "${a}", method: 5, when: {task: a}}
          e: {call: "MOD:step", map: z}
        extra: 1
        """.replace("MOD", MOD)
    )
    for fragment in (
        "name: expected a non-empty string",
        "unknown kind 'htp'",
        "expected 'module:function', got 'x'",
        "argv must not be empty",
        "retries must be >= 0",
        "tasks.c.isolation: use one of thread, process",
        "tasks.c.cache: expected true or false",
        "tasks.d.method",
        "when needs 'equals:'",
        "map names 'z'",
        "unknown key 'extra' in the spec",
    ):
        assert fragment in text, fragment


def test_wrong_shapes_are_reported_not_crashed() -> None:
    assert "a spec must be a mapping" in problems("- a\n- b\n")
    assert "the spec is empty" in problems("")
    assert "workflow has no tasks" in problems("name: x\n")
    assert "a task must be a mapping" in problems("tasks: {a: 3}\n")
    assert "expected a mapping of task name" in problems("tasks: [a]\n")
    assert "unknown type 'integer'" in problems("params: {n: integer}\ntasks: {a: {argv: [x]}}\n")
    assert "params.n.default: expected int" in problems(
        "params: {n: {type: int, default: x}}\ntasks: {a: {argv: [x]}}"
    )


def test_task_limit() -> None:
    text = problems("tasks: {a: {argv: [x]}, b: {argv: [x]}, c: {argv: [x]}}", limits=Limits(max_tasks=2))
    assert "3 tasks, over the limit of 2" in text


def test_module_next_to_the_spec_is_found_when_its_folder_is_given(tmp_path: Path) -> None:
    (tmp_path / "sidecar_tasks_mod.py").write_text("def go(x=1):\n    return x\n")
    (tmp_path / "s.yaml").write_text("tasks:\n  t: {call: 'sidecar_tasks_mod:go', args: {x: 2}}\n")
    with pytest.raises(SpecError, match="was not found"):
        load_workflow(tmp_path / "s.yaml", allow_modules=["sidecar_tasks_mod"], registry=Registry())
    reg = Registry()
    loaded = load_workflow(
        tmp_path / "s.yaml", allow_modules=["sidecar_tasks_mod"], module_paths=[tmp_path], registry=reg
    )
    assert reg.resolve("sidecar_tasks_mod:go")(x=5) == 5
    assert loaded.workflow.tasks["t"].call == "sidecar_tasks_mod:go"
    with pytest.raises(SpecError, match="not allowed"):
        load_workflow(tmp_path / "s.yaml", registry=Registry())
