"""Safe, bounded reading of spec documents (YAML or JSON) into plain data with positions.

A spec file is untrusted input. This module turns its bytes into plain JSON-like data
(dicts with string keys, lists, str, int, float, bool, None) and remembers where every value
and every mapping key sits (``line``, ``column``, 1-based) so later checks can say
``spec.yaml:12:5: tasks.train.timeout: ...``.

Invariants:
- Only PyYAML's safe machinery is used (a ``SafeLoader`` subclass composing nodes); no
  arbitrary tags, no Python objects; anchors and aliases are rejected outright, which also
  rules out exponential "billion laughs" documents.
- Sizes are bounded before any parsing (bytes), nesting depth while composing, so a hostile
  document cannot exhaust memory or the stack. All limits are overridable through ``Limits``.
- Mapping keys are always strings (the key's text as written), so ``on:`` stays ``"on"``.
- A duplicated mapping key is reported (the default loaders silently keep the last one);
  the first occurrence wins so the rest of the document can still be checked.
- Fatal problems (bad bytes, syntax, limits) raise ``SpecError``; recoverable ones
  (duplicate keys, unsupported tags) are collected in ``Document.problems``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.resolver import Resolver

try:
    from yaml._yaml import CParser
except ImportError:  # PyYAML built without libyaml
    CParser = None

from podium.errors import Problem, SpecError
from podium.load.limits import Limits

Path_ = tuple[str | int, ...]

_STR = "tag:yaml.org,2002:str"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_SCALAR_TAGS = {
    _STR,
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
}


def render_path(path: Sequence[str | int]) -> str:
    """``("tasks", "tool", "argv", 2)`` -> ``tasks.tool.argv[2]``."""
    out = ""
    for p in path:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            out += f".{p}" if out else str(p)
    return out


@dataclass
class Document:
    """Plain data read from a spec, with the position of each value and key."""

    data: Any
    name: str
    marks: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    key_marks: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    def where(self, path: Sequence[str | int], key: bool = False) -> str:
        """``file:line:col: dotted.path`` for the value at ``path`` (or its key), as far as known."""
        p = tuple(path)
        mark = None
        if key:
            mark = self.key_marks.get(p)
        probe = p
        while mark is None:
            mark = self.marks.get(probe)
            if mark is None and not probe:
                break
            probe = probe[:-1]
        loc = f"{self.name}:{mark[0]}:{mark[1]}" if mark else self.name
        dotted = render_path(p)
        return f"{loc}: {dotted}" if dotted else loc


def decode(data: bytes, name: str, limits: Limits) -> str:
    """UTF-8 text of ``data``; ``SpecError`` if too large or not UTF-8 (naming the byte offset)."""
    if len(data) > limits.max_bytes:
        raise SpecError(
            f"{name}: spec is {len(data)} bytes, over the limit of {limits.max_bytes} bytes "
            "(raise it with --max-bytes)"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        bad = data[e.start : e.start + 1].hex()
        raise SpecError(
            f"{name}: not valid UTF-8: byte 0x{bad} at byte offset {e.start} ({e.reason}); "
            "save the file as UTF-8"
        ) from None
    return text.removeprefix("\ufeff")


class _Fatal(Exception):
    def __init__(self, mark: Any, message: str):
        super().__init__(message)
        self.mark = mark
        self.message = message


class _Bounds:
    """Composer hook shared by both loaders: refuse anchors/aliases and over-deep nesting."""

    _depth: int
    _max_depth: int

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()  # type: ignore[attr-defined]
        if isinstance(event, yaml.AliasEvent):
            raise _Fatal(event.start_mark, f"YAML aliases (*{event.anchor}) are not allowed in specs")
        if getattr(event, "anchor", None):
            raise _Fatal(event.start_mark, f"YAML anchors (&{event.anchor}) are not allowed in specs")
        self._depth += 1
        try:
            if self._depth > self._max_depth:
                raise _Fatal(
                    event.start_mark,
                    f"nesting deeper than {self._max_depth} levels (raise the limit with --max-depth)",
                )
            return Composer.compose_node(self, parent, index)  # type: ignore[arg-type]
        finally:
            self._depth -= 1


class _PureLoader(_Bounds, yaml.SafeLoader):
    """PyYAML's pure-Python SafeLoader with the bounds above."""

    byte_offsets = False

    def __init__(self, stream: str, max_depth: int):
        yaml.SafeLoader.__init__(self, stream)
        self._depth, self._max_depth = 0, max_depth


_Loader: Any = _PureLoader
if CParser is not None:

    class _FastLoader(_Bounds, CParser, SafeConstructor, Resolver):  # type: ignore[misc, valid-type]
        """libyaml parses events (several times faster); composing stays in Python so the
        bounds above apply to every node."""

        byte_offsets = True
        get_single_node = Composer.get_single_node
        compose_document = Composer.compose_document
        compose_scalar_node = Composer.compose_scalar_node
        compose_sequence_node = Composer.compose_sequence_node
        compose_mapping_node = Composer.compose_mapping_node

        def __init__(self, stream: str, max_depth: int):
            CParser.__init__(self, stream)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)
            self.anchors: dict[str, Any] = {}
            self._depth, self._max_depth = 0, max_depth

    _Loader = _FastLoader


def _line_col(text: str, index: int, byte_offsets: bool = False) -> tuple[int, int]:
    if byte_offsets:
        index = len(text.encode("utf-8")[:index].decode("utf-8", "ignore"))
    line = text.count("\n", 0, index) + 1
    col = index - (text.rfind("\n", 0, index) + 1) + 1
    return line, col


