"""The Python front end: decorators record TaskSpecs while a flow is built, and only then."""

from __future__ import annotations

from typing import Annotated

import pytest

import podium
from podium.errors import SpecError, UsageError
from podium.model import REQUIRED, Const, Param, Ref, Resources, RetryPolicy, Template, When
from podium.registry import REGISTRY


@podium.task
def double(x: int) -> int:
    return 2 * x


@podium.task(cpu=2, memory="1GiB", gpu=0, resources={"tpu": 1}, retries=3, timeout="10m", cache=True)
def heavy(data: object, k: int = 1) -> object:
    return data


@podium.task
def pick(items: list, item: str, **extra: object) -> str:
    return item


def test_decorated_function_is_plain_outside_a_flow() -> None:
    assert double(21) == 42
    assert heavy([1], k=2) == [1]


def test_task_registers_module_qualname_and_exposes_the_function() -> None:
    name = f"{__name__}:double"
    assert REGISTRY.resolve(name)(4) == 8
    assert double.__podium_fn__(5) == 10  # type: ignore[attr-defined]
    assert double.__name__ == "double"


def test_calls_record_specs_with_refs_params_and_consts() -> None:
    @podium.flow
    def f(n: int = 3) -> None:
        a = double(n)
        heavy(a, k=5)

    wf = f.build()
    assert wf.name == "f"
    assert wf.params["n"] == podium.ParamSpec("n", "int", 3)
    d, h = wf.tasks["double"], wf.tasks["heavy"]
    assert d.call == f"{__name__}:double" and dict(d.args) == {"x": Param("n")}
    assert dict(h.args) == {"data": Ref("double"), "k": Const(5)}
    assert h.deps == ("double",)
    assert h.resources == Resources(cpu=2, memory=1024**3, gpu=0, custom=(("tpu", 1.0),))
    assert h.retry == RetryPolicy(attempts=4)
    assert h.timeout == 600.0 and h.cache is True


def test_repeated_calls_get_numbered_names_and_options_override() -> None:
    @podium.flow
    def f() -> None:
        a = double(1)
        double(a)
        double(2)
        double.options(name="last", cpu=4, after=[a], trigger="none_failed", timeout="5s")(3)

    wf = f.build()
    assert list(wf.tasks) == ["double", "double_2", "double_3", "last"]
    last = wf.tasks["last"]
    assert last.resources.cpu == 4 and last.after == ("double",) and last.trigger == "none_failed"
    assert last.timeout == 5.0
    # the override does not leak into the task itself
    assert wf.tasks["double"].resources.cpu == 1


def test_handle_indexing_gives_paths_and_each_maps() -> None:
    @podium.flow
    def f() -> None:
        h = heavy({"m": ["a"]})
        pick(items=h["m"], item=podium.each(h["m"][0]), extra=h[1])

    t = f.build().tasks["pick"]
    assert t.map_over == "item"
    assert dict(t.args) == {
        "items": Ref("heavy", ("m",)),
        "item": Ref("heavy", ("m", 0)),
        "extra": Ref("heavy", (1,)),
    }


def test_structures_with_handles_and_plain_values() -> None:
    @podium.flow
    def f() -> None:
        h = double(1)
        heavy({"a": [h, 1], "b": "x"})
        heavy.options(name="plain")((1, 2))

    wf = f.build()
    assert wf.tasks["heavy"].args["data"] == {"a": (Ref("double"), 1), "b": "x"}
    assert wf.tasks["plain"].args["data"] == Const([1, 2])


def test_when_sets_branch_condition_with_path() -> None:
    @podium.flow
    def f() -> None:
        r = heavy(1)
        with podium.when(r["label"], equals="good"):
            double(1)
        double(2)

    wf = f.build()
    assert wf.tasks["double"].when == When("heavy", "good", ("label",))
    assert wf.tasks["double_2"].when is None


def test_template_builds_parts() -> None:
    @podium.flow
    def f(tag: str) -> None:
        h = double(1)
        heavy(podium.template("run-{}-{}.pkl", tag, h["x"]))
        heavy(podium.template("n={}", 3))

    wf = f.build()
    assert wf.tasks["heavy"].args["data"] == Template(
        ("run-", Param("tag"), "-", Ref("double", ("x",)), ".pkl")
    )
    assert wf.tasks["heavy_2"].args["data"] == Const("n=3")


