"""Imports flow one way (see docs/architecture.md): each layer imports only layers below it.

Checked on the source with ``ast``, including imports inside functions (lazy imports count);
imports under ``if TYPE_CHECKING:`` are type-only and exempt. The test fails naming the module
and the import that crosses a layer.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "podium"
LEAVES = {"errors", "types", "registry", "testing"}
ALLOWED: dict[str, set[str]] = {
    "leaves": LEAVES,
    "model": LEAVES | {"model"},
    "load": LEAVES | {"model", "load"},
    "planner": LEAVES | {"model", "planner"},
    "executors": LEAVES | {"model", "executors"},
    "store": LEAVES | {"model", "store"},
    "runtime": LEAVES | {"model", "planner", "runtime"},
}
EDGES = {"cli", "api", "server", "metrics", "__init__", "__main__"}


def _layer(path: Path) -> str:
    rel = path.relative_to(SRC)
    top = rel.parts[0].removesuffix(".py")
    return "leaves" if top in LEAVES else top


def _type_only(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for sub in node.body:
                lines.update(range(sub.lineno, (sub.end_lineno or sub.lineno) + 1))
    return lines


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = _type_only(tree)
    out = []
    for node in ast.walk(tree):
        if node.lineno in skip if hasattr(node, "lineno") else False:
            continue
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.lineno, node.module))
    return [(n, m) for n, m in out if m == "podium" or m.startswith("podium.")]


def test_every_import_respects_the_layers() -> None:
    bad = []
    checked = 0
    for path in sorted(SRC.rglob("*.py")):
        layer = _layer(path)
        if layer in EDGES:
            continue
        allowed = ALLOWED[layer]
        for line, module in _imports(path):
            target = module.split(".")[1] if "." in module else "podium"
            checked += 1
            if target not in allowed:
                bad.append(f"{path.relative_to(SRC.parent)}:{line}: {layer} imports {module}")
    assert checked > 50
    assert not bad, "\n".join(bad)


def test_nothing_imports_the_edges() -> None:
    bad = []
    for path in sorted(SRC.rglob("*.py")):
        if _layer(path) in EDGES:
            continue
        for line, module in _imports(path):
            if module.split(".")[1:2] and module.split(".")[1] in EDGES - {"__init__", "__main__"}:
                bad.append(f"{path.relative_to(SRC.parent)}:{line}: imports the edge {module}")
    assert not bad, "\n".join(bad)
