"""Service tasks in both front ends, and what is refused before anything starts."""

from __future__ import annotations

import pytest

import podium
from podium.errors import InvalidValueError, SpecError
from podium.load.config import Config
from podium.load.spec import load_spec
from podium.model import Workflow
from podium.policy import Policy
from podium.registry import Registry
from podium.runtime.services import services_for
from podium.runtime.state import RunState
from podium.runtime.view import RunView

GRANTS = Config(policy=Policy(programs=("python3",), hosts=("127.0.0.1",)))
YAML = """name: svc
tasks:
  model:
    kind: service
    argv: [python3, serve.py, "${params.size}"]
    ready: {path: /health, timeout: 45s}
  ask:
    url: "${model.url}/answer"
params:
  size: {type: int, default: 3}
"""


def load(text: str) -> Workflow:
    return load_spec(text.encode(), "s.yaml", registry=Registry(), config=GRANTS)


def test_a_yaml_service_and_its_user() -> None:
    wf = load(YAML)
    model = wf.tasks["model"]
    assert model.kind == "service"
    assert model.config["ready"] == {"path": "/health", "timeout": 45.0}
    assert wf.tasks["ask"].deps == ("model",)


def test_the_python_twin_builds_the_same_workflow() -> None:
    @podium.flow(name="svc")
    def svc(size: int = 3) -> None:
        model = podium.service(
            ["python3", "serve.py", size], ready="/health", ready_timeout="45s", name="model"
        )
        podium.http(podium.template("{}/answer", model["url"]), name="ask")

    wf = svc.workflow
    assert wf.tasks["model"].config == load(YAML).tasks["model"].config
    assert wf.tasks["ask"].deps == ("model",)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("ready: {path: /health, timeout: 45s}", None),
        ("ready: {path: health}", "ready.path: expected a URL path starting with '/'"),
        ("ready: {path: /h, every: 1s}", "unknown key 'every' in ready"),
        ("ready: {path: /h, timeout: soon}", "ready.timeout"),
        ("ready: /health", "expected a mapping like {path: /health}"),
    ],
)
def test_bad_ready_settings_are_reported_with_their_position(change: str, message: str | None) -> None:
    text = YAML.replace("ready: {path: /health, timeout: 45s}", change)
    if message is None:
        load(text)
        return
    with pytest.raises(SpecError) as e:
        load(text)
    assert message in str(e.value) and "s.yaml:" in str(e.value)


def test_a_service_program_must_be_granted() -> None:
    with pytest.raises(SpecError, match="program 'python3' is not allowed"):
        load_spec(YAML.encode(), "s.yaml", registry=Registry(), config=Config())


def test_an_executor_that_cannot_keep_services_is_refused() -> None:
    class Remote:
        name = "ray"

    wf = load(YAML)
    state = RunState.__new__(RunState)
    state.specs = dict(wf.tasks)
    with pytest.raises(InvalidValueError, match="the ray executor cannot keep them"):
        services_for(state, Remote())  # type: ignore[arg-type]
    assert not services_for(_plain(), Remote()).names  # type: ignore[arg-type]  (nothing to keep)


def _plain() -> RunState:
    state = RunState.__new__(RunState)
    state.specs = {"a": load("tasks: {a: {url: 'http://127.0.0.1/'}}").tasks["a"]}
    state.view = RunView()
    return state