def test_http_and_shell_tasks() -> None:
    @podium.flow
    def f(city: str = "Paris") -> None:
        r = podium.http("http://127.0.0.1:1/x", method="post", json={"c": city}, name="fetch", retries=1)
        podium.shell(["echo", r["v"], 3], env={"A": city, "B": 1}, cwd="/tmp", after=r)

    wf = f.build()
    fetch, sh = wf.tasks["fetch"], wf.tasks["shell"]
    assert fetch.kind == "http" and dict(fetch.config) == {
        "url": "http://127.0.0.1:1/x",
        "method": "POST",
        "json": {"c": Param("city")},
    }
    assert fetch.retry.attempts == 2
    assert sh.config["argv"] == ("echo", Ref("fetch", ("v",)), "3")
    assert dict(sh.config["env"]) == {"A": Param("city"), "B": "1"} and sh.config["cwd"] == "/tmp"
    assert sh.after == ("fetch",)


def test_flow_params_from_annotations_defaults_and_annotated() -> None:
    @podium.flow(name="p", alpha=2, beta=0.5, deadline="1h", fail_fast=False, description="d")
    def f(
        a: str,
        b: int = 1,
        c: float = 0.5,
        d: bool = True,
        e: list[str] | None = None,
        g: dict = {},  # noqa: B006
        h=(1, 2),
        i: Annotated[int, "how many"] = 4,
    ) -> None:
        double(b)

    wf = f.build()
    types = {n: (p.type, p.default) for n, p in wf.params.items()}
    assert types == {
        "a": ("str", REQUIRED),
        "b": ("int", 1),
        "c": ("float", 0.5),
        "d": ("bool", True),
        "e": ("any", None),
        "g": ("dict", {}),
        "h": ("list", [1, 2]),
        "i": ("int", 4),
    }
    assert wf.params["i"].description == "how many"
    assert wf.objective == podium.Objective(alpha=2.0, beta=0.5, deadline=3600.0)
    assert wf.fail_fast is False and wf.description == "d" and wf.name == "p"
    assert f.workflow is f.workflow


def test_problems_are_collected_into_one_spec_error() -> None:
    @podium.flow
    def f() -> None:
        double(1, 2)  # too many arguments
        pick(items=podium.each([1]), item=podium.each([2]))
        double.options(timeout="10x", memory="lots", retries=-1)(1)
        double.options(after=["ghost"])(2)

    with pytest.raises(SpecError) as e:
        f.build()
    text = str(e.value)
    assert "tasks.double: bad arguments for double" in text
    assert "at most one podium.each" in text
    assert "tasks.double_2.timeout: malformed duration '10x'" in text
    assert "tasks.double_2.resources.memory: malformed size 'lots'" in text
    assert "tasks.double_2.retries" in text
    assert "tasks.double_3.after: unknown task 'ghost'" in text
    assert len(e.value.problems) >= 6


def test_cycle_through_after_is_named() -> None:
    @podium.flow
    def f() -> None:
        double.options(name="a", after=["b"])(1)
        double.options(name="b", after=["a"])(1)

    with pytest.raises(SpecError, match=r"dependency cycle: a -> b -> a"):
        f.build()


def test_misusing_a_handle_is_reported_with_the_user_line() -> None:
    @podium.flow
    def branching() -> None:
        h = double(1)
        if h:
            double(2)

    @podium.flow
    def iterating() -> None:
        for _ in double(1):
            pass

    with pytest.raises(SpecError, match=r"podium.when.*test_load_python.py:\d+"):
        branching.build()
    with pytest.raises(SpecError, match=r"podium.each"):
        iterating.build()


@pytest.mark.parametrize(
    "compare", [lambda h: h == 3, lambda h: h > 0.9, lambda h: h != "x", lambda h: h >= 1]
)
def test_comparing_a_handle_points_to_podium_when(compare: object) -> None:
    @podium.flow
    def comparing() -> None:
        if compare(double(1)):  # type: ignore[operator]
            double(2)

    with pytest.raises(
        SpecError, match=r"cannot be compared.*podium\.when\(handle, equals=.*test_load_python.py:\d+"
    ):
        comparing.build()


