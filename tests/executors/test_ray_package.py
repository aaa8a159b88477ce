"""The shape of the ``podium.executors.ray`` package (no Ray needed).

Its modules import one way, bottom up (``base`` first, ``executor`` last; function-local and
``TYPE_CHECKING`` imports count), ``ray`` is imported in ``base`` alone, and a Ray worker loads
only the worker side (``worker``, ``member`` and ``base``), not the driver's parts nor ``ray`` itself.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "podium" / "executors" / "ray"
SRC = PACKAGE.parents[1]
#: The package's modules, bottom up: each may import only modules before it.
ORDER = [
    "base",
    "cluster",
    "worker",
    "member",
    "completer",
    "connect",
    "payload",
    "lanes",
    "wait",
    "gang",
    "health",
    "executor",
]


def _imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


def test_modules_import_bottom_up() -> None:
    assert sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__") == sorted(ORDER)
    bad = []
    for i, name in enumerate(ORDER):
        for imported in _imported(PACKAGE / f"{name}.py"):
            parts = imported.split(".")
            if parts[:3] == ["podium", "executors", "ray"] and len(parts) > 3 and parts[3] not in ORDER[:i]:
                bad.append(f"{name} imports {imported}")
    assert not bad, "\n".join(bad)


def test_only_base_imports_ray() -> None:
    found = {
        str(path.relative_to(SRC))
        for path in SRC.rglob("*.py")
        if any(m == "ray" or m.startswith("ray.") for m in _imported(path))
    }
    assert found == {"executors/ray/base.py"}, sorted(found)


def test_a_worker_loads_only_the_worker_side() -> None:
    code = (
        "import sys, podium.executors.ray.worker; "
        "print(sorted(m for m in sys.modules if m == 'ray' or m.startswith('podium.executors.ray')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == [
        "['podium.executors.ray',",
        "'podium.executors.ray.base',",
        "'podium.executors.ray.worker']",
    ]


def test_a_gang_worker_loads_only_the_worker_side() -> None:
    code = (
        "import sys, podium.executors.ray.member; "
        "print(sorted(m for m in sys.modules if m == 'ray' or m.startswith('podium.executors.ray')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == [
        "['podium.executors.ray',",
        "'podium.executors.ray.base',",
        "'podium.executors.ray.member',",
        "'podium.executors.ray.worker']",
    ]
