"""Live progress and summaries for the terminal, fed only by engine events (a hook).

Invariants: the hook does O(batch) work on the engine's thread (it counts, never renders);
rendering happens on rich's refresh thread from a snapshot; the summary is computed from the
folded view, so ``podium show`` prints the same table for a finished run as ``podium run``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from podium.cli.detail import failure_lines, wide_console
from podium.cli.mapnotes import is_item, map_notes
from podium.cli.terminal import safe
from podium.model import events as ev
from podium.model import states as st
from podium.model.events import Event
from podium.model.resources import format_size

_STYLE = {
    st.SUCCEEDED: "green",
    st.FAILED: "red",
    st.RUNNING: "cyan",
    st.SKIPPED: "dim",
    st.CANCELLED: "yellow",
    st.RETRYING: "magenta",
}


class Progress:
    """A hook that keeps counts, and a live line: done / running / failed / pending, ETA."""

    def __init__(self, workflow: Any, run_id: str, live: bool = True) -> None:
        self.workflow = workflow
        self.run_id = run_id
        self.total = len(workflow.tasks)
        self.view: Any = None
        self.t0 = time.monotonic()
        self.live: Live | None = (
            Live(self, console=Console(stderr=True), refresh_per_second=4, transient=True) if live else None
        )
        self.items: dict[str, int] = {}  # map -> its items (a map expanded again counts once)

    @property
    def expanded(self) -> int:
        return sum(self.items.values())

    def hook(self, events: Sequence[Event], view: Any) -> None:
        self.view = view
        for e in events:
            if e.type == ev.TASK_EXPANDED and e.task_id is not None:
                self.items[e.task_id] = int(e.data.get("count", 0))

    def __enter__(self) -> Progress:
        self.t0 = time.monotonic()
        if self.live is not None:
            self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.__exit__(None, None, None)

    def __rich__(self) -> Text:
        view = self.view
        counts = _counts(view) if view is not None else {}
        done = counts.get(st.SUCCEEDED, 0) + counts.get(st.SKIPPED, 0)
        total = max(self.total + self.expanded, 1)
        failed = counts.get(st.FAILED, 0)
        running = counts.get(st.RUNNING, 0)
        pending = max(0, total - done - failed - running - counts.get(st.CANCELLED, 0))
        elapsed = time.monotonic() - self.t0
        eta = "?" if done == 0 else _dur(elapsed * (total - done) / done)
        bar_w = 30
        filled = int(bar_w * done / total)
        return Text.assemble(
            (f"{safe(self.run_id)} ", "bold"),
            ("█" * filled + "░" * (bar_w - filled), "green"),
            f" done {done}/{total}  ",
            (f"running {running}  ", "cyan"),
            (f"failed {failed}  ", "red" if failed else ""),
            f"pending {pending}  elapsed {_dur(elapsed)}  ETA {eta}",
        )


def _counts(view: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for t in list(view.tasks.values()):
        if t.children is not None:  # a map is counted through its items
            continue
        out[t.state] = out.get(t.state, 0) + 1
    return out


def _dur(s: float | None) -> str:
    if s is None:
        return "-"
    if s < 1:
        return f"{s * 1000:.0f}ms"
    if s < 120:
        return f"{s:.1f}s"
    return f"{int(s // 60)}m{int(s % 60):02d}s"


def task_table(view: Any, limit: int = 200, usage: dict[str, Any] | None = None) -> Table:
    """The tasks of a run; with ``usage`` (task id -> its last attempt's ``Usage``), what the
    last attempt measurably used: CPU seconds and peak memory."""
    cols = ("task", "status", "attempts", "duration", "node", "resources")
    used = ("cpu used", "peak memory") if usage is not None else ()
    table = Table(*cols, *used, "note", title="tasks")
    maps = map_notes(view.tasks.values())
    # a map's items are summed up on its row (failed ones are listed below the table)
    rows = [t for t in view.tasks.values() if not maps or not is_item(t.task_id)]
    for t in rows[:limit]:
        res = t.resources or {}
        desc = " ".join(f"{k}={format_size(v)}" if k == "memory" else f"{k}={v:g}" for k, v in res.items())
        note = ""
        if t.state == st.SKIPPED and t.skip_reason:
            note = safe(t.skip_reason)
        elif t.cached:
            note = "cached"
        elif t.children is not None:
            note = maps.get(t.task_id) or f"map of {t.children}"
        table.add_row(  # Text, not str: a name from a spec is never read as rich markup
            Text(safe(t.task_id)),
            Text(t.state, style=_STYLE.get(t.state, "")),
            str(t.attempt),
            _dur(t.duration),
            Text(safe(_where(t))),
            Text(safe(desc or "-")),
            *(_used(usage.get(t.task_id)) if usage is not None else ()),
            Text(note),
        )
    if len(rows) > limit:
        table.add_row(f"... {len(rows) - limit} more", *[""] * (len(cols) + len(used)))
    return table


def _used(u: Any) -> tuple[str, str]:
    if u is None:
        return "-", "-"
    cpu = f"{u.cpu_time:.3f} s" if u.cpu_time is not None else "-"
    peak = format_size(u.peak_memory) if u.peak_memory is not None else "-"
    return f"{cpu} ({u.source})" if u.source and cpu != "-" else cpu, peak


def _where(t: Any) -> str:
    """Where a task's last attempt ran: its node and the GPUs it held; a gang's workers."""
    if t.ranks:
        gpus = "|".join(",".join(str(g) for g in r[1]) for r in t.ranks)
        nodes = ",".join(dict.fromkeys(str(r[0]) for r in t.ranks))
        return f"{len(t.ranks)} workers on {nodes}" + (f" gpu {gpus}" if any(r[1] for r in t.ranks) else "")
    where = t.node or "-"
    return f"{where} gpu {','.join(str(g) for g in t.gpus)}" if t.gpus else where


def print_summary(result: Any) -> None:
    """The final table of a run and its T, R, F."""
    s = result.summary
    console = wide_console()
    line = Text.assemble(
        (f"run {safe(result.run_id)} {result.status}", "bold green" if result.ok else "bold red"),
        f"   T = {s.makespan:.3f} s{_wall(s)}   R = {s.cost:.6f}"
        f"   F = {s.alpha:g}*T + {s.beta:g}*R = {s.objective:.4f}",
    )
    console.print(task_table(result.view))
    for failed in failure_lines(result.view, result.run_id):  # one line each, however long: grep-able
        console.print(failed, soft_wrap=True)
    console.print(line)


def print_view(record: Any, view: Any, usage: dict[str, Any] | None = None) -> None:
    """What ``podium show`` prints for a run read back from the store (``usage``: task id ->
    its last attempt's measured ``Usage``)."""

    console = wide_console()
    console.print(
        Text(safe(f"run {record.run_id}  workflow {record.workflow}  status {record.status}"), style="bold")
    )
    console.print(task_table(view, usage=usage if usage is not None else {}))
    for line in failure_lines(view, record.run_id):
        console.print(line, soft_wrap=True)
    s = view_summary(view)
    console.print(f"T = {s.makespan:.3f} s{_wall(s)}   R = {s.cost:.6f}   F = {s.objective:.4f}")


def _wall(s: Any) -> str:
    """`` (wall W s)`` when the run's wall time is not its T (it was resumed after a stop)."""
    return f" (wall {s.wall:.3f} s)" if s.wall - s.makespan > 0.0005 else ""


def view_summary(view: Any) -> Any:
    """T, R and F of a run read back from the store, at the prices and objective it recorded."""
    from podium.runtime.reading import view_summary as summary

    return summary(view)