def test_handles_stay_usable_as_keys() -> None:
    @podium.flow
    def keyed() -> None:
        h = double(1)
        seen = {h: 1}
        assert seen[h] == 1 and h in [h]

    keyed.build()


def test_nested_when_and_duplicate_names_are_errors() -> None:
    @podium.flow
    def f() -> None:
        a = double(1)
        with podium.when(a, equals=1), podium.when(a, equals=2):
            double(2)

    @podium.flow
    def g() -> None:
        double.options(name="x")(1)
        double.options(name="x")(2)

    with pytest.raises(SpecError, match="cannot be nested"):
        f.build()
    with pytest.raises(SpecError, match=r"tasks\.x: duplicate task name"):
        g.build()


def test_bad_decorator_settings_fail_at_decoration() -> None:
    with pytest.raises(SpecError, match="malformed duration"):

        @podium.task(timeout="soon")
        def t1() -> None: ...

    with pytest.raises(TypeError, match="did you mean 'timeout'"):

        @podium.task(timout="1s")
        def t2() -> None: ...

    with pytest.raises(TypeError, match="unknown setting"):
        double.options(colour="red")


def test_flow_only_helpers_outside_a_build_are_usage_errors() -> None:
    with pytest.raises(UsageError):
        podium.http("http://x")
    with pytest.raises(UsageError), podium.when(None, equals=1):  # type: ignore[arg-type]
        pass


def test_flow_call_runs_the_function_and_composes_inside_builds() -> None:
    @podium.flow
    def inner(x: int = 1) -> object:
        return double(x)

    @podium.flow
    def outer() -> None:
        heavy(inner(5))

    assert inner.fn is not None
    wf = outer.build()
    assert wf.tasks["heavy"].args["data"] == Ref("double")
    assert wf.tasks["double"].args["x"] == Const(5)


def test_import_podium_is_light() -> None:
    import subprocess
    import sys

    heavy = ("yaml", "ortools", "psycopg", "sklearn")
    code = f"import podium, sys; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@podium.task(name="fit")
def named_fit(x: int) -> int:
    return x


def test_decorator_name_is_numbered_and_options_name_is_exact() -> None:
    @podium.flow
    def f() -> None:
        named_fit(1)
        named_fit(2)
        named_fit.options(name="final")(3)

    assert list(f.build().tasks) == ["fit", "fit_2", "final"]


def test_f_strings_on_handles_are_reported() -> None:
    @podium.flow
    def f() -> None:
        h = double(1)
        heavy(f"model-{h}.pkl")

    with pytest.raises(SpecError, match=r"use podium\.template"):
        f.build()


def test_api_misuse_is_a_podium_error_with_exit_code_2() -> None:
    from podium.errors import PodiumError

    for bad in (lambda: double.options(colour="red"), lambda: podium.template("{name}", 1)):
        with pytest.raises(PodiumError) as e:
            bad()
        assert e.value.exit_code == 2


def test_one_has_expr_for_both_front_ends() -> None:
    """Const counts as an expression (so a Const inside a structure is resolved, never handed
    to the task as a Const object), and so does a Secret (never frozen into a Const)."""
    from podium.load.exprs import has_expr
    from podium.runtime.inputs import resolve
    from podium.secrets import Secret

    assert has_expr(Const(1)) and has_expr({"a": [Const(1)]}) and has_expr(("x", Ref("t")))
    assert has_expr({"k": Secret("s", env="S")}) and not has_expr({"a": [1, "x", None]})

    @podium.flow
    def f():
        double(x={"k": Const(5), "t": [podium.secret("PODIUM_TEST_UNSET")]})

    arg = f.build().tasks["double"].args["x"]
    assert not isinstance(arg, Const)  # an expression structure, resolved at run time
    with pytest.raises(Exception, match="PODIUM_TEST_UNSET"):
        resolve(arg, {}, {})
    assert resolve(f.build().tasks["double"].args["x"]["k"], {}, {}) == 5
