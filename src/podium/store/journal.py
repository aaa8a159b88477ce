"""JournaledStore: durable appends at the cost of one memory copy, group-committed to a Store.

An engine appends a small batch per turn, and on a 2-core VM one SQLite commit costs
30-60 microseconds (two WAL frames, several ``fcntl`` locks) - more than the whole rest of a
no-op task. A journal makes the durable point one checksummed record copied into a shared
memory map of an append-only file (``MAP_SHARED``: the bytes are in the kernel's page cache
the moment the copy ends, so what survives a killed process is what a ``write(2)`` would have
left - the same guarantee as SQLite's WAL with ``synchronous=NORMAL``). The file's blocks are
allocated before they are mapped, so a full disk is a ``StoreError`` at that point, never a
fault during a copy. Unlike ``write(2)`` the copy does not release the GIL, which spares a
thread hand-off per append when two pool threads report completions. Batches are then copied
into the inner store in large transactions: by the appending thread itself once
``APPLY_BATCHES`` have gathered (no second thread competes for the GIL on the hot path), and
by a background thread when batches have waited ``APPLY_AGE`` seconds (so other readers never
lag long). Once every record is applied the journal is zeroed and reused from the start.

Invariants:
- ``append`` returns only after its record is in the journal: from then on the batch
  survives the process being killed, and is applied to the inner store exactly once (by this
  object's applier, or by ``recover`` in the next object opened on the same directory).
- Appends to one run come from one store object at a time: the first append to a run takes
  an exclusive lease (``flock`` on a per-run file) held until the run's final event or
  ``close``; another object then gets ``ConflictError``. Within the lease, duplicate seqs and
  second results are rejected at once, before anything is written (seqs that rise past the
  highest one written need no lookup; any other batch is checked against the whole run).
- Reads that must see this object's own appends (``events``, ``results``, ``durations``,
  ``cache_get``) first wait for the applier; other processes read the inner store and may lag
  by one apply interval.
- A record that fails its checksum (a torn copy at a crash) or a zero length ends the
  journal: everything before it is applied, nothing after it exists.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import mmap
import os
import pickle
import struct
import threading
import time
import uuid
import zlib
from collections import deque
from collections.abc import Sequence
from itertools import chain
from pathlib import Path
from typing import Any

from podium.errors import ConflictError, NotFoundError, StoreError
from podium.model.events import (
    RUN_CANCELLED,
    RUN_FAILED,
    RUN_SUCCEEDED,
    TASK_INVALIDATED,
    TASK_SUCCEEDED,
    Event,
    ResultRecord,
    RunRecord,
)
from podium.store import codec
from podium.types import Store

_HEADER = struct.Struct("<II")  # payload length, crc32
_dumps = pickle.dumps
_crc32 = zlib.crc32
_c_encode = codec.c_encode
_chain = chain.from_iterable
_MAGIC = b"PODIUMJ1"
_FINAL = frozenset({RUN_SUCCEEDED, RUN_FAILED, RUN_CANCELLED})
#: The appending thread applies pending batches itself once this many have gathered.
APPLY_BATCHES = 128
#: The background thread applies batches that have waited this long (seconds).
APPLY_AGE = 0.05
#: Bytes of journal file allocated up front (it doubles when a run writes more before applying).
JOURNAL_SPACE = 1 << 20
_NO_FALLOCATE = frozenset({errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS})


class _Run:
    """What this store object has written to one leased run: the highest seq, the tasks with a
    committed result, and the run's workflow (for history rows)."""

    __slots__ = ("last", "results", "workflow")

    def __init__(self, workflow: str, last: int, results: set[str]) -> None:
        self.workflow = workflow
        self.last = last
        self.results = results


