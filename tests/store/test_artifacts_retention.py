"""Lineage and retention through the real ``podium`` CLI on SQLite: each artifact's reference
records the run, task, attempt and inputs (their artifacts) that produced it, shown by
``podium artifacts --json``; ``podium gc --keep-last N`` keeps the N newest runs of each
workflow, unfinished runs and cache entries, and deletes only what nothing kept refers to."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import jsonschema
import pytest

from podium.runtime.readmodel import json_schema
from podium.store import SqliteStore

from .conftest import podium

FLOW = textwrap.dedent(
    """
    import numpy as np
    import podium

    @podium.task
    def base(n: int):
        return np.zeros(n)  # the same bytes in every run: one shared object

    @podium.task
    def make(n: int, v: float):
        return np.full(n, v)

    @podium.task
    def scale(a, b, k: int):
        return a * k + b

    @podium.task
    def small(a) -> float:
        return float(a[0])  # inline

    @podium.task
    def combine(s: float, a):
        return a + s

    @podium.task(cache=True)
    def cached(n: int):
        return np.ones(n) * 5

    @podium.flow(name="lin")
    def lin(v: float, n: int = 1 << 18):
        a = make(n=n, v=v)
        s = scale(a=a, b=base(n=n), k=2)
        combine(s=small(a=s), a=s)

    @podium.flow(name="other")
    def other(n: int = 1 << 18):
        make(n=n, v=9.0)

    @podium.flow(name="cachedflow")
    def cachedflow(n: int = 1 << 18):
        cached(n=n)
    """
)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "flow.py").write_text(FLOW, encoding="utf-8")
    monkeypatch.delenv("PODIUM_ARTIFACTS", raising=False)
    return tmp_path


def _run(project: Path, target: str, run_id: str, *params: str) -> None:
    args = ["run", f"flow.py:{target}", "--run-id", run_id, "--store", str(project / "s.db"), "--no-progress"]
    out = podium(*args, *[x for p in params for x in ("-p", p)], cwd=project)
    assert out.returncode == 0, out.stderr


def _listed(project: Path, run_id: str) -> dict[str, dict]:
    out = podium("artifacts", run_id, "--store", str(project / "s.db"), "--json", cwd=project)
    assert out.returncode == 0, out.stderr
    return {item["task_id"]: item for item in json.loads(out.stdout)}


def test_each_artifact_records_the_task_and_the_artifacts_it_was_made_from(project: Path) -> None:
    _run(project, "lin", "r1", "v=1.5")
    items = _listed(project, "r1")
    assert sorted(items) == ["base", "combine", "make", "scale"]  # small is inline
    name = {t: f"{i['algorithm']}:{i['digest']}" for t, i in items.items()}
    assert all(i["algorithm"] == "blake3" and i["kind"] == "value" for i in items.values())
    assert items["make"]["lineage"] == {
        "run": "r1",
        "workflow": "lin",
        "task": "make",
        "attempt": 1,
        "inputs": {},
    }
    assert items["scale"]["lineage"]["inputs"] == {"make": name["make"], "base": name["base"]}
    assert items["combine"]["lineage"]["inputs"] == {"small": None, "scale": name["scale"]}
    # show --json lists the same artifacts and lineage (the read model's `artifacts`), valid JSON
    # of its schema; `podium artifacts` adds only where each object is and that it is present
    out = podium("show", "r1", "--store", str(project / "s.db"), "--json", cwd=project)
    assert out.returncode == 0, out.stderr
    shown = json.loads(out.stdout)
    jsonschema.validate(shown, {**json_schema(), "$ref": "#/$defs/show"})
    extra = {"run_id", "workflow", "where", "present"}
    assert {a["task_id"]: a for a in shown["artifacts"]} == {
        t: {k: v for k, v in i.items() if k not in extra} for t, i in items.items()
    }
    assert all(i["present"] and i["authenticated"] for i in items.values())


def test_gc_keep_last_keeps_newest_runs_unfinished_runs_and_the_cache(project: Path) -> None:
    for i, v in enumerate(["1", "10", "100"], 1):  # no value of one run equals another's
        _run(project, "lin", f"lin{i}", f"v={v}")
    _run(project, "other", "o1")
    _run(project, "cachedflow", "c1")
    _run(project, "cachedflow", "c2")  # a cache hit: the same object as c1's
    store = SqliteStore(str(project / "s.db"))
    store.update_run("lin1", status="running")  # its orchestrator died mid-run: it may be resumed
    store.close()
    before = {r: _listed(project, r) for r in ("lin1", "lin2", "lin3", "o1", "c1")}
    shared = before["lin2"]["base"]["digest"]
    assert shared == before["lin3"]["base"]["digest"]  # lin2 shares base with a kept run
    where = ["--store", str(project / "s.db"), "--grace", "0"]
    dry = podium("gc", *where, "--keep-last", "1", "--dry-run", cwd=project)
    assert dry.returncode == 0 and "would delete 3 object(s) of 2 older run(s)" in dry.stdout, dry.stdout
    assert all(i["present"] for i in _listed(project, "lin2").values())
    out = podium("gc", *where, "--keep-last", "1", cwd=project)
    assert out.returncode == 0 and "deleted 3 object(s)" in out.stdout, out.stdout
    after = {r: _listed(project, r) for r in before}
    assert {t: i["present"] for t, i in after["lin2"].items()} == {
        "base": True,  # shared with lin3
        "make": False,
        "scale": False,
        "combine": False,
    }
    for run in ("lin1", "lin3", "o1", "c1"):  # unfinished, newest of lin, newest of other, cached
        assert all(i["present"] for i in after[run].values()), run
    assert podium("gc", *where, "--keep-last", "0", cwd=project).returncode == 2  # one-line usage error
