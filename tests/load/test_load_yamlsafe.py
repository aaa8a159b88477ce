"""Safe, bounded reading of spec documents: positions, duplicates, aliases, limits, encodings."""

from __future__ import annotations

import pytest

from podium.errors import SpecError
from podium.load import yamlsafe
from podium.load.limits import Limits
from podium.load.yamlsafe import read_document


@pytest.fixture(autouse=True, params=["libyaml", "pure"])
def loader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test runs with libyaml parsing events (when built in) and with pure Python."""
    if request.param == "pure":
        monkeypatch.setattr(yamlsafe, "_Loader", yamlsafe._PureLoader)
    elif yamlsafe.CParser is None:
        pytest.skip("PyYAML without libyaml")


def read(text: str | bytes, fmt: str = "yaml", **limits: int):  # type: ignore[no-untyped-def]
    data = text.encode() if isinstance(text, str) else text
    return read_document(data, "s.yaml", fmt, Limits(**limits))


def fails(text: str | bytes, fmt: str = "yaml", **limits: int) -> str:
    with pytest.raises(SpecError) as e:
        read(text, fmt, **limits)
    return str(e.value)


def test_plain_data_with_value_and_key_positions() -> None:
    doc = read("a:\n  b: [1, x, {c: 2024-01-01}]\n  on: yes\n")
    assert doc.data == {"a": {"b": [1, "x", {"c": "2024-01-01"}], "on": True}}
    assert doc.marks[("a", "b", 1)] == (2, 10)
    assert doc.key_marks[("a", "on")] == (3, 3)
    assert doc.where(("a", "b", 2, "c")) == "s.yaml:2:17: a.b[2].c"
    assert doc.where(("a", "missing")) == "s.yaml:2:3: a.missing"  # nearest known ancestor
    assert doc.problems == []


def test_duplicate_keys_are_reported_first_one_kept() -> None:
    doc = read("x: 1\ny: 2\nx: 3\n")
    assert doc.data == {"x": 1, "y": 2}
    assert [str(p) for p in doc.problems] == [
        "s.yaml:3:1: x: duplicate key 'x' (first at line 1); each key may appear once"
    ]


def test_anchors_and_aliases_are_rejected() -> None:
    assert "s.yaml:1:4: YAML anchors (&a) are not allowed" in fails("a: &a [1]\nb: 2\n")
    assert "aliases" in fails("b: *a\n") or "anchor" in fails("b: *a\n")


def test_billion_laughs_is_rejected_at_the_first_anchor() -> None:
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"a{i}: &a{i} [{','.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    assert "anchors" in fails("\n".join(lines))


def test_syntax_errors_carry_line_and_column() -> None:
    assert fails("tasks:\n  a: {argv: [x]\n  b: 1\n").startswith("s.yaml:3:3: YAML syntax error:")
    assert "s.yaml:2:1" in fails("a: 1\n\tb: 2\n")
    assert "expected a single document" in fails("a: 1\n---\nb: 2\n")


def test_non_utf8_bytes_name_the_offset() -> None:
    assert "not valid UTF-8: byte 0xff at byte offset 7" in fails(b"tasks: \xff\n")
    assert read(b"\xef\xbb\xbfa: 1\n").data == {"a": 1}  # a UTF-8 BOM is fine


def test_control_characters_are_rejected_with_position() -> None:
    assert "s.yaml:1:4: unacceptable character #x0001" in fails("a: \x01\n")


def test_limits_bytes_and_depth() -> None:
    assert "over the limit of 10 bytes" in fails("a: 123456789012\n", max_bytes=10)
    nested = "a:\n" + "".join("  " * i + "b:\n" for i in range(1, 6)) + "  " * 6 + "c: 1\n"
    assert "nesting deeper than 4 levels" in fails(nested, max_depth=4)
    assert read(nested, max_depth=8).data["a"]["b"]["b"]
    deep_flow = "[" * 5000 + "]" * 5000
    assert "nesting deeper than 32 levels" in fails(deep_flow)


def test_unsupported_tags_are_problems() -> None:
    doc = read("a: !!python/object:os.system x\nb: !!binary aGVsbG8=\nc: !!set {x: null}\n")
    text = " ".join(str(p) for p in doc.problems)
    assert "python/object" in text and "binary" in text and "set" in text


def test_non_scalar_keys_are_problems() -> None:
    doc = read("? [a, b]\n: 1\n")
    assert "mapping keys must be plain strings" in str(doc.problems[0])


def test_json_documents() -> None:
    doc = read('{"a": {"b": [1, 2.5e3]}, "a": 2}', "json")
    assert doc.data == {"a": {"b": [1, 2500.0]}}
    assert "duplicate key 'a'" in str(doc.problems[0])
    assert fails('{"a": [1,', "json").startswith("s.yaml:1:10: JSON syntax error")
    assert "NaN is not allowed" in fails('{"a": NaN}', "json")
    assert "nesting deeper than 3" in fails('{"a": {"b": {"c": 1}}}', "json", max_depth=3)
    assert "nesting" in fails("[" * 100000 + "]" * 100000, "json", max_bytes=10**6)
