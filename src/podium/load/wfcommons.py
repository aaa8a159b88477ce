"""WfCommons workflow instances (WfFormat JSON) in, as a ``PlanRequest``.

Two layouts are read:

- schema 1.4+ (``workflow.specification.tasks`` with ``id`` and ``parents``;
  ``workflow.execution.tasks`` with ``runtimeInSeconds``, optional ``coreCount`` and
  ``memoryInBytes``);
- the older 1.3 style (``workflow.tasks`` with ``id`` or ``name``, ``runtime`` or
  ``runtimeInSeconds``, ``parents``, optional ``cores`` and ``memory`` in KB).

Each task becomes a ``PlanTask`` with its runtime as duration, ``coreCount`` cpus (default 1) and
its memory when present. Task ids are kept as in the file.

Invariants: malformed files raise one ``SpecError`` listing every problem with its location.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from podium.errors import Problem, SpecError
from podium.model.problem import PlanRequest, PlanTask
from podium.model.resources import Resources


def load_wfcommons(path: str | Path) -> PlanRequest:
    src = str(path)
    try:
        doc = json.loads(Path(path).read_bytes())
    except RecursionError:
        raise SpecError("the JSON is nested too deeply", src) from None
    except UnicodeDecodeError as e:
        raise SpecError(f"not UTF-8 text (byte {e.start})", src) from None
    except OSError as e:
        raise SpecError(f"cannot read WfCommons file ({e.strerror or e})", src) from None
    except json.JSONDecodeError as e:
        raise SpecError(f"not valid JSON: {e.msg} at line {e.lineno} column {e.colno}", src) from None
    return parse_wfcommons(doc, src)


def parse_wfcommons(doc: Any, source: str = "<wfcommons>") -> PlanRequest:
    problems: list[Problem] = []
    wf = doc.get("workflow") if isinstance(doc, Mapping) else None
    if not isinstance(wf, Mapping):
        raise SpecError("expected a WfFormat object with a 'workflow' section", source)
    if isinstance(wf.get("specification"), Mapping):
        rows = _new_style(wf, problems)
    elif isinstance(wf.get("tasks"), list):
        rows = _old_style(wf, problems)
    else:
        raise SpecError("workflow: expected 'specification.tasks' (WfFormat 1.4+) or 'tasks' (1.3)", source)
    tasks: dict[str, PlanTask] = {}
    for tid, runtime, cores, memory, parents, where in rows:
        if tid in tasks:
            problems.append(Problem(where, f"duplicate task id {tid!r}"))
            continue
        try:
            res = Resources(cpu=float(cores), memory=int(memory))
            tasks[tid] = PlanTask(float(runtime), res, tuple(parents))
        except (TypeError, ValueError, OverflowError) as e:
            problems.append(Problem(where, f"{e} (runtime, cores or memory out of range)"))
    for tid, t in tasks.items():
        for p in t.deps:
            if p not in tasks:
                problems.append(Problem(f"task {tid}", f"unknown parent {p!r}"))
    if problems:
        raise SpecError(problems, source)
    req = PlanRequest(tasks)
    req.validate(source)
    return req


Row = tuple[str, float, float, float, list[str], str]


def _number(v: Any, where: str, what: str, problems: list[Problem], default: float | None = None) -> float:
    if v is None and default is not None:
        return default
    if isinstance(v, bool) or not isinstance(v, int | float) or v < 0:
        problems.append(Problem(where, f"{what} must be a number >= 0, got {v!r}"))
        return 0.0
    return float(v)


def _new_style(wf: Mapping[str, Any], problems: list[Problem]) -> list[Row]:
    spec = wf["specification"].get("tasks")
    exe = wf.get("execution", {}).get("tasks") if isinstance(wf.get("execution"), Mapping) else None
    if not isinstance(spec, list):
        problems.append(Problem("workflow.specification.tasks", "expected a list"))
        return []
    if not isinstance(exe, list):
        problems.append(Problem("workflow.execution.tasks", "expected a list (runtimes come from it)"))
        return []
    runs = {e.get("id"): e for e in exe if isinstance(e, Mapping)}
    rows: list[Row] = []
    for i, t in enumerate(spec):
        where = f"workflow.specification.tasks[{i}]"
        if not isinstance(t, Mapping) or not isinstance(t.get("id"), str):
            problems.append(Problem(where, "expected an object with a string 'id'"))
            continue
        tid = t["id"]
        e = runs.get(tid)
        if e is None:
            problems.append(Problem(where, f"task {tid!r} has no entry in workflow.execution.tasks"))
            continue
        ew = f"workflow.execution.tasks[{tid}]"
        runtime = _number(e.get("runtimeInSeconds"), ew, "runtimeInSeconds", problems)
        cores = _number(e.get("coreCount"), ew, "coreCount", problems, 1.0)
        memory = _number(e.get("memoryInBytes"), ew, "memoryInBytes", problems, 0.0)
        parents = t.get("parents", [])
        if not isinstance(parents, list) or not all(isinstance(p, str) for p in parents):
            problems.append(Problem(f"{where}.parents", "expected a list of task ids"))
            parents = []
        rows.append((tid, runtime, cores, memory, parents, where))
    return rows


def _old_style(wf: Mapping[str, Any], problems: list[Problem]) -> list[Row]:
    rows: list[Row] = []
    for i, t in enumerate(wf["tasks"]):
        where = f"workflow.tasks[{i}]"
        if not isinstance(t, Mapping):
            problems.append(Problem(where, "expected an object"))
            continue
        tid = t.get("id", t.get("name"))
        if not isinstance(tid, str):
            problems.append(Problem(where, "expected a string 'id' or 'name'"))
            continue
        rt = t.get("runtimeInSeconds", t.get("runtime"))
        runtime = _number(rt, where, "runtime", problems)
        cores = _number(t.get("cores", t.get("coreCount")), where, "cores", problems, 1.0)
        mem = t.get("memoryInBytes")
        memory = _number(mem, where, "memoryInBytes", problems, 0.0)
        if mem is None and t.get("memory") is not None:  # 1.3: memory in KB
            memory = 1024.0 * _number(t.get("memory"), where, "memory", problems)
        parents = t.get("parents", [])
        if not isinstance(parents, list) or not all(isinstance(p, str) for p in parents):
            problems.append(Problem(f"{where}.parents", "expected a list of task ids"))
            parents = []
        rows.append((tid, runtime, cores, memory, parents, where))
    return rows
