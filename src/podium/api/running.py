"""``podium.run``, ``podium.open_run`` and ``podium.runs``: running and reading runs from Python.

``run(target, params)`` runs a workflow to its end in this process and returns its
``RunResult``; ``target`` is a ``podium.Flow``, a ``Workflow``, or the path of a flow file or a
YAML/JSON spec (``"flows.py:train"`` picks one flow), loaded as ``podium run FILE`` loads it.
It runs on the local executor (the nodes of ``cluster``, a ``Cluster`` or a cluster file, else
this machine) or on the Ray cluster at ``ray``, with the store the command line would use (the
project's, found as ``podium run`` finds it) unless ``store`` says otherwise (``"memory:"``
keeps nothing). ``open_run(run_id)`` reads a past
run; ``runs()`` lists the newest runs as the read model's run objects (``docs/json.md``).

Invariants: a bad target, parameter, store or cluster is a one-line ``PodiumError`` raised
before any run is written; a run that fails is returned, not raised (``raise_on_failure`` does
that); the executor is shut down and a store opened here is closed whatever happens.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from podium.api.result import RunResult
from podium.api.stores import StoreChoice
from podium.errors import UsageError


def run(
    target: Any,
    params: Mapping[str, Any] | None = None,
    *,
    store: Any = None,
    cluster: Any = None,
    ray: str | None = None,
    run_id: str | None = None,
    artifacts: str | None = None,
) -> RunResult:
    """Run ``target`` (a Flow, a Workflow, or a flow file / spec path) with ``params`` to its
    end and return its ``RunResult``. An existing ``run_id`` continues that run."""
    workflow, source = _workflow(target)
    given = _params(params)
    workflow.resolve_params(given)  # a SpecError naming the parameter, before anything is opened
    if run_id is not None:
        from podium.load.runid import check_run_id

        check_run_id(run_id)  # the words of `podium run --run-id`
    if ray is not None and (not isinstance(ray, str) or not ray.strip()):
        raise UsageError(f"ray: expected an address (host:port, ray://..., auto or local), got {ray!r}")
    choice = StoreChoice(store, artifacts)
    nodes_or_cluster = _cluster(cluster)
    arts = choice.artifacts()
    from podium.runtime.engine import Engine
    from podium.runtime.reading import view_facts
    from podium.runtime.readmodel import run_object

    with choice.open() as st:
        if run_id is not None:
            from podium.load.runid import check_same_run

            check_same_run(st, run_id, source, workflow, given)
        executor = _executor(nodes_or_cluster, ray)
        try:
            engine = Engine(st, executor, artifacts=arts, learn=True)
            result = engine.run(workflow, given, run_id=run_id, source=source)
        finally:
            executor.shutdown(wait=False)
        facts = view_facts(st.get_run(result.run_id), result.view)  # the whole run's view: no read
    run_obj = run_object(facts.record, facts.totals)
    return RunResult(run_obj, facts.tasks, result.values, choice if choice.url != "memory:" else None)


def open_run(run_id: str, store: Any = None, *, artifacts: str | None = None) -> RunResult:
    """The ``RunResult`` of a past (or running) run, read-only; ``NotFoundError`` if the store
    has no run ``run_id``. Task values are read from the store when first asked for."""
    if not isinstance(run_id, str) or not run_id:
        raise UsageError(f"run_id: expected a run id, got {run_id!r}")
    choice = StoreChoice(store, artifacts)
    from podium.runtime.reading import read_run
    from podium.runtime.readmodel import run_object

    with choice.open(read_only=True) as st:
        facts = read_run(st, run_id)
    return RunResult(run_object(facts.record, facts.totals), facts.tasks, None, choice)


def runs(store: Any = None, limit: int = 20) -> list[dict[str, Any]]:
    """The newest ``limit`` runs, newest first, as run objects (``podium runs --json``)."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 1_000_000:
        raise UsageError(f"limit: expected a whole number from 1 to 1000000, got {limit!r}")
    choice = StoreChoice(store)
    from podium.runtime.reading import read_runs
    from podium.runtime.readmodel import run_object

    with choice.open(read_only=True) as st:
        return [run_object(r, t) for r, t in read_runs(st, limit)]


def _workflow(target: Any) -> tuple[Any, dict[str, Any] | None]:
    """The workflow ``target`` names, and the source recorded for ``podium resume``."""
    from podium.load.flow import Flow
    from podium.model.workflow import Workflow

    if isinstance(target, Flow):
        return target.workflow, None
    if isinstance(target, Workflow):
        return target, None
    if isinstance(target, str | os.PathLike):
        from podium.load import load_workflow

        path = os.fspath(target)
        if not path.strip():
            raise UsageError("podium.run: the flow file path is empty")
        loaded = load_workflow(path)
        return loaded.workflow, loaded.source
    raise UsageError(
        "podium.run: expected a podium.Flow, a podium.Workflow or the path of a flow file or spec, "
        f"got {type(target).__name__}"
    )


def _params(params: Any) -> dict[str, Any]:
    if params is None:
        return {}
    if not isinstance(params, Mapping):
        raise UsageError(
            f"params: expected a mapping of parameter names to values, got {type(params).__name__}"
        )
    bad = [k for k in params if not isinstance(k, str)]
    if bad:
        raise UsageError(f"params: parameter names are strings, got {bad[0]!r}")
    return dict(params)


def _cluster(cluster: Any) -> Any:
    """The nodes (or the Cluster, for Ray's prices) ``cluster`` gives; None: this machine."""
    if cluster is None:
        return None
    from podium.model.cluster import Cluster

    if isinstance(cluster, Cluster):
        return cluster
    if isinstance(cluster, str | Path):
        from podium.load.cluster import load_cluster

        return load_cluster(cluster)
    raise UsageError(
        f"cluster: expected a podium.Cluster or a cluster file path, got {type(cluster).__name__}"
    )


def _executor(cluster: Any, ray: str | None) -> Any:
    if ray is not None:
        from podium.executors.ray import RayExecutor

        return RayExecutor(ray, cluster=cluster)
    from podium.executors.local import LocalExecutor, detect_node

    return LocalExecutor(list(cluster.nodes) if cluster is not None else [detect_node()])
