"""Applying journaled batches to the store, and recovering the journals of writers that are gone.

Invariants:
- Batches are applied in journal order, consecutive batches of one run in one transaction; a
  batch already in the store (a replay after a crash) is skipped. A batch that drops results
  (``TaskInvalidated``, ``TaskCleared``) starts a transaction of its own: a transaction deletes
  before it inserts, so a result committed before it in the same one would survive.
- Only journals whose lock is free are read (a live writer holds its own), and one is deleted
  only once everything readable in it is in the store and everything else is in a
  ``<journal>.damaged`` file (mode 0600) beside it.
- Damage never passes silently: each damaged span is kept, reported on stderr and noted on the
  runs it may have touched (``attention``). Records after it are recovered, but a run's log stays
  gap-free (``fold`` refuses gaps): a later record of a run that may have lost events is applied
  only if it continues that run's log exactly; otherwise it is kept aside with the damage.
- Journals of older versions (pickled records) are never read: one with records left in it
  stops the store with a message saying what to do; an empty one is deleted.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import struct
import time
from collections.abc import Sequence
from itertools import chain
from pathlib import Path

from podium.errors import ConflictError, NotFoundError, StoreError
from podium.model.events import DROPS_RESULT
from podium.store import codec
from podium.store import journal_format as jf
from podium.store.contracts import RowStore
from podium.store.files import warn, write_private

#: One appended batch: (run_id, event rows, tagged result rows, history rows).
Batch = tuple[str, list[codec.EventRow], list[codec.ResultRow], list[codec.HistoryRow]]
_chain = chain.from_iterable


def apply_batches(inner: RowStore, batches: Sequence[Batch]) -> None:
    """Apply batches in order, merging consecutive batches of one run into one transaction.
    A batch already in the inner store (a replay after a crash) is skipped."""
    i = 0
    while i < len(batches):
        run_id = batches[i][0]
        j = i
        while j < len(batches) and batches[j][0] == run_id and (j == i or not _drops(batches[j])):
            j += 1
        group = batches[i:j]
        merged = (
            run_id,
            list(_chain([b[1] for b in group])),
            list(_chain([b[2] for b in group])),
            list(_chain([b[3] for b in group])),
        )
        try:
            _apply_retrying(inner, merged)
        except ConflictError:  # part of it was applied before a crash: go batch by batch
            for b in group:
                with contextlib.suppress(ConflictError, NotFoundError):
                    _apply_retrying(inner, b)
        i = j


def _drops(batch: Batch) -> bool:
    """Whether the batch drops committed results (its events invalidate or clear tasks)."""
    return any(r[2] in DROPS_RESULT for r in batch[1])


def _apply_retrying(inner: RowStore, batch: Batch) -> None:
    for pause in (0.01, 0.05, 0.2, 1.0, 2.0, None):
        try:
            inner.append_rows(*batch)
            return
        except StoreError:
            if pause is None:
                raise
            time.sleep(pause)


def recover(inner: RowStore, directory: Path, skip: Path | None = None) -> int:
    """Apply the journals of writers that are gone (their lock is free) and delete them.
    Returns how many batches were applied."""
    count = 0
    for path in sorted(directory.glob("*.journal")):
        if skip is not None and path == skip:
            continue
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                continue  # its writer is alive
            data = path.read_bytes()
            if data.startswith(jf.LEGACY_MAGIC):
                _legacy(path, data)
            else:
                count += _recover(inner, path, data)
            path.unlink()
        finally:
            os.close(fd)
    return count


def _legacy(path: Path, data: bytes) -> None:
    """An older version's journal: deleted if it holds nothing to apply (its first record length
    is zero), else refused; its records are pickles and are never read."""
    first = struct.unpack_from("<I", data, len(jf.LEGACY_MAGIC))[0] if len(data) >= 12 else 0
    if first:
        raise StoreError(
            f"journal {path} was left by an older Podium in a format this version never reads "
            "(pickles, which would run code if the file was planted): to apply it, open the store "
            "once with that version (for example `podium runs`), or delete the file to drop the "
            "batches it holds; then try again"
        )


def _recover(inner: RowStore, path: Path, data: bytes) -> int:
    """Apply what is intact in one journal file; keep aside and report what is not."""
    scan = jf.scan(data)
    workflows: dict[str, str | None] = {}
    last: dict[str, int] = {}  # the highest seq of each run in batches taken so far
    suspect: set[str] = set()  # runs that may have lost events to damage
    every_run = False  # damage that names no run: every run may have lost events
    held: list[int] = []  # records kept aside
    batches: list[Batch] = []
    for i, (run_id, rows, results) in enumerate(scan.records):
        for _, _, named in scan.damaged_before(i):
            every_run = every_run or named is None
            suspect.update([named] if named is not None else [])
        if run_id not in workflows:
            workflows[run_id] = _workflow(inner, run_id)
        wf = workflows[run_id]
        risky = every_run or run_id in suspect
        if wf is None or (risky and (not rows or not _continues(inner, run_id, rows[0][1], last))):
            held.append(i)
            suspect.add(run_id)  # its log now stops here: nothing later of it can follow
            continue
        events = [codec.row_to_event(r[1:]) for r in rows]
        batches.append((run_id, rows, results, codec.history_rows(wf, run_id, events)))
        if rows:
            last[run_id] = max(r[1] for r in rows)
    apply_batches(inner, batches)
    if scan.damaged or held:
        every_run = every_run or any(r is None for _, _, r in scan.damaged)
        damaged = {r for _, _, r in scan.damaged if r is not None}
        _report(inner, path, data, scan, held, suspect | damaged | (set(workflows) if every_run else set()))
    return len(batches)


def _workflow(inner: RowStore, run_id: str) -> str | None:
    try:
        return inner.get_run(run_id).workflow
    except NotFoundError:  # no such run: a record that cannot be ours
        return None


def _continues(inner: RowStore, run_id: str, first: int, last: dict[str, int]) -> bool:
    """Whether a batch starting at seq ``first`` continues the run's log with no gap: the seq
    before it is in a batch taken from this journal, or already in the store (then the damaged
    record before it had been applied before its writer died)."""
    if first == 1 or last.get(run_id) == first - 1:
        return True
    return any(e.seq == first - 1 for e in inner.events(run_id, after_seq=first - 2))


def _report(inner: RowStore, path: Path, data: bytes, scan: jf.Scan, held: list[int], runs: set[str]) -> None:
    """Keep the damaged spans and the held records in ``<journal>.damaged``, warn, and note the
    runs (those the store knows) as needing attention."""
    spans = [(s, e, "damaged") for s, e, _ in scan.damaged] + [(*scan.spans[i], "not applied") for i in held]
    kept = path.with_suffix(".damaged")
    parts = []
    for start, end, what in sorted(spans):
        parts += [f"# {what}: bytes {start}-{end} of {path.name}\n".encode(), data[start:end], b"\n"]
    write_private(kept, b"".join(parts))
    size = sum(e - s for s, e, _ in scan.damaged)
    message = (
        f"journal {path.name} had {len(scan.damaged)} damaged span(s) ({size} bytes)"
        + (f" and {len(held)} later batch(es) that would leave a gap in a run's log" if held else "")
        + f"; kept in {kept}. The events in them are not in the run's log: check it (podium show)"
        " before resuming it (a resume runs their tasks again)"
    )
    warn(message)
    known = sorted(r for r in runs if _workflow(inner, r) is not None)
    for run_id in known:
        inner.note_attention(run_id, message)
