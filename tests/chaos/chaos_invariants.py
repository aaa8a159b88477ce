"""The one invariant checker every chaos scenario runs, and the suite's fault counters.

``check_run`` reads a run back from its store (a fresh fold of the durable log, never the
engine's memory) and the side-effect log its tasks wrote, and asserts:

1. the run ended in the expected state (``succeeded`` once faults stop);
2. each task has at most one committed result (counted in the results table itself when the
   SQLite file is given), committed by the attempt its ``TaskSucceeded`` names;
3. no committed task ran again: the committed attempt has exactly one side-effect line, and
   no line of that task is later than its commit or belongs to a later attempt;
4. every result verifies (``ResultRecord.verify``) and decodes to what the task returns;
5. every transition in the log is legal (``fold`` checks each against the state table);
6. no task ran without a durable start: each side-effect line follows a ``TaskStarted`` of its
   task in the log (and, when the store recorded when each event became durable, follows
   that moment too).

``assert_no_leftovers`` asserts that no process is left behind: no child of the test
process, no process whose command line mentions the scenario's temp dir, and no process
carrying the scenario's tag in its environment (task workers inherit it).

Side-effect lines are assigned to attempts by time: a line belongs to the latest attempt of
its task whose ``TaskStarted`` was appended before the line was written (event times and
line times both come from the machine's wall clock).
"""

from __future__ import annotations

import bisect
import collections
import os
import sqlite3
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from podium.model import events as ev
from podium.model.events import Event
from podium.runtime import codec
from podium.runtime.view import RunView, fold
from podium.types import Store

#: Environment variable that marks every process a scenario starts (workers inherit it).
TAG_ENV = "PODIUM_CHAOS_TAG"

#: Counters of the whole chaos session, printed by ``conftest.pytest_terminal_summary``.
STATS: collections.Counter[str] = collections.Counter()
STAT_LABELS = (
    ("orchestrator_kills", "orchestrator kills"),
    ("worker_kills", "worker kills"),
    ("store_errors", "injected store errors"),
    ("timeouts", "timeouts"),
    ("oom_retries", "OOM retries"),
    ("runs_completed", "runs completed"),
    ("reexecutions", "re-executions of committed tasks"),
)


def summary_line(seed: int) -> str:
    counts = ", ".join(f"{label} {STATS[key]}" for key, label in STAT_LABELS)
    return f"chaos summary (seed {seed}): {counts}"


@dataclass(frozen=True)
class Line:
    """One side-effect line: a task body ran (in process ``pid``) at ``ns`` (wall clock)."""

    task: str
    ns: int
    pid: int


def read_effects(path: Path) -> list[Line]:
    if not path.exists():
        return []
    out = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        task, ns, pid = raw.split()
        out.append(Line(task, int(ns), int(pid)))
    return out


@dataclass
class Verdict:
    """What ``check_run`` found: the folded view and the failure counts of the log."""

    run_id: str
    view: RunView
    events: list[Event]
    committed: dict[str, int]
    reexecutions: int = 0
    kinds: collections.Counter[str] = field(default_factory=collections.Counter)
    retried_kinds: collections.Counter[str] = field(default_factory=collections.Counter)


def _error_kind(e: Event) -> str | None:
    err = e.data.get("error") if e.data else None
    return err.get("kind") if isinstance(err, Mapping) else None


