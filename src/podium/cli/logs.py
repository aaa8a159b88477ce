"""`podium logs RUN [TASK] [--attempt N] [--follow]`: what task attempts wrote.

Prints the stored log of each attempt (secrets masked; at most the last ``LOG_LIMIT`` bytes of
an attempt, after a note saying how much was cut before them), each under a header naming the
task and attempt, in the order the attempts first wrote. ``--follow`` keeps printing what
running attempts write, as the orchestrator stores it (about every half second), until the run
ends. Invariants: nothing is written to the store; an unknown run, task or attempt is a one-line
error (exit 2).
"""

from __future__ import annotations

import time
from typing import Any

import click

from podium.cli import cli
from podium.cli.stores import store_option
from podium.errors import NotFoundError, UsageError
from podium.model import states as st
from podium.model.logs import LogRecord, cut_note

#: Seconds between reads of the store while following.
FOLLOW_POLL = 0.5
_ACTIVE = frozenset({st.RUN_CREATED_STATE, st.RUN_RUNNING})


@cli.command("logs")
@click.argument("run_id")
@click.argument("task", required=False)
@click.option("--attempt", type=click.IntRange(min=1), help="Only this attempt of TASK (1 is the first).")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new output until the run ends.")
@store_option
def logs_cmd(run_id: str, task: str | None, attempt: int | None, follow: bool, store_url: str | None) -> None:
    """Print what the run's task attempts wrote (stdout, stderr, logging), or only TASK's."""
    from podium.cli.stores import open_cli_store as _store

    if attempt is not None and task is None:
        raise UsageError("--attempt needs a TASK")
    store = _store(store_url, read_only=True)
    try:
        store.get_run(run_id)
        if task is not None:
            from podium.server.data import check_task

            ran = check_task(store, run_id, task)
            if attempt is not None and attempt > ran:
                raise NotFoundError(f"task {task!r} of run {run_id!r} ran {ran} attempt(s), not {attempt}")
        printer = _Printer(headers=attempt is None)
        while True:
            active = follow and store.get_run(run_id).status in _ACTIVE
            for tid, att, size in store.logs.index(run_id):
                if (task is None or tid == task) and (attempt is None or att == attempt):
                    printer.show(tid, att, size, lambda t=tid, a=att: store.logs.get(run_id, t, a))
            if not active:
                break
            time.sleep(FOLLOW_POLL)
    finally:
        store.close()
    if not printer.newline:
        click.echo()
    if not printer.seen:
        what = (f"task {task!r}" + (f" attempt {attempt}" if attempt else "")) if task else f"run {run_id}"
        click.echo(f"no output was captured for {what}", err=True)


class _Printer:
    """Prints each attempt's log, and when following only what was added since (a log whose
    start was cut meanwhile is caught up through the count of bytes cut)."""

    def __init__(self, headers: bool) -> None:
        self.headers = headers
        self.sizes: dict[tuple[str, int], int] = {}  # stored size last seen
        self.ends: dict[tuple[str, int], int] = {}  # bytes of the whole output printed so far
        self.last: tuple[str, int] | None = None
        self.seen = False
        self.newline = True

    def show(self, task: str, attempt: int, size: int, read: Any) -> None:
        key = (task, attempt)
        if self.sizes.get(key) == size:
            return
        log: LogRecord | None = read()
        if log is None:
            return
        self.sizes[key] = size
        raw = log.text.encode("utf-8", "replace")
        start = self.ends.get(key, 0)
        head = ""
        if start < log.cut:  # bytes never printed were cut before we read them
            head = cut_note(log.cut - start) if start else cut_note(log.cut)
            start = log.cut
        self.ends[key] = log.cut + len(raw)
        text = head + raw[start - log.cut :].decode("utf-8", "replace")
        if not text:
            return
        if self.headers and self.last != key:
            click.echo(("" if self.newline else "\n") + f"==> {task} (attempt {attempt}) <==")
        self.last, self.seen = key, True
        click.echo(text, nl=False)
        self.newline = text.endswith("\n")
