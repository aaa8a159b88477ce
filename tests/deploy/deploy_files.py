"""Paths and loaders shared by the offline checks of the deployment files (tests/deploy)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
ANSIBLE = REPO / "deploy" / "ansible"
CONTAINERFILE = REPO / "Containerfile"
#: The uid the image runs as, and the pods' runAsUser.
PODIUM_UID = 1000


def project_version() -> str:
    import tomllib

    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]


def load_manifests(directory: Path = K8S) -> dict[str, list[dict[str, Any]]]:
    """Every YAML document of every manifest file, by file name (safe loader)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(directory.glob("*.yaml")):
        docs = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]
        out[path.name] = docs
    return out


def objects(kind: str) -> list[dict[str, Any]]:
    """The manifests of one kind (a Kustomization is no API object and is never listed)."""
    return [d for docs in load_manifests().values() for d in docs if d.get("kind") == kind]


def one(kind: str) -> dict[str, Any]:
    found = objects(kind)
    assert len(found) == 1, f"expected one {kind} in deploy/k8s, found {len(found)}"
    return found[0]


def k8s_schema_dir() -> Path | None:
    """KubeRay's CRDs: $PODIUM_K8S_SCHEMAS, else ../shared/k8s beside the repository."""
    base = Path(os.environ.get("PODIUM_K8S_SCHEMAS") or REPO.parent / "shared" / "k8s")
    crds = base / "kuberay-crds"
    return crds if crds.is_dir() else None


def podium_accepts(argv: list[str]) -> None:
    """Assert that the real `podium` command accepts these arguments (option names; `--help`
    stops it before it would run). A command this version of podium lacks is a skip."""
    import subprocess
    import sys

    import pytest

    done = subprocess.run(
        [sys.executable, "-m", "podium", *argv, "--help"], capture_output=True, text=True, timeout=60
    )
    if done.returncode != 0 and "No such command" in done.stderr:
        pytest.skip(f"`podium {argv[0]}` is not part of this version of podium")
    assert done.returncode == 0, done.stderr


_RAY_START = """
import json, sys
from ray._private.label_utils import parse_node_labels_string
from ray.scripts.scripts import start
out = []
for args in json.loads(sys.argv[1]):
    try:
        params = start.make_context("start", args).params
        labels = parse_node_labels_string(params["labels"]) if params.get("labels") else {}
        out.append({"params": params, "labels": labels})
    except Exception as e:
        out.append({"error": f"ray start {' '.join(args)}: {e}"})
print(json.dumps(out, default=str))
"""


def ray_start_params(*commands: list[str]) -> list[dict[str, Any]]:
    """How Ray's own `ray start` parses each argument list (with its label syntax check), in one
    subprocess: importing ray here would fix its settings before the Ray tests set theirs.
    A list Ray refuses raises AssertionError with Ray's message."""
    import json
    import subprocess
    import sys

    argv = [sys.executable, "-c", _RAY_START, json.dumps(list(commands))]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)
    errors = [r["error"] for r in results if "error" in r]
    if errors:
        raise AssertionError("; ".join(errors))
    return results
