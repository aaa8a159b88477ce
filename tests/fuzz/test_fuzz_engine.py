"""Random VALID specs: they load into the drawn graph, and they run end to end on the engine
with results equal to an independent evaluation (``fuzz_specs.valid_specs``).

The load-path tests in tests/load fuzz malformed input; these fuzz well-formed workflows
(random DAGs, parameters, maps, templates, branches, ``none_failed`` joins) through the loader
and the real engine (threads, an in-memory store, and a SQLite store for a share of runs).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from fuzz_specs import Drawn, bounded, valid_specs
from hypothesis import HealthCheck, given, settings

from podium.executors.local import LocalExecutor
from podium.load.spec import load_spec
from podium.model import Node, Resources, Workflow
from podium.registry import Registry
from podium.runtime.engine import Engine
from podium.runtime.view import fold
from podium.store.memory import MemoryStore
from podium.store.sqlite import SqliteStore

SCALE = max(1, int(os.environ.get("PODIUM_FUZZ_SCALE", "1")))
FUZZ = settings(
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def _registry() -> Registry:
    reg = Registry()
    reg.allow("fuzz_tasks")
    return reg


def _load(drawn: Drawn, reg: Registry) -> Workflow:
    text = yaml.safe_dump(drawn.doc, sort_keys=False)
    return load_spec(text.encode(), "fuzz.yaml", "yaml", allow_modules=("fuzz_tasks",), registry=reg)


@settings(FUZZ, max_examples=1000 * SCALE)
@given(valid_specs(max_tasks=14))
def test_valid_specs_load_into_the_drawn_graph(drawn: Drawn) -> None:
    with bounded(drawn.doc):
        wf = _load(drawn, _registry())
    assert list(wf.tasks) == list(drawn.doc["tasks"])
    for name, deps in drawn.deps.items():
        assert set(wf.tasks[name].deps) == deps, name
    assert set(wf.resolve_params(drawn.params)) == {"p"}


@pytest.fixture(scope="module")
def engine_parts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Registry, LocalExecutor, Path]]:
    reg = _registry()
    ex = LocalExecutor([Node("local", Resources.of(cpu=4, memory="1GiB"))], registry=reg)
    yield reg, ex, tmp_path_factory.mktemp("fuzz-engine") / "runs.db"
    ex.shutdown()


@settings(FUZZ, max_examples=400 * SCALE)
@given(drawn=valid_specs(max_tasks=10))
def test_valid_specs_run_and_match_an_independent_evaluation(
    drawn: Drawn, engine_parts: tuple[Registry, LocalExecutor, Path]
) -> None:
    reg, ex, db = engine_parts
    sqlite = len(drawn.doc["tasks"]) % 4 == 0  # a share of the runs go through the durable store
    store = SqliteStore(str(db)) if sqlite else MemoryStore()
    try:
        with bounded(drawn.doc):
            wf = _load(drawn, reg)
            result = Engine(store, ex).run(wf, drawn.params)
        assert result.ok, (result.status, {t: v.error for t, v in result.view.tasks.items() if v.error})
        view = fold(store.events(result.run_id))
        assert view.state == "succeeded"
        skipped = {t for t, v in view.tasks.items() if v.state == "skipped" and "[" not in t}
        assert skipped == drawn.skipped
        for name, expected in drawn.values.items():
            if name in drawn.skipped:
                continue
            assert result[name] == expected, (name, result[name], expected)
        committed = store.results(result.run_id)
        assert all(r.verify() for r in committed.values())
    finally:
        store.close()