def check_run(
    store: Store,
    run_id: str,
    effects: Path,
    *,
    expect: str = "succeeded",
    db: Path | None = None,
    durable_ns: Mapping[int, int] | None = None,
    returns_name: bool = True,
) -> Verdict:
    """Assert every invariant of the module docstring for one run; count what the log shows."""
    events = store.events(run_id)
    view = fold(events)  # raises IllegalTransition on any illegal or out-of-order event
    assert view.state == expect, f"run {run_id}: ended {view.state!r}, expected {expect!r}"

    # 2. at most one committed result per task, by the attempt the log says succeeded
    succeeded: dict[str, Event] = {}
    for e in events:
        if e.type == ev.TASK_SUCCEEDED and e.task_id is not None:
            assert e.task_id not in succeeded, f"run {run_id}: {e.task_id} succeeded twice in the log"
            succeeded[e.task_id] = e
    if db is not None:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            dup = con.execute(
                "SELECT task_id, COUNT(*) FROM results WHERE run_id = ? GROUP BY task_id HAVING COUNT(*) > 1",
                (run_id,),
            ).fetchall()
        finally:
            con.close()
        assert not dup, f"run {run_id}: tasks with several committed results: {dup}"
    results = store.results(run_id)
    committed: dict[str, int] = {}
    for tid, rec in results.items():
        assert rec.verify(), f"run {run_id}: result of {tid} fails its checksum"
        assert tid in succeeded, f"run {run_id}: {tid} has a result but no TaskSucceeded"
        assert rec.attempt == succeeded[tid].attempt, (
            f"run {run_id}: result of {tid} is from attempt {rec.attempt}, "
            f"the log says attempt {succeeded[tid].attempt} succeeded"
        )
        if returns_name:
            assert codec.decode(rec) == tid, f"run {run_id}: result of {tid} is {codec.decode(rec)!r}"
        committed[tid] = rec.attempt
    if expect == "succeeded":
        for tid, tv in view.tasks.items():
            assert tv.state == "succeeded", f"run {run_id}: {tid} is {tv.state}"
        missing = [t for t in view.tasks if t not in committed]
        assert not missing, f"run {run_id}: succeeded tasks without a committed result: {missing[:5]}"

    # 3 and 6. side effects against durable starts and commits
    starts: dict[str, list[tuple[float, int, int]]] = collections.defaultdict(list)
    for e in events:
        if e.type == ev.TASK_STARTED and e.task_id is not None:
            starts[e.task_id].append((e.ts, e.attempt, e.seq))
    lines_of: dict[str, list[tuple[int, Line]]] = collections.defaultdict(list)  # task -> (attempt, line)
    problems: list[str] = []
    for line in read_effects(effects):
        own = starts.get(line.task, [])
        i = bisect.bisect_right([s[0] for s in own], line.ns / 1e9) - 1
        if i < 0:
            problems.append(f"{line.task} ran (pid {line.pid}) with no TaskStarted before it in the log")
            continue
        _ts, attempt, seq = own[i]
        if durable_ns is not None and seq in durable_ns and line.ns <= durable_ns[seq]:
            problems.append(
                f"{line.task} attempt {attempt} ran before its TaskStarted (seq {seq}) was durable"
            )
        lines_of[line.task].append((attempt, line))
    reexecutions = 0
    for tid, attempt in committed.items():
        commit_ns = succeeded[tid].ts * 1e9
        mine = [ln for a, ln in lines_of.get(tid, []) if a == attempt]
        if len(mine) != 1:
            problems.append(f"{tid}: committed attempt {attempt} has {len(mine)} side-effect lines, not 1")
        again = [(a, ln) for a, ln in lines_of.get(tid, []) if a > attempt or ln.ns > commit_ns]
        reexecutions += len(again) + max(0, len(mine) - 1)
        for a, ln in again:
            problems.append(f"{tid}: ran again (attempt {a}, pid {ln.pid}) after attempt {attempt} committed")
    STATS["reexecutions"] += reexecutions
    assert not problems, f"run {run_id}: {len(problems)} side-effect violations:\n" + "\n".join(problems[:20])

    verdict = Verdict(run_id, view, events, committed, reexecutions)
    for e in events:
        kind = _error_kind(e)
        if kind is None:
            continue
        if e.type in (ev.TASK_RETRYING, ev.TASK_FAILED):
            verdict.kinds[kind] += 1
        if e.type == ev.TASK_RETRYING:
            verdict.retried_kinds[kind] += 1
    return verdict


# ----------------------------------------------------------------------------- processes


def _mentions(p: psutil.Process, tag: str, tmp: str) -> bool:
    try:
        if any(tmp in part for part in p.cmdline()):
            return True
        return p.environ().get(TAG_ENV) == tag
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return False


def leftover_processes(tag: str, tmp: Path) -> list[str]:
    """Processes a scenario left behind, described for an assertion message."""
    me = os.getpid()
    out: list[str] = []
    for c in psutil.Process(me).children(recursive=True):
        try:
            out.append(f"child {c.pid} {c.status()} {' '.join(c.cmdline())[:120]}")
        except psutil.NoSuchProcess:
            continue
    for p in psutil.process_iter():
        if p.pid == me:
            continue
        if _mentions(p, tag, str(tmp)):
            try:
                out.append(f"tagged {p.pid} {p.status()} {' '.join(p.cmdline())[:120]}")
            except psutil.NoSuchProcess:
                continue
    return sorted(set(out))


def assert_no_leftovers(tag: str, tmp: Path, within: float = 15.0) -> None:
    """No process of the scenario remains (killed workers get ``within`` seconds to exit: a
    bound against hangs, not a timing requirement)."""
    deadline = time.monotonic() + within
    left = leftover_processes(tag, tmp)
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = leftover_processes(tag, tmp)
    assert not left, "processes left behind:\n" + "\n".join(left)


def count_faults(verdict: Verdict) -> None:
    """Add a run's timeouts and OOM retries to the session counters."""
    STATS["timeouts"] += verdict.kinds["timeout"]
    STATS["oom_retries"] += verdict.retried_kinds["oom"]


__all__ = [
    "STATS",
    "TAG_ENV",
    "Line",
    "Verdict",
    "assert_no_leftovers",
    "check_run",
    "count_faults",
    "leftover_processes",
    "read_effects",
    "summary_line",
]
