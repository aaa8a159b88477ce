"""Every error Podium raises on purpose is a ``PodiumError``; the ones that replaced built-in
errors still are those built-ins, so code that caught them keeps working."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from podium.errors import CycleError, InvalidValueError, PodiumError, UnknownNameError
from podium.model import Node, Resources
from podium.model.cluster import Cluster
from podium.model.graph import topological_order
from podium.model.resources import parse_duration, parse_size
from podium.model.states import IllegalTransition, next_task_state
from podium.model.task import Ref
from podium.model.workflow import ParamSpec
from podium.runtime.inputs import InputError, resolve


@pytest.mark.parametrize(
    "bad",
    [
        lambda: parse_size("12 parsecs"),
        lambda: parse_duration("soon"),
        lambda: Resources(cpu=-1),
        lambda: Resources.from_dict({"tpu": "many"}),
        lambda: ParamSpec("n", "int").check("seven"),
    ],
)
def test_bad_values_are_podium_errors_and_value_errors(bad) -> None:
    with pytest.raises(InvalidValueError) as exc:
        bad()
    assert isinstance(exc.value, PodiumError) and isinstance(exc.value, ValueError)
    assert exc.value.exit_code == 2


def test_a_cycle_names_its_nodes() -> None:
    with pytest.raises(CycleError) as exc:
        topological_order({"a": ["b"], "b": ["a"]})
    assert isinstance(exc.value, ValueError)
    assert exc.value.cycle[0] == exc.value.cycle[-1] and set(exc.value.cycle) == {"a", "b"}
    assert str(exc.value).startswith("cycle: ")


def test_an_unknown_node_is_not_found_and_a_key_error_with_a_plain_message() -> None:
    cluster = Cluster((Node("a", Resources(cpu=1)),))
    with pytest.raises(KeyError) as exc:
        cluster.node("b")
    assert isinstance(exc.value, UnknownNameError) and exc.value.exit_code == 2
    assert str(exc.value) == "no node named 'b' (nodes: a)"


def test_an_illegal_transition_is_a_podium_error() -> None:
    with pytest.raises(IllegalTransition) as exc:
        next_task_state("succeeded", "TaskStarted")
    assert isinstance(exc.value, PodiumError) and isinstance(exc.value, ValueError)


def test_an_unresolvable_input_is_a_podium_error() -> None:
    with pytest.raises(InputError) as exc:
        resolve(Ref("up", ("missing",)), {"up": {}}, {})
    assert isinstance(exc.value, PodiumError)
    assert "up['missing']" in str(exc.value)


def test_the_users_frame_is_the_innermost_outside_podium_and_libraries(tmp_path: Path) -> None:
    import json

    from podium.errors import ErrorRecord, user_frame

    user = tmp_path / "userflow.py"
    user.write_text(
        "import json\n\ndef pick(d):\n    return d['acuracy']\n\ndef parse():\n    return json.loads('{')\n"
    )
    ns: dict[str, Any] = {}
    exec(compile(user.read_text(), str(user), "exec"), ns)
    with pytest.raises(KeyError) as key:
        ns["pick"]({})
    rec = ErrorRecord.from_exception(key.value)
    assert rec.frame == f"{user}:4 in pick" and rec.type == "KeyError"
    assert ErrorRecord.from_dict(rec.to_dict()).frame == rec.frame
    with pytest.raises(json.JSONDecodeError) as bad:  # raised inside the standard library
        ns["parse"]()
    assert user_frame(bad.value) == f"{user}:7 in parse"
    assert user_frame(ValueError("never raised")) == ""
