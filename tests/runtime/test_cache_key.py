"""The result-cache key depends on what determines a task's result (its code, inputs, parameters,
a container's image and command) and on nothing else: not on resources, retries, timeouts or
placement, including when those are set in ``@podium.task(...)`` above the function."""

from __future__ import annotations

import importlib.util
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from podium.model import Const, Param, Resources, RetryPolicy, TaskSpec
from podium.registry import Registry
from podium.runtime import cache
from podium.runtime.cache import cache_key

BODY = '''
def scale(x):
    """Ten times x."""
    return x * 10
'''


@pytest.fixture(autouse=True)
def fresh_fingerprints(monkeypatch: pytest.MonkeyPatch) -> None:
    """The process's remembered fingerprints are left alone (``key_of`` clears its own)."""
    monkeypatch.setattr(cache, "_code_cache", {})


@pytest.fixture
def modules(tmp_path: Path) -> Iterator[Callable[[str], Any]]:
    made: list[str] = []

    def load(text: str) -> Any:
        name = f"cachekey_mod_{len(made)}"
        path = tmp_path / f"{name}.py"
        path.write_text(textwrap.dedent(text))
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        made.append(name)
        spec.loader.exec_module(mod)
        return mod

    yield load
    for name in made:
        sys.modules.pop(name, None)


def key_of(mod: Any, spec: TaskSpec | None = None, x: int = 4) -> str | None:
    """The key of ``mod.scale`` registered under one fixed name, as a later run of the same
    project would see it after the file was edited (in a new process: nothing remembered)."""
    cache._code_cache.clear()
    reg = Registry()
    reg.register("proj:scale", getattr(mod.scale, "__podium_fn__", mod.scale))
    spec = spec or TaskSpec("scale", call="proj:scale", args={"x": Param("x")}, cache=True)
    return cache_key(spec, {"x": x}, {}, reg)


def test_task_settings_in_the_decorator_leave_the_key_alone(modules: Callable[[str], Any]) -> None:
    plain = key_of(modules("import podium\n@podium.task(cache=True)" + BODY))
    assert plain is not None
    for deco in (
        "import podium\n@podium.task(cache=True, cpu=4, memory='2GiB')",
        "import podium\n@podium.task(cache=True, retries=5, retry_delay='3s', timeout='10m')",
        "import podium\n@podium.task(\n    cache=True,\n    gpu=1,\n    isolation='process',\n)",
        "from podium import task\n@task(cache=True, cpu=2)",
        "import podium as pd\n@pd.task(cache=True, expected_duration=30)",
    ):
        assert key_of(modules(deco + BODY)) == plain, deco


def test_the_code_still_changes_the_key(modules: Callable[[str], Any]) -> None:
    plain = key_of(modules("import podium\n@podium.task(cache=True)" + BODY))
    edited = key_of(modules("import podium\n@podium.task(cache=True)" + BODY.replace("x * 10", "x * 11")))
    assert plain is not None and edited is not None and edited != plain


def test_another_decorator_is_part_of_the_code(modules: Callable[[str], Any]) -> None:
    """A decorator that is not podium's may change what the function computes: it stays in the
    key, so changing it is a miss rather than a wrong hit."""
    deco = "import functools, podium\ndef twice(f):\n    return f\n"
    once = key_of(modules(deco + "@podium.task(cache=True)\n@twice" + BODY))
    other = key_of(modules(deco + "@podium.task(cache=True)\n@functools.lru_cache(2)" + BODY))
    bare = key_of(modules(deco + "@podium.task(cache=True)" + BODY))
    assert len({once, other, bare}) == 3


def test_resources_retries_and_timeout_of_the_spec_leave_the_key_alone(modules: Callable[[str], Any]) -> None:
    mod = modules(BODY)
    base = TaskSpec("scale", call="proj:scale", args={"x": Param("x")}, cache=True)
    same = TaskSpec(
        "scale",
        call="proj:scale",
        args={"x": Param("x")},
        cache=True,
        resources=Resources(cpu=4, memory=1 << 30),
        retry=RetryPolicy(attempts=4),
        timeout=60.0,
        isolation="process",
        expected_duration=12.0,
    )
    assert key_of(mod, base) == key_of(mod, same) is not None
    assert key_of(mod, base, x=4) != key_of(mod, base, x=5)


def test_a_containers_image_and_command_are_in_the_key() -> None:
    reg = Registry()

    def key(cfg: dict[str, Any], **fields: Any) -> str | None:
        return cache_key(TaskSpec("c", kind="container", config=cfg, cache=True, **fields), {}, cfg, reg)

    cfg = {"image": "alpine:3.20", "argv": ["echo", "hi"]}
    base = key(cfg)
    assert base is not None
    assert key(cfg, resources=Resources(cpu=2), retry=RetryPolicy(attempts=3), timeout=5.0) == base
    assert key({**cfg, "image": "alpine:3.21"}) != base
    assert key({**cfg, "argv": ["echo", "bye"]}) != base


def test_an_unresolvable_function_is_not_cached() -> None:
    spec = TaskSpec("scale", call="nowhere_module:scale", args={"x": Const(1)}, cache=True)
    assert cache_key(spec, {"x": 1}, {}, Registry()) is None


def test_a_services_readiness_probe_is_not_in_the_key() -> None:
    reg = Registry()
    cfg = {"argv": ["serve"], "ready": {"path": "/health", "timeout": 30.0}}

    def key(c: dict[str, Any]) -> str | None:
        return cache_key(TaskSpec("s", kind="service", config=c, cache=True), {}, c, reg)

    assert key(cfg) == key({**cfg, "ready": {"path": "/health", "timeout": 90.0}}) is not None
    assert key(cfg) != key({**cfg, "argv": ["serve", "--fast"]})
