"""The JSON Schema printed by `podium schema` agrees with what the loader accepts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from podium.load.schema import ALL_TASK_KEYS, COMMON_TASK_KEYS, KIND_KEYS, TOP_KEYS, json_schema
from podium.load.yamlsafe import read_document

jsonschema = pytest.importorskip("jsonschema")

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "specs"


def validator() -> object:
    schema = json.loads(json.dumps(json_schema()))  # it must survive a JSON round trip
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_every_example_spec_validates(path: Path) -> None:
    doc = read_document(path.read_bytes(), path.name)
    errors = [e.message for e in validator().iter_errors(doc.data)]  # type: ignore[attr-defined]
    assert errors == []


@pytest.mark.parametrize(
    "bad",
    [
        {"tasks": {"a": {"argv": ["x"], "timout": "1s"}}},
        {"tasks": {"a": {"kind": "htp", "url": "x"}}},
        {"tasks": {"a": {"call": "m:f", "timeout": "10x"}}},
        {"tasks": {"a": {"call": "m:f"}}, "extra": 1},
        {"tasks": {}},
        {"name": "x"},
    ],
)
def test_bad_specs_do_not_validate(bad: dict) -> None:
    assert list(validator().iter_errors(bad))  # type: ignore[attr-defined]


def test_schema_lists_every_key_the_loader_accepts() -> None:
    schema = json_schema()
    assert set(schema["properties"]) == set(TOP_KEYS)
    variants = schema["properties"]["tasks"]["additionalProperties"]["oneOf"]
    for variant, (kind, keys) in zip(variants, KIND_KEYS.items(), strict=True):
        assert set(variant["properties"]) == {*COMMON_TASK_KEYS, *keys}, kind
    assert set().union(*(v["properties"] for v in variants)) == set(ALL_TASK_KEYS)
