"""Imports flow one way (see docs/architecture.md): each layer imports only layers below it, and
no two of our modules import each other, directly or through others.

Checked on the source with ``ast``; relative imports (``from . import x``) are resolved against
the importing module's package. Imports under ``if TYPE_CHECKING:`` are type-only and exempt
from both rules. Layers: imports inside functions count too (lazy imports still cross the
layer). Cycles: only imports that run when a module is imported count (module and class
level), not those inside functions, which run when called. The tests fail naming the modules
and the import lines.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "podium"
LEAVES = {"errors", "types", "registry", "testing", "policy", "secrets", "taskcontext", "project", "fastjson"}
ALLOWED: dict[str, set[str]] = {
    "leaves": LEAVES,
    "model": LEAVES | {"model"},
    "load": LEAVES | {"model", "load"},
    "planner": LEAVES | {"model", "planner"},
    "learn": LEAVES | {"model", "learn"},
    "executors": LEAVES | {"model", "executors"},
    "store": LEAVES | {"model", "store"},
    "runtime": LEAVES | {"model", "planner", "learn", "runtime"},
}
EDGES = {"cli", "api", "server", "metrics", "report", "__init__", "__main__"}


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


_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)


def _import_nodes(tree: ast.AST, in_functions: bool) -> Iterator[ast.Import | ast.ImportFrom]:
    """The import statements of a module, but none under ``TYPE_CHECKING`` and, unless
    ``in_functions``, none inside a function."""
    skip = _type_only(tree)
    todo = [tree]
    while todo:
        node = todo.pop()
        if isinstance(node, _FUNCTIONS) and not in_functions:
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            if node.lineno not in skip:
                yield node
            continue
        todo.extend(ast.iter_child_nodes(node))


def _module(path: Path, root: Path) -> str:
    """Dotted name of the module in ``path``, ``root`` being its top package's folder."""
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _base(node: ast.ImportFrom, path: Path, root: Path) -> str:
    """The module a ``from ... import`` names, a relative one resolved against ``path``'s package."""
    if not node.level:
        return node.module or ""
    package = _module(path, root).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    package = package[: len(package) - (node.level - 1)]
    return ".".join([*package, node.module] if node.module else package)


def _imports(path: Path, root: Path = SRC, in_functions: bool = True) -> list[tuple[int, str, list[str]]]:
    """(line, module, names) for every import of one of our modules in ``path``: the module an
    ``import`` or ``from ... import`` names, and for the latter the names it takes (any of them
    may be a submodule)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = []
    for node in _import_nodes(tree, in_functions):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name, []) for a in node.names]
        else:
            out.append((node.lineno, _base(node, path, root), [a.name for a in node.names]))
    top = root.name
    return [(n, m, names) for n, m, names in out if m == top or m.startswith(top + ".")]


def test_every_import_respects_the_layers() -> None:
    bad = []
    checked = 0
    for path in sorted(SRC.rglob("*.py")):
        layer = _layer(path)
        if layer in EDGES:
            continue
        allowed = ALLOWED[layer]
        for line, module, _ in _imports(path):
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
        for line, module, _ in _imports(path):
            if module.split(".")[1:2] and module.split(".")[1] in EDGES - {"__init__", "__main__"}:
                bad.append(f"{path.relative_to(SRC.parent)}:{line}: imports the edge {module}")
    assert not bad, "\n".join(bad)


def _graph(root: Path) -> dict[str, dict[str, int]]:
    """Module -> {module it imports when imported: line of that import} for the package in
    ``root``. A name imported from a module is an edge to the submodule of that name if there
    is one. An import of a module's own enclosing package is no edge: Python has that package
    half-initialised by then and finds the submodule named."""
    files = {_module(p, root): p for p in sorted(root.rglob("*.py"))}
    graph: dict[str, dict[str, int]] = {}
    for mod, path in files.items():
        edges = graph[mod] = {}
        for line, base, names in _imports(path, root, in_functions=False):
            for name in [base, *(f"{base}.{n}" for n in names)]:
                while name and name not in files:
                    name = name.rpartition(".")[0]
                if name and name != mod and not mod.startswith(name + "."):
                    edges.setdefault(name, line)
    return graph


def _cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """One cycle (its modules in import order) through each strongly connected group."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(group)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    cycles = []
    for group in groups:  # the shortest way from the group's first module back to it
        inside, first = set(group), min(group)
        came: dict[str, str] = {}  # module -> the module that reached it (imports it)
        todo = [first]
        while first not in came:
            reached = []
            for v in todo:
                for w in sorted(graph[v]):
                    if w in inside and w not in came:
                        came[w] = v
                        reached.append(w)
            todo = reached
        back = [came[first]]
        while back[-1] != first:
            back.append(came[back[-1]])
        cycles.append(back[::-1])
    return cycles


def _describe(cycle: list[str], graph: dict[str, dict[str, int]]) -> str:
    ring = zip(cycle, [*cycle[1:], cycle[0]], strict=True)
    return "import cycle: " + "; ".join(f"{a}:{graph[a][b]} imports {b}" for a, b in ring)


def test_no_import_cycle_between_our_modules() -> None:
    """Fails on any import cycle between modules of ``src/podium``.

    The rule: an edge is an import that runs when its module is imported: at module or class
    level, absolute or relative (``from . import x``, ``from .m import y``), and ``from p import
    name`` counts as importing the submodule ``p.name`` when there is one. Imports inside
    functions (they run when called, once every module is loaded) and under ``if
    TYPE_CHECKING:`` (never run) are not edges, and neither is an import of a module's own
    enclosing package.
    """
    graph = _graph(SRC)
    assert sum(len(e) for e in graph.values()) > 100
    cycles = _cycles(graph)
    assert not cycles, "\n".join(_describe(c, graph) for c in cycles)


def test_the_cycle_rule_on_a_small_package(tmp_path: Path) -> None:
    """What counts as an edge, on a package made for it: only the relative pair is a cycle."""
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    files = {
        "__init__.py": "from pkg.sub import deep\n",
        "a.py": "from . import b\n",
        "b.py": "class B:\n    from .a import name\n",
        "lazy.py": "def f():\n    from pkg import eager\n",
        "eager.py": "import pkg.lazy\n",
        "typed.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.sub.deep import D\n",
        "sub/__init__.py": "",
        "sub/deep.py": "from .. import typed\nfrom pkg import sub\n",
    }
    for name, text in files.items():
        (pkg / name).write_text(text)
    graph = _graph(pkg)
    assert graph["pkg.a"] == {"pkg.b": 1} and graph["pkg.b"] == {"pkg.a": 2}
    assert graph["pkg.sub.deep"] == {"pkg.typed": 1}  # its own package is no edge
    assert _cycles(graph) == [["pkg.a", "pkg.b"]]
    assert (
        _describe(["pkg.a", "pkg.b"], graph) == "import cycle: pkg.a:1 imports pkg.b; pkg.b:2 imports pkg.a"
    )
