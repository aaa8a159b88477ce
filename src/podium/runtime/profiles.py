"""Task profiles of a workflow read from the store, and what the engine learns from them.

``profiles(store, workflow)`` reads the event logs of the workflow's newest ``PROFILE_RUNS``
runs (oldest first, so each task's newest samples come last) into ``learn.Sample``s per task,
at most ``learn.fit.MAX_SAMPLES`` per task and ``MAX_EVENTS`` events in all (a bound on what a
run's start reads). ``Learned`` holds the fitted models: ``estimates()`` (p50 seconds at speed
1, per task with enough samples) for the planner's one rule, ``at(name, kwargs)`` for the
size-aware estimate a task starts with, and ``right_sized(workflow)`` for ``--right-size``.

Invariants: the event log is the only source (no second history to drift from it); reading
never writes; a run in progress is read like any other (its ended attempts are samples).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from podium.learn import Prediction, Sample, input_size, samples_of, suggest
from podium.learn.fit import MAX_SAMPLES, Model, fit
from podium.model.task import Const, Param
from podium.model.workflow import Workflow

#: How many of a workflow's newest runs its profiles come from.
PROFILE_RUNS = 10
#: Events read at most when building profiles.
MAX_EVENTS = 200_000
#: Runs looked through (all workflows) to find the workflow's newest.
SCAN_RUNS = 1000


def profiles(
    store: Any, workflow: str, runs: int = PROFILE_RUNS, skip: str | None = None
) -> dict[str, list[Sample]]:
    """Task name -> its samples, oldest first, from the newest ``runs`` runs of ``workflow``
    (``skip``: a run id to leave out, the run being started)."""
    ids = [r.run_id for r in store.list_runs(SCAN_RUNS) if r.workflow == workflow and r.run_id != skip][:runs]
    out: dict[str, list[Sample]] = {}
    budget = MAX_EVENTS
    for run_id in reversed(ids):
        if budget <= 0:
            break
        events = store.events(run_id)
        budget -= len(events)
        for name, samples in samples_of(events).items():
            out.setdefault(name, []).extend(samples)
    return {name: s[-MAX_SAMPLES:] for name, s in out.items()}


class Learned:
    """The models fitted on a workflow's profiles (made once per run start)."""

    def __init__(self, samples: Mapping[str, list[Sample]]) -> None:
        self.samples = dict(samples)
        self.models: dict[str, Model] = {}
        for name, ss in self.samples.items():
            m = fit(ss)
            if m is not None:
                self.models[name] = m

    def estimates(self, sizes: Mapping[str, float] | None = None) -> dict[str, float]:
        """p50 duration at speed 1 of every task with enough samples, at its input size when
        known before the run (``known_sizes``), else at its typical size."""
        sizes = sizes or {}
        return {name: m.predict(sizes.get(name)).p50 for name, m in self.models.items()}

    def sized(self) -> dict[str, Model]:
        """The models that depend on input size (the loop asks them at each start)."""
        return {name: m for name, m in self.models.items() if m.slope}

    def at(self, name: str, kwargs: Mapping[str, Any]) -> Prediction | None:
        m = self.models.get(name)
        return None if m is None else m.predict(input_size(kwargs) if m.slope else None)

    def right_sized(self, workflow: Workflow, margin: float = 1.2) -> tuple[Workflow, dict[str, Any]]:
        """``workflow`` with the cpu and memory requests of every task that has enough
        measured samples replaced by the suggestions, and the changes (name -> suggestion)."""
        specs, changed = [], {}
        for name, spec in workflow.tasks.items():
            s = suggest(self.samples.get(name, ()), margin)
            res = spec.resources
            new = dataclasses.replace(
                res,
                cpu=s.cpu if s.cpu is not None else res.cpu,
                memory=s.memory if s.memory is not None else res.memory,
            )
            if new != res:
                changed[name] = s
                spec = dataclasses.replace(spec, resources=new)
            specs.append(spec)
        if not changed:
            return workflow, changed
        wf = workflow
        return Workflow.build(
            wf.name, specs, wf.params.values(), wf.objective, wf.fail_fast, wf.description
        ), changed


def known_sizes(workflow: Workflow, params: Mapping[str, Any]) -> dict[str, float]:
    """The input size (``learn.input_size``) of every task whose arguments are all constants
    or run parameters, so known before it runs (the planner's estimates use it)."""
    out: dict[str, float] = {}
    for name, spec in workflow.tasks.items():
        if spec.map_over is not None or not spec.args:
            continue
        kwargs: dict[str, Any] = {}
        for k, a in spec.args.items():
            if isinstance(a, Const):
                kwargs[k] = a.value
            elif isinstance(a, Param) and a.name in params:
                kwargs[k] = params[a.name]
            else:
                break
        else:
            size = input_size(kwargs)
            if size is not None:
                out[name] = size
    return out
