"""Failure detail for the terminal: what the run summary says about each failed task, and what
``podium show RUN TASK`` prints about one task.

The summary names, for each failed task, the exception's type and message, the user's frame
(``file:line in function``) and the commands that show more. ``podium show RUN TASK`` prints
the task's row, every attempt with its outcome (a failure kind), the resources it was given and
what it used where the executor measured it, the full traceback of each failed attempt and the
tail of the task's captured output. Invariants: everything printed comes from the store through
``podium.server.data`` (the one place runs are read, which redacts secrets); nothing here
writes to the store.
"""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.text import Text

from podium.cli.terminal import safe
from podium.model import states as st
from podium.model.resources import format_size

#: Failed tasks the summary details; the others are counted.
SHOWN_FAILURES = 20


def failure_lines(view: Any, run_id: str | None = None) -> list[Text]:
    """For each failed task: ``task failed [kind]: Type: message``, its frame, and (given the
    run id) where to see its traceback and output."""
    failed = [t for t in view.tasks.values() if t.state == st.FAILED and t.error]
    out: list[Text] = []
    for t in failed[:SHOWN_FAILURES]:
        err = t.error
        kind, typ, message = err.get("kind") or "user", err.get("type") or "Error", err.get("message") or ""
        head = f"{t.task_id} failed [{kind}]: "
        out.append(Text(safe(f"{head}{typ}: {message}"), style="red"))
        if err.get("frame"):
            out.append(Text(safe(f"    at {err['frame']}")))
    if len(failed) > SHOWN_FAILURES:
        out.append(Text(f"... and {len(failed) - SHOWN_FAILURES} more failed tasks", style="red"))
    if failed and run_id:
        first = failed[0].task_id
        out.append(
            Text(
                safe(f"traceback: podium show {run_id} {first}   output: podium logs {run_id} {first}"),
                style="dim",
            )
        )
    return out


def wide_console() -> Console:
    """Wide enough that a task's row stays on one line when the output is not a terminal."""
    c = Console()
    return c if c.is_terminal else Console(width=140)


def show_task(store: Any, run_id: str, task: str) -> None:
    """``podium show RUN TASK``: read the task's detail from ``store`` (then closed) and print it."""
    from podium.server.data import task_detail

    try:
        print_task(task_detail(store, run_id, task), wide_console())
    finally:
        store.close()


def print_task(detail: dict[str, Any], console: Console) -> None:
    """What ``podium show RUN TASK`` prints for a task's ``TaskDetail`` (``server.data``)."""
    d = detail
    console.print(
        Text(safe(f"task {d['task_id']}  status {d['status']}  attempts {d['attempts']}"), style="bold")
    )
    if d.get("skip_reason"):
        console.print(Text(safe(f"skipped: {d['skip_reason']}")))
    for a in d.get("attempts_detail") or []:
        took = _dur(a.get("duration"))
        outcome = a.get("outcome") or "running"
        line = safe(f"attempt {a['attempt']}: {outcome:<11} node {a.get('node') or '-'}")
        line += f"  started {_ts(a['started_at'])}  took {took}"
        console.print(Text(line, style="red" if outcome not in ("succeeded", "running") else ""))
        res = _resources(a.get("resources") or {})
        used = _usage(a.get("usage") or {})
        console.print(
            Text(safe(f"    resources requested {res or '-'}" + (f"; used {used}" if used else "")))
        )
        err = a.get("error")
        if err:
            console.print(Text(safe(f"    {err.get('type')}: {err.get('message')}"), style="red"))
            if err.get("frame"):
                console.print(Text(safe(f"    at {err['frame']}")))
            tb = safe(err.get("traceback") or "").rstrip()
            if tb:
                console.print(Text("    " + tb.replace("\n", "\n    ")), highlight=False)
    tail = d.get("log_tail") or ""
    if tail:
        console.print(Text("output (last lines):", style="bold"))
        console.print(Text(safe(tail.rstrip("\n"))), highlight=False, markup=False)
    else:
        console.print(Text("no captured output", style="dim"))


def _resources(res: dict[str, Any]) -> str:
    return " ".join(f"{k}={format_size(v)}" if k == "memory" else f"{k}={v:g}" for k, v in res.items())


def _usage(usage: dict[str, Any]) -> str:
    parts = []
    peak = usage.get("peak_memory")
    if peak:
        parts.append(f"peak memory {format_size(peak)}")
    if usage.get("cpu_time") is not None:
        parts.append(f"cpu {usage['cpu_time']:.3f}s")
    return ", ".join(parts)


def _dur(s: float | None) -> str:
    if s is None:
        return "-"
    return f"{s * 1000:.0f}ms" if s < 1 else f"{s:.2f}s"


def _ts(t: float | None) -> str:
    return "-" if t is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))
