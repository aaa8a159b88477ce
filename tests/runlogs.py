"""Random legal event logs of whole runs, and the check that two views of a run are the same.

``random_log(seed)`` walks the state-transition table: tasks and maps queue, start, succeed
(some from the cache), fail, retry (some as free out-of-memory retries), are skipped, cancelled,
expanded, reset and invalidated; attempts carry nodes, resources, estimates, GPUs, gangs and
measured usage; the run is planned, crashes (a gap, then ``RunStarted`` again), fails, is
cancelled and resumed, and its services report their busy time at its end.
"""

from __future__ import annotations

import math
import random
from typing import Any

from podium.model import events as ev
from podium.model import states as st
from podium.model.events import Event
from podium.model.usage import USAGE_KEY
from podium.runtime.snapshot import FIELDS
from podium.runtime.view import RunView

_KINDS = ("user", "timeout", "worker_lost", "oom")
#: Forward steps are likelier than resets and cancellations, so runs get somewhere.
_WEIGHTS = {
    ev.TASK_RESET: 0.2,
    ev.TASK_CANCELLED: 0.2,
    ev.TASK_INVALIDATED: 0.2,
    ev.TASK_CLEARED: 0.2,
    ev.TASK_SKIPPED: 0.3,
    ev.TASK_STARTED: 3.0,
    ev.TASK_SUCCEEDED: 2.0,
    ev.TASK_QUEUED: 3.0,
}


def random_log(seed: int, tasks: int = 12) -> list[Event]:
    rng = random.Random(seed)
    out: list[Event] = []
    clock = [1000.0 + rng.random()]

    def add(typ: str, tid: str | None = None, attempt: int = 0, data: dict[str, Any] | None = None) -> None:
        clock[0] += rng.choice((0.001, 0.01, 0.5, 2.0))
        out.append(Event(len(out) + 1, typ, tid, attempt, clock[0], data or {}))

    add(ev.RUN_CREATED, data={"workflow": "w", "objective": {"alpha": 1.0, "beta": rng.choice((0.0, 2.0))}})
    names = [f"t{i}" for i in range(tasks)]
    maps = {f"m{i}" for i in range(rng.randint(0, 2))}
    names += sorted(maps)
    state: dict[str, str] = {}
    children: dict[str, int] = {}
    attempts: dict[str, int] = {}
    run = st.RUN_CREATED_STATE
    services = rng.sample(names, k=min(len(names), rng.randint(0, 2)))
    for _ in range(rng.randint(10, 25 * tasks)):
        if run != st.RUN_RUNNING:  # (re)start, after a crash or an end; sometimes with prices
            clock[0] += rng.choice((0.0, 50.0))
            data = {"prices": {"n1": {"cpu": 0.5}}} if rng.random() < 0.5 else {}
            add(ev.RUN_STARTED, data=data)
            run = st.RUN_RUNNING
            continue
        roll = rng.random()
        if roll < 0.02:
            add(ev.PLAN_MADE, data={"T": 1.0})
            continue
        if roll < 0.025:
            add(ev.SOURCE_CHANGED, data={"path": "flow.py", "sha256": "ab", "was": "cd"})
            continue
        if roll < 0.05:  # the orchestrator dies: nothing is written, the next start resumes
            run = st.RUN_FAILED if rng.random() < 0.5 else "crashed"
            if run == st.RUN_FAILED:
                secs = {s: rng.random() for s in services}
                add(rng.choice((ev.RUN_FAILED, ev.RUN_CANCELLED)), data={"services": secs} if secs else {})
            continue
        tid = rng.choice(names)
        s = state.get(tid, st.PENDING)
        a = attempts.get(tid, 0)
        options = [typ for (frm, typ) in st.TASK_TRANSITIONS if frm == s]
        if tid not in maps:
            options = [t for t in options if t != ev.TASK_EXPANDED]
        elif s == st.PENDING:
            options = [ev.TASK_EXPANDED, ev.TASK_SKIPPED]
        typ = rng.choices(options, [_WEIGHTS.get(o, 1.0) for o in options])[0]
        data: dict[str, Any] = {}
        if typ == ev.TASK_STARTED:
            a += 1
            data = {"node": rng.choice(("n1", "n2")), "res": {"cpu": float(rng.randint(1, 2))}}
            if rng.random() < 0.5:
                data["est"] = rng.choice((0.5, 1, None))
            if rng.random() < 0.2:
                data["gpus"] = [0]
                data["ranks"] = [["n1", [0]], ["n2", []]] if rng.random() < 0.5 else None
        elif typ == ev.TASK_SUCCEEDED:
            if s == st.QUEUED:
                data = {"cached": True}
            elif s == st.RUNNING:
                data = {"duration": rng.choice((0.25, 1, 3.5))}
                if rng.random() < 0.3:
                    data.update(started=clock[0] - 0.1, node="n3")
        elif typ in (ev.TASK_FAILED, ev.TASK_RETRYING):
            kind = rng.choice(_KINDS)
            error = {"kind": kind, "type": "ValueError", "message": f"bad {rng.randint(0, 9)}"}
            if rng.random() < 0.5:
                error["frame"] = "tasks.py:3 in f"
            data = {"error": error}
            if s == st.RUNNING:
                data["duration"] = 0.5
            if typ == ev.TASK_RETRYING and kind == "oom":
                data.update(free="oom", memory=2**30)
        elif typ == ev.TASK_SKIPPED:
            data = {"reason": rng.choice(("branch not taken", "upstream failed"))}
        elif typ == ev.TASK_EXPANDED:
            n = rng.randint(0, 4)
            data = {"count": n}
            names += [f"{tid}[{i}]" for i in range(n)]
            for i in range(n, children.get(tid) or 0):  # expanded again into fewer: items go
                state.pop(f"{tid}[{i}]", None)
                attempts.pop(f"{tid}[{i}]", None)
            children[tid] = n
        elif typ == ev.TASK_INVALIDATED:
            data = {"reason": "checksum"} if rng.random() < 0.5 else {}
        if s == st.RUNNING and typ != ev.TASK_RESET and rng.random() < 0.6:
            data[USAGE_KEY] = {
                "cpu_time": rng.random(),
                "peak_memory": rng.choice((0, 1 << 20, None)),
                "wall_time": 0.5,
                "source": rng.choice(("process", "thread")),
            }
        state[tid] = st.TASK_TRANSITIONS[(s, typ)]
        attempts[tid] = a
        add(typ, tid, a, data)
    if run == st.RUN_RUNNING and rng.random() < 0.7:
        secs = {s: round(rng.random(), 3) for s in services}
        add(rng.choice((ev.RUN_SUCCEEDED, ev.RUN_FAILED, ev.RUN_CANCELLED)), data={"services": secs})
    return out


_RUN = (
    "state",
    "last_seq",
    "created_at",
    "started_at",
    "finished_at",
    "meta",
    "plan",
    "last_ts",
    "span_start",
)


def assert_same_view(got: RunView, want: RunView) -> None:
    """Every field of the run and of each of its tasks (in the same order) is the same."""
    for f in _RUN:
        assert getattr(got, f) == getattr(want, f), f
    assert math.isclose(got.active, want.active, abs_tol=1e-9)
    assert list(got.tasks) == list(want.tasks)
    for tid, w in want.tasks.items():
        g = got.tasks[tid]
        for f in FIELDS:
            a, b = getattr(g, f), getattr(w, f)
            assert a == b and type(a) is type(b), (tid, f, a, b)
