"""Standard Task Graph (STG) files in, and any plan request out as a runnable sleep workflow.

STG format (Tobita & Kasahara): line 1 is n, the number of real tasks; then n+2 lines
``id proc_time n_pred pred...`` (task 0 and n+1 are zero-time dummy entry and exit nodes);
lines starting with ``#`` are metadata. Task ids are kept as written in the file (strings);
each task needs one cpu.

``to_workflow(request, scale)`` turns a ``PlanRequest`` into a Workflow of ``sleep`` tasks
(``podium.load.stg:sleep``, registered in the task registry) lasting ``duration * scale``
seconds, with the same dependencies and resources.

Invariants: malformed files raise one ``SpecError`` listing every problem with its line.
"""

from __future__ import annotations

import time
from pathlib import Path

from podium.errors import Problem, SpecError
from podium.model.problem import PlanRequest, PlanTask
from podium.model.resources import Resources
from podium.model.task import TaskSpec
from podium.model.workflow import Workflow
from podium.registry import REGISTRY

SLEEP = "podium.load.stg:sleep"


def sleep(seconds: float) -> float:
    """Hold the worker for ``seconds`` (a stand-in body for benchmark tasks); returns it."""
    time.sleep(max(0.0, float(seconds)))
    return float(seconds)


REGISTRY.register(SLEEP, sleep)


def load_stg(path: str | Path) -> PlanRequest:
    src = str(path)
    try:
        text = Path(path).read_bytes().decode("utf-8")
    except OSError as e:
        raise SpecError(f"cannot read STG file ({e.strerror or e})", src) from None
    except UnicodeDecodeError as e:
        raise SpecError(f"not UTF-8 text (byte {e.start}): an STG file is text", src) from None
    return parse_stg(text, src)


def parse_stg(text: str, source: str = "<stg>") -> PlanRequest:
    problems: list[Problem] = []
    rows: list[tuple[int, list[str]]] = []
    for no, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        if s and not s.startswith("#"):
            rows.append((no, s.split()))
    if not rows:
        raise SpecError("empty STG file: expected the task count on the first line", source)
    no, head = rows[0]
    if len(head) != 1 or not head[0].isdigit():
        raise SpecError(f"line {no}: expected the task count n, got {' '.join(head)!r}", source)
    n = int(head[0])
    body = rows[1:]
    if len(body) != n + 2:
        problems.append(
            Problem(f"line {no}", f"declares {n} tasks, so {n + 2} task lines, found {len(body)}")
        )
    tasks: dict[str, PlanTask] = {}
    for no, f in body:
        where = f"line {no}"
        try:
            nums = [int(x) for x in f]
        except ValueError:
            problems.append(
                Problem(where, f"expected integers 'id time n_pred pred...', got {' '.join(f)!r}")
            )
            continue
        if len(nums) < 3 or nums[2] < 0 or len(nums) != 3 + nums[2]:
            problems.append(
                Problem(where, "expected 'id time n_pred' followed by exactly n_pred predecessor ids")
            )
            continue
        tid, ptime = str(nums[0]), nums[1]
        if ptime < 0:
            problems.append(Problem(where, f"processing time must be >= 0, got {ptime}"))
        if tid in tasks:
            problems.append(Problem(where, f"duplicate task id {tid}"))
        tasks[tid] = PlanTask(float(ptime), Resources(cpu=1.0), tuple(str(p) for p in nums[3:]))
    for tid, t in tasks.items():
        for d in t.deps:
            if d not in tasks:
                problems.append(Problem(f"task {tid}", f"unknown predecessor {d}"))
    if problems:
        raise SpecError(problems, source)
    req = PlanRequest(tasks)
    req.validate(source)
    return req


def to_workflow(request: PlanRequest, scale: float = 0.001, name: str = "stg") -> Workflow:
    """A runnable Workflow: each task sleeps ``duration * scale`` s, same deps and resources."""
    specs = [
        TaskSpec(
            name=tid,
            call=SLEEP,
            args={"seconds": t.duration * scale},
            resources=t.resources,
            expected_duration=t.duration * scale,
            after=t.deps,
        )
        for tid, t in request.tasks.items()
    ]
    return Workflow.build(name, specs)
