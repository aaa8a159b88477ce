"""JournaledStore: durable appends at the cost of one memory copy, group-committed to a Store.

An engine appends a small batch per turn, and on a 2-core VM one SQLite commit costs 30-60
microseconds (two WAL frames, several ``fcntl`` locks) - more than the whole rest of a no-op
task. A journal makes the durable point one checksummed record (``journal_format``; no pickles)
copied into a shared memory map of an append-only file (``MAP_SHARED``: the bytes are in the
kernel's page cache the moment the copy ends, so what survives a killed process is what a
``write(2)`` would have left - the same guarantee as SQLite's WAL with ``synchronous=NORMAL``).
The file's blocks are allocated before they are mapped, so a full disk is a ``StoreError`` at
that point, never a fault during a copy. Unlike ``write(2)`` the copy does not release the GIL,
which spares a thread hand-off per append when two pool threads report completions. Batches are
then copied into the inner store in large transactions: by the appending thread itself once
``APPLY_BATCHES`` have gathered (no second thread competes for the GIL on the hot path), and by
a background thread when batches have waited ``APPLY_AGE`` seconds (so other readers never lag
long). Once every record is applied the journal restarts from the top (a new generation, the old
records zeroed). Journals of writers that died are recovered by ``recovery``.

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
- Results are tagged with the inner store's key when they are journaled, so what reaches the
  store from a journal file carries the tag made here; a planted record's results never check.
- The journal directory is 0700 and every file in it 0600 (``files``).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import mmap
import os
import struct
import threading
import time
import uuid
import zlib
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from podium.errors import ConflictError, StoreError, UsageError
from podium.model.events import (
    DROPS_RESULT,
    RUN_CANCELLED,
    RUN_FAILED,
    RUN_SUCCEEDED,
    TASK_SUCCEEDED,
    Event,
    ResultRecord,
    RunRecord,
)
from podium.store import codec
from podium.store import journal_format as jf
from podium.store.contracts import RowStore
from podium.store.files import DIR_MODE, narrow, private_dir
from podium.store.recovery import Batch, apply_batches, recover

_c_encode = codec.c_encode
_encode_body = jf.encode_body
_record_header = jf.record_header
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
    committed result, the run's workflow (for history rows) and its id in utf-8 (for headers)."""

    __slots__ = ("key", "key_crc", "last", "results", "workflow")

    def __init__(self, run_id: str, workflow: str, last: int, results: set[str]) -> None:
        self.key = run_id.encode("utf-8", "surrogatepass")
        self.key_crc = zlib.crc32(self.key)
        self.workflow = workflow
        self.last = last
        self.results = results


class JournaledStore:
    """A ``Store`` whose appends go to a local journal and reach ``inner`` in the background."""

    def __init__(self, inner: RowStore, directory: str | os.PathLike[str]) -> None:
        if not isinstance(inner, RowStore):
            raise TypeError(f"a journal needs a store that takes encoded rows (RowStore), not {inner!r}")
        self.logs = inner.logs  # logs are not events: they go to the store directly
        self.inner = inner
        # reads that need no journaled batch applied first: the inner store's own
        self.get_run, self.list_runs, self.snapshot = inner.get_run, inner.list_runs, inner.snapshot
        self.request_cancel, self.cancel_requested = inner.request_cancel, inner.cancel_requested
        self.attention = inner.attention
        self._tag = inner.signer.tag
        self.dir = Path(directory)
        try:
            private_dir(self.dir / "runs", own=True)
            narrow(self.dir, DIR_MODE)
            for old in self.dir.glob("runs/*.lock"):  # lease files of older versions
                narrow(old)
        except OSError as e:
            raise StoreError(f"cannot create journal directory {self.dir}: {e.strerror}") from None
        self.recovered = recover(inner, self.dir)
        self.path = self.dir / f"{os.getpid()}-{uuid.uuid4().hex[:12]}.journal"
        try:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            fcntl.flock(self._fd, fcntl.LOCK_EX)  # held while alive: recovery leaves this file alone
            self._map = self._mapped(JOURNAL_SPACE)
        except OSError as e:
            raise StoreError(f"cannot open journal {self.path}: {e.strerror}") from None
        # A random first generation: bytes in a task's result cannot predict a live header.
        self._gen = int.from_bytes(os.urandom(4), "little") or 1
        self._map[: jf.FILE_HEADER_SIZE] = jf.file_header(self._gen)
        self._size = jf.FILE_HEADER_SIZE
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
                    elif typ in DROPS_RESULT:
                        if dropped is None:
                            dropped = set()
                        dropped.add(task_id)  # type: ignore[arg-type]
            except (TypeError, ValueError, RecursionError):
                codec.event_rows(run_id, events)  # raises the one-line UsageError naming the event
                raise
            if not rising:
                top = self._check_seqs(run_id, run, events)
            result_rows: list[codec.ResultRow] = []
            if results:
                taken = []
                tag = self._tag
                for task, attempt, blob, checksum, encoding in results:
                    if task in seen and (dropped is None or task not in dropped):
                        taken.append(task)
                    result_rows.append(
                        (run_id, task, attempt, blob, checksum, encoding, tag(encoding, checksum))
                    )
                if taken or (len(results) > 1 and len({r[0] for r in results}) != len(results)):
                    raise ConflictError(
                        codec.result_conflict_message(run_id, taken or codec.duplicate_tasks(results))
                    )
            try:
                body = _encode_body(rows, result_rows)
            except (struct.error, TypeError, OverflowError) as e:
                raise UsageError(
                    f"run {run_id!r}: an event or result field cannot be stored ({e}); "
                    "nothing of this append was written"
                ) from None
            head = _record_header(self._gen, run.key, body, run.key_crc)
            start = self._size
            mid = start + len(head)
            end = mid + len(body)
            if end > len(self._map):
                self._grow(end)
            # The durable point: the record is in the file's pages (the kernel's page cache),
            # which survive this process being killed exactly like the bytes of a write(2). The
            # body goes first: a header is never there without its whole body.
            self._map[mid:end] = body
            self._map[start:mid] = head
            self._size = end
            batch = (run_id, rows, result_rows, history)
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
        run = self._runs[run_id] = _Run(run_id, workflow, max((e.seq for e in events), default=0), tasks)
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
            start = jf.FILE_HEADER_SIZE
            if not self._pending and self._size > start:
                # A new generation first: records of the old one are no longer live, even if the
                # zeroing below is cut short. Then zero them, so a reader finds zeros after the
                # last live record (anything else there is damage).
                self._gen = (self._gen + 1) & 0xFFFFFFFF or 1
                jf.set_generation(self._map, self._gen)
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

    def events(self, run_id: str, after_seq: int = 0) -> list[Event]:
        self.drain()
        return self.inner.events(run_id, after_seq)

    def results(self, run_id: str, artifacts_only: bool = False) -> dict[str, ResultRecord]:
        self.drain()
        return self.inner.results(run_id, artifacts_only)

    def put_snapshot(self, run_id: str, seq: int, data: bytes) -> None:
        """The journal's batches reach the inner store first: a snapshot is never ahead of it."""
        self._apply_pending(block=True)
        self.inner.put_snapshot(run_id, seq, data)

    def artifact_refs(self) -> list[bytes]:
        self.drain()
        return self.inner.artifact_refs()

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