class JournaledStore:
    """A ``Store`` whose appends go to a local journal and reach ``inner`` in the background."""

    def __init__(self, inner: Store, directory: str | os.PathLike[str]) -> None:
        self.inner = inner
        self.dir = Path(directory)
        try:
            (self.dir / "runs").mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreError(f"cannot create journal directory {self.dir}: {e.strerror}") from None
        self.recovered = recover(inner, self.dir)
        self.path = self.dir / f"{os.getpid()}-{uuid.uuid4().hex[:12]}.journal"
        try:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(self._fd, fcntl.LOCK_EX)  # held while alive: recovery leaves this file alone
            self._map = self._mapped(JOURNAL_SPACE)
        except OSError as e:
            raise StoreError(f"cannot open journal {self.path}: {e.strerror}") from None
        self._map[: len(_MAGIC)] = _MAGIC
        self._size = len(_MAGIC)
        self._write_lock = threading.Lock()
        self._pending: deque[Batch] = deque()  # journaled batches not yet in the inner store
        self._oldest = 0.0  # monotonic time the oldest pending batch was journaled
        self._apply_lock = threading.Lock()
        self._cv = threading.Condition()
        self._leases: dict[str, int] = {}  # run_id -> fd of its lock file
        self._runs: dict[str, _Run] = {}  # leased runs: what this object has written to each
        self._error: BaseException | None = None
        self._closed = False
        self._applier = threading.Thread(target=self._apply_loop, name="podium-journal", daemon=True)
        self._applier.start()

    # -- writing ----------------------------------------------------------------------------
    def append(self, run_id: str, events: Sequence[Event], results: Sequence[ResultRecord] = ()) -> None:
        if self._error is not None:
            raise StoreError(f"journal apply failed: {self._error}")
        if self._closed:
            raise StoreError("store is closed")
        with self._write_lock:
            run = self._runs.get(run_id)
            if run is None:
                run = self._lease(run_id)
            seen = run.results
            workflow = run.workflow
            # One pass over the events: encode, check seqs rise past the last one written (the
            # engine's case; anything else takes the exact check below), history rows, specials.
            rows: list[codec.EventRow] = []
            history: list[codec.HistoryRow] = []
            dropped: set[str] | None = None
            final = False
            last = top = run.last
            rising = True
            enc, join, add = _c_encode, "".join, rows.append
            try:
                for e in events:
                    seq, typ, task_id, attempt, ts, data = e
                    if seq <= last:
                        rising = False
                    else:
                        top = seq
                    last = seq
                    add((run_id, seq, typ, task_id, attempt, ts, join(enc(data, 0)) if data else "{}"))
                    if typ == TASK_SUCCEEDED:
                        d = data.get("duration")
                        if (
                            type(d) is float
                            and d - d == 0.0
                            and task_id is not None
                            and "max_rss" not in data
                        ):
                            name = task_id if task_id[-1:] != "]" else codec.task_name(task_id)
                            history.append((workflow, name, ts, run_id, seq, d, None))
                        else:  # ints, max_rss, odd values: the general path
                            history += codec.history_rows(workflow, run_id, (e,))
                    elif typ in _FINAL:
                        final = True
                    elif typ == TASK_INVALIDATED:
                        if dropped is None:
                            dropped = set()
                        dropped.add(task_id)  # type: ignore[arg-type]
            except (TypeError, ValueError, RecursionError):
                codec.event_rows(run_id, events)  # raises the one-line UsageError naming the event
                raise
            if not rising:
                top = self._check_seqs(run_id, run, events)
            result_rows = []
            if results:
                taken = []
                for r in results:
                    if r[0] in seen and (dropped is None or r[0] not in dropped):
                        taken.append(r[0])
                    result_rows.append((run_id, *r))
                if taken or (len(results) > 1 and len({r[0] for r in results}) != len(results)):
                    raise ConflictError(
                        codec.result_conflict_message(run_id, taken or codec.duplicate_tasks(results))
                    )
            batch = (run_id, rows, result_rows, history)
            payload = _dumps(batch, 5)
            record = _HEADER.pack(len(payload), _crc32(payload)) + payload
            start = self._size
            end = start + len(record)
            if end > len(self._map):
                self._grow(end)
            # The durable point: the record is in the file's pages (the kernel's page cache),
            # which survive this process being killed exactly like the bytes of a write(2).
            self._map[start:end] = record
            self._size = end
            run.last = top
            if dropped:
                seen -= dropped
            for r in results:
                seen.add(r[0])
            pending = self._pending
            if not pending:
                self._oldest = time.monotonic()
            pending.append(batch)
            if final:
                self._release(run_id)  # applies everything first
            elif len(pending) >= APPLY_BATCHES:
                self._apply_pending(block=False, locked=True)

    def _check_seqs(self, run_id: str, run: _Run, events: Sequence[Event]) -> int:
        """The exact duplicate check for a batch whose seqs do not simply rise past the last one
        written: against every seq of the run (the inner store, once the journal is applied).
        Returns the highest seq written once this batch is. Caller holds the write lock."""
        seqs = [e.seq for e in events]
        fresh = set(seqs)
        dup = codec.duplicate_seqs(events)
        if not dup and len(fresh) == len(seqs):
            self._apply_pending(block=True, locked=True)
            written = {e.seq for e in self.inner.events(run_id)}
            dup = sorted(fresh & written)
        if dup or len(fresh) != len(seqs):
            raise ConflictError(codec.seq_conflict_message(run_id, dup))
        return max(run.last, *seqs) if seqs else run.last

    def _lease(self, run_id: str) -> _Run:
        """The run's write state, taking the run's lease on first use (write lock held)."""
        name = hashlib.sha1(run_id.encode()).hexdigest()
        try:
            fd = os.open(self.dir / "runs" / f"{name}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as e:
            raise StoreError(f"cannot open run lease: {e.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise ConflictError(f"run {run_id!r} is being written by another process") from None
        try:
            workflow = self.inner.get_run(run_id).workflow  # NotFoundError for an unknown run
            recover(self.inner, self.dir, skip=self.path)  # a writer that died since we opened
            self._apply_pending(block=True, locked=True)
            events = self.inner.events(run_id)
            tasks = set(self.inner.results(run_id))
        except BaseException:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
            raise
        self._leases[run_id] = fd
        run = self._runs[run_id] = _Run(workflow, max((e.seq for e in events), default=0), tasks)
        return run

    def _release(self, run_id: str) -> None:
        fd = self._leases.pop(run_id, None)
        self._runs.pop(run_id, None)
        if fd is not None:
            # the lease ends once the run's last batch is in the inner store, not before
            self._apply_pending(block=True, locked=True)
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    # -- applying ---------------------------------------------------------------------------
    def _apply_pending(self, block: bool, locked: bool = False) -> None:
        """Copy every pending batch into the inner store, in order, in as few transactions as
        possible. With ``block=False`` it gives way to a thread already doing it. ``locked``:
        the caller holds the write lock (then the journal is always reset afterwards)."""
        if not self._apply_lock.acquire(blocking=block):
            return
        try:
            if self._error is not None:
                raise StoreError(f"journal apply failed: {self._error}")
            pending = self._pending
            while pending:
                batches = []
                while pending:
                    batches.append(pending.popleft())
                try:
                    apply_batches(self.inner, batches)
                except BaseException as e:  # still in the journal: the next open re-applies them
                    self._error = e
                    raise StoreError(f"journal apply failed: {e}") from None
            self._truncate(locked)
        finally:
            self._apply_lock.release()

    def _apply_loop(self) -> None:
        while True:
            with self._cv:
                if self._closed:
                    return
                self._cv.wait(APPLY_AGE)
            if self._pending and time.monotonic() - self._oldest >= APPLY_AGE:
                with contextlib.suppress(StoreError):
                    self._apply_pending(block=False)

    def _mapped(self, size: int) -> mmap.mmap:
        """Map the journal file at ``size`` bytes, its blocks allocated first (so a full disk is
        an error here, never a fault when a record is copied in)."""
        try:
            os.posix_fallocate(self._fd, 0, size)
        except OSError as e:
            if e.errno not in _NO_FALLOCATE:
                raise
            os.ftruncate(self._fd, max(size, os.fstat(self._fd).st_size))  # a file system without it
        return mmap.mmap(self._fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)

    def _grow(self, need: int) -> None:
        """Make room for a record ending at ``need`` (write lock held)."""
        size = len(self._map)
        while size < need:
            size *= 2
        try:
            bigger = self._mapped(size)
        except OSError as e:
            raise StoreError(f"journal write failed: cannot grow {self.path}: {e.strerror}") from None
        self._map.close()
        self._map = bigger

    def _truncate(self, locked: bool = False) -> None:
        """Everything written is applied: start the journal afresh, reusing its pages (caller
        holds the apply lock, and the write lock if ``locked``)."""
        if not locked and not self._write_lock.acquire(blocking=False):
            return
        try:
            if not self._pending and self._size > len(_MAGIC):
                # Zero what was written, the first header first: a reader stops at a zero length,
                # so no applied record is read again even if this is cut short.
                start = len(_MAGIC)
                self._map[start : start + _HEADER.size] = bytes(_HEADER.size)
                self._map[start : self._size] = bytes(self._size - start)
                self._size = start
        finally:
            if not locked:
                self._write_lock.release()

    def drain(self) -> None:
        """Make every batch appended so far visible in the inner store."""
        self._apply_pending(block=True)

    # -- the rest of the Store Protocol -----------------------------------------------------
    def create_run(self, run: RunRecord, events: Sequence[Event]) -> None:
        self.inner.create_run(run, events)

    def update_run(self, run_id: str, **fields: Any) -> None:
        self.drain()
        self.inner.update_run(run_id, **fields)

    def get_run(self, run_id: str) -> RunRecord:
        return self.inner.get_run(run_id)

    def list_runs(self, limit: int = 50) -> list[RunRecord]:
        return self.inner.list_runs(limit)

    def events(self, run_id: str, after_seq: int = 0) -> list[Event]:
        self.drain()
        return self.inner.events(run_id, after_seq)

    def results(self, run_id: str) -> dict[str, ResultRecord]:
        self.drain()
        return self.inner.results(run_id)

    def cache_get(self, key: str) -> ResultRecord | None:
        self.drain()
        return self.inner.cache_get(key)

    def cache_put(self, key: str, result: ResultRecord) -> None:
        self.inner.cache_put(key, result)

    def durations(self, workflow: str, task: str, limit: int = 20) -> list[float]:
        self.drain()
        return self.inner.durations(workflow, task, limit)

    def history(self, workflow: str, limit: int = 20) -> dict[str, list[float]]:
        self.drain()
        return self.inner.history(workflow, limit)

    def request_cancel(self, run_id: str) -> None:
        self.inner.request_cancel(run_id)

    def cancel_requested(self, run_id: str) -> bool:
        return self.inner.cancel_requested(run_id)

    def close(self) -> None:
        if self._closed:
            return
        try:
            self.drain()
        finally:
            with self._cv:
                self._closed = True
                self._cv.notify_all()
            self._applier.join(timeout=30)
            applied = self._error is None and not self._pending
            for run_id in list(self._leases):
                fd = self._leases.pop(run_id)
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)
            self._map.close()
            os.close(self._fd)
            if applied:
                with contextlib.suppress(OSError):
                    self.path.unlink()
            self.inner.close()

    def __enter__(self) -> JournaledStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"JournaledStore({self.inner!r}, {str(self.dir)!r})"


Batch = tuple[str, list[codec.EventRow], list[tuple[str, str, int, bytes, str, str]], list[codec.HistoryRow]]


def apply_batches(inner: Store, batches: Sequence[Batch]) -> None:
    """Apply batches in order, merging consecutive batches of one run into one transaction.
    A batch already in the inner store (a replay after a crash) is skipped."""
    i = 0
    while i < len(batches):
        run_id = batches[i][0]
        j = i
        while j < len(batches) and batches[j][0] == run_id:
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


def _apply_retrying(inner: Store, batch: Batch) -> None:
    run_id, rows, result_rows, history = batch
    fast = getattr(inner, "append_rows", None)
    for pause in (0.01, 0.05, 0.2, 1.0, 2.0, None):
        try:
            if fast is not None:
                fast(run_id, rows, result_rows, history)
            else:
                events = [codec.row_to_event(r[1:]) for r in rows]
                results = [codec.row_to_result(r[1:]) for r in result_rows]
                inner.append(run_id, events, results)
            return
        except StoreError:
            if pause is None:
                raise
            time.sleep(pause)


def read_journal(path: Path) -> list[Batch]:
    """Every intact record of a journal file, in order; reading stops at the first bad one."""
    data = path.read_bytes()
    if not data.startswith(_MAGIC):
        return []
    out = []
    pos = len(_MAGIC)
    while pos + _HEADER.size <= len(data):
        length, crc = _HEADER.unpack_from(data, pos)
        if length == 0:  # the zeroed space after the last record
            break
        start, end = pos + _HEADER.size, pos + _HEADER.size + length
        if end > len(data) or zlib.crc32(data[start:end]) != crc:
            break
        out.append(pickle.loads(data[start:end]))
        pos = end
    return out


def recover(inner: Store, directory: Path, skip: Path | None = None) -> int:
    """Apply the journals of writers that are gone (their lock is free) and delete them.
    Returns how many batches were read."""
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
            batches = read_journal(path)
            apply_batches(inner, batches)
            count += len(batches)
            path.unlink()
        finally:
            os.close(fd)
    return count