def parse_yaml(text: str, name: str, limits: Limits) -> Document:
    """Compose ``text`` safely and build plain data with positions. ``SpecError`` if unreadable."""
    loader: Any = None
    try:
        loader = _Loader(text, limits.max_depth)
        node = loader.get_single_node()
    except _Fatal as e:
        m = e.mark
        raise SpecError(f"{name}:{m.line + 1}:{m.column + 1}: {e.message}") from None
    except yaml.MarkedYAMLError as e:
        m = e.problem_mark or e.context_mark
        what = e.problem or e.context or "invalid YAML"
        ctx = f" ({e.context})" if e.context and e.problem else ""
        loc = f"{name}:{m.line + 1}:{m.column + 1}" if m is not None else name
        if "maximum nesting depth" in what:  # PyYAML >= 6.0.4 stops deep flows while scanning
            msg = f"nesting deeper than {limits.max_depth} levels (raise the limit with --max-depth)"
            raise SpecError(f"{loc}: {msg}") from None
        raise SpecError(f"{loc}: YAML syntax error: {what}{ctx}") from None
    except yaml.reader.ReaderError as e:
        line, col = _line_col(text, e.position, _Loader.byte_offsets)
        raise SpecError(
            f"{name}:{line}:{col}: unacceptable character #x{e.character:04x}: {e.reason}"
            if isinstance(e.character, int)
            else f"{name}:{line}:{col}: unreadable input: {e.reason}"
        ) from None
    except yaml.YAMLError as e:
        raise SpecError(f"{name}: YAML error: {e}") from None
    except RecursionError:
        raise SpecError(f"{name}: nesting too deep (limit {limits.max_depth})") from None
    finally:
        if loader is not None and hasattr(loader, "dispose"):
            loader.dispose()
    doc = Document(None, name)
    if node is None:
        return doc
    doc.data = _Builder(loader, doc).build(node, ())
    return doc


class _Builder:
    def __init__(self, loader: Any, doc: Document):
        self.loader = loader
        self.doc = doc

    def _problem(self, node: Any, path: Path_, message: str) -> None:
        m = node.start_mark
        dotted = render_path(path)
        loc = f"{self.doc.name}:{m.line + 1}:{m.column + 1}"
        self.doc.problems.append(Problem(f"{loc}: {dotted}" if dotted else loc, message))

    def build(self, node: Any, path: Path_) -> Any:
        self.doc.marks[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
        if isinstance(node, yaml.ScalarNode):
            if node.tag == _TIMESTAMP:
                return node.value
            if node.tag not in _SCALAR_TAGS:
                self._problem(node, path, f"unsupported YAML tag {node.tag!r}: use plain values")
                return node.value
            try:
                return self.loader.construct_object(node, deep=True)
            except (yaml.YAMLError, ValueError, OverflowError) as e:
                self._problem(node, path, f"bad value {node.value!r} ({e})")
                return node.value
        if isinstance(node, yaml.SequenceNode):
            if node.tag != _SEQ:
                self._problem(node, path, f"unsupported YAML tag {node.tag!r}: use a plain list")
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        if node.tag != _MAP:
            self._problem(node, path, f"unsupported YAML tag {node.tag!r}: use a plain mapping")
        out: dict[str, Any] = {}
        for knode, vnode in node.value:
            if not isinstance(knode, yaml.ScalarNode):
                self._problem(knode, path, "mapping keys must be plain strings")
                continue
            key = knode.value
            kpath = (*path, key)
            kmark = (knode.start_mark.line + 1, knode.start_mark.column + 1)
            if key in out:
                first = self.doc.key_marks.get(kpath)
                at = f" (first at line {first[0]})" if first else ""
                self._problem(knode, kpath, f"duplicate key {key!r}{at}; each key may appear once")
                continue
            self.doc.key_marks[kpath] = kmark
            out[key] = self.build(vnode, kpath)
        return out


def parse_json(text: str, name: str, limits: Limits) -> Document:
    """Parse JSON text, reporting duplicate keys, NaN/Infinity and over-deep nesting."""
    doc = Document(None, name)

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in items:
            if k in out:
                doc.problems.append(Problem(name, f"duplicate key {k!r}; each key may appear once"))
                continue
            out[k] = v
        return out

    def constant(c: str) -> Any:
        raise ValueError(f"{c} is not allowed")

    try:
        doc.data = json.loads(text, object_pairs_hook=pairs, parse_constant=constant)
    except json.JSONDecodeError as e:
        raise SpecError(f"{name}:{e.lineno}:{e.colno}: JSON syntax error: {e.msg}") from None
    except ValueError as e:
        raise SpecError(f"{name}: {e}") from None
    except RecursionError:
        raise SpecError(f"{name}: nesting deeper than {limits.max_depth} levels") from None
    if _depth(doc.data) > limits.max_depth:
        raise SpecError(f"{name}: nesting deeper than {limits.max_depth} levels (raise it with --max-depth)")
    return doc


def _depth(value: Any) -> int:
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        v, d = stack.pop()
        deepest = max(deepest, d)
        if isinstance(v, dict):
            stack.extend((x, d + 1) for x in v.values())
        elif isinstance(v, list):
            stack.extend((x, d + 1) for x in v)
    return deepest


def read_document(data: bytes, name: str, fmt: str = "yaml", limits: Limits | None = None) -> Document:
    """Bytes of a spec file -> ``Document``. ``fmt`` is ``"yaml"`` or ``"json"``."""
    lim = limits or Limits()
    text = decode(data, name, lim)
    return parse_json(text, name, lim) if fmt == "json" else parse_yaml(text, name, lim)
