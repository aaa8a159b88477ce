"""Every `ray start` command line the docs and docstrings show parses with the pinned Ray's own
CLI and label syntax (Ray takes `--labels key=value[,key=value]`; its JSON form is refused by
its label parser)."""

from __future__ import annotations

import re
import shlex

import pytest
from deploy_files import REPO, ray_start_params

_SOURCES = [*sorted((REPO / "docs").glob("*.md")), REPO / "README.md", *sorted((REPO / "src").rglob("*.py"))]
# a `ray start ...` inside backticks (one or two), possibly wrapped over lines of a docstring
_COMMAND = re.compile(r"`+(ray start [^`]*)`+")


def _commands() -> list[tuple[str, list[str]]]:
    found = []
    for path in _SOURCES:
        for m in _COMMAND.finditer(path.read_text()):
            text = " ".join(m.group(1).split())
            args = shlex.split(text)[2:]
            if any(a.startswith("--labels") for a in args):
                found.append((f"{path.relative_to(REPO)}: {text}", args))
    return found


def test_documented_ray_start_labels_parse_with_ray() -> None:
    commands = _commands()
    assert any("docs/ray.md" in where for where, _ in commands)  # the naming rule's example
    parsed = ray_start_params(*[args for _, args in commands])
    for (where, _), p in zip(commands, parsed, strict=True):
        assert p["labels"].get("podium-node"), where


def test_the_check_refuses_json_labels() -> None:
    with pytest.raises(AssertionError, match="key-value"):
        ray_start_params(["--labels", '{"podium-node": "gpu-1"}'])
