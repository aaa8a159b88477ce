"""The Grafana dashboard: the committed JSON is what deploy/grafana/build.py generates, its
queries name only metrics Podium exports, and the provisioning files point at it; every metric
is documented in docs/monitoring.md with its type and labels."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from typing import Any

import yaml

from podium.metrics import METRICS

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "deploy" / "grafana"


def _build() -> Any:
    spec = importlib.util.spec_from_file_location("grafana_build", GRAFANA / "build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_dashboard_is_what_the_script_generates() -> None:
    committed = (GRAFANA / "podium.json").read_text(encoding="utf-8")
    assert committed == _build().render(), "run: python deploy/grafana/build.py"


def test_panels_query_only_exported_metrics() -> None:
    board = json.loads((GRAFANA / "podium.json").read_text(encoding="utf-8"))
    names = set()
    for m in METRICS:
        names.add(m.name)
        if m.kind == "histogram":
            names |= {f"{m.name}_bucket", f"{m.name}_sum", f"{m.name}_count"}
    exprs = _build().expressions(board)
    titles = [p["title"] for p in board["panels"] if p["type"] != "row"]
    assert len(titles) == len(set(titles)) >= 18
    for title, expr in exprs:
        used = set(re.findall(r"\bpodium_[a-z_]+", expr))
        assert used and used <= names, f"{title}: {sorted(used - names)}"
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    assert board["uid"] == "podium"
    assert {v["name"] for v in board["templating"]["list"]} == {"datasource", "workflow"}


def test_provisioning_files_load_the_dashboard_from_prometheus() -> None:
    prov = GRAFANA / "provisioning"
    sources = yaml.safe_load((prov / "datasources" / "podium.yaml").read_text(encoding="utf-8"))
    assert sources["apiVersion"] == 1
    assert [d["type"] for d in sources["datasources"]] == ["prometheus"]
    boards = yaml.safe_load((prov / "dashboards" / "podium.yaml").read_text(encoding="utf-8"))
    (provider,) = boards["providers"]
    assert provider["type"] == "file" and provider["options"]["path"].startswith("/")


def test_every_metric_is_documented() -> None:
    text = (ROOT / "docs" / "monitoring.md").read_text(encoding="utf-8")
    for m in METRICS:
        row = f"| `{m.name}` | {m.kind} | {', '.join(m.labels)} |"
        assert row in text, f"docs/monitoring.md lacks the row: {row}"
