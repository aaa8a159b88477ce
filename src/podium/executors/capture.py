"""Capturing what task attempts running in this process write: ``print``, ``logging``, the
output of their shell commands, as a bounded ``AttemptLog`` per attempt.

Tasks of a thread pool share one process and its ``sys.stdout``/``sys.stderr``, so those are
replaced (once, by ``install``) with ``Router`` objects that send each write to the log of the
attempt *running on the writing thread* (``begin``/``end`` mark it in the thread's ``Slot``), and
everything else (the engine's own output, threads that run no task) to the stream they
replaced. ``logging`` handlers that wrote to the replaced streams are pointed at the routers,
so a task's log records land in its own log too. Lines of two tasks printing at once never mix:
each thread has its own slot.

Cost: an attempt that writes nothing costs setting and clearing its slot; its ``AttemptLog``
is made by its first write. A log keeps the last ``LOG_LIMIT`` bytes (older chunks are dropped
and counted, see ``LogRecord``). Output written by native code or child processes straight to
file descriptors 1 and 2 bypasses the routers; process isolation captures it (the worker's
descriptors are pipes, see ``process.py``).

Invariants: a router never raises into the task because of capture; the secrets a call was
granted (``secrets_of``) are masked in every record made. This module imports only model.
"""

from __future__ import annotations

import contextlib
import io
import logging
import sys
import threading
import time
from collections import deque
from collections.abc import Iterable
from typing import Any, TextIO

from podium.model.logs import LOG_LIMIT, LogRecord
from podium.model.task import TaskCall
from podium.secrets import MIN_MASKED, redact, secrets_in

#: Values shorter than this are not masked (they would garble every line and protect nothing).
MIN_SECRET_LEN = MIN_MASKED


class AttemptLog:
    """The bounded output of one attempt: chunks ``(ts, stream, text, bytes)``, the last
    ``limit`` bytes of them; ``cut`` counts the bytes dropped before."""

    __slots__ = (
        "attempt",
        "chunks",
        "cut",
        "limit",
        "lock",
        "midline",
        "secrets",
        "size",
        "task_id",
        "version",
    )

    def __init__(
        self, task_id: str, attempt: int, secrets: Iterable[str] = (), limit: int = LOG_LIMIT
    ) -> None:
        self.task_id = task_id
        self.attempt = attempt
        self.secrets = tuple(sorted({s for s in secrets if len(s) >= MIN_SECRET_LEN}, key=len, reverse=True))
        self.limit = limit
        self.chunks: deque[tuple[float, str, str, int]] = deque()
        self.size = 0
        self.cut = 0
        self.version = 0  # bumps on every write: a live reader re-reads only changed logs
        self.midline: set[str] = set()  # streams whose echo stopped mid-line
        self.lock = threading.Lock()

    def write(self, stream: str, text: str) -> None:
        if not text:
            return
        n = len(text.encode("utf-8", "replace"))
        with self.lock:
            self.chunks.append((time.time(), stream, text, n))
            self.size += n
            self.version += 1
            while self.size > self.limit:
                ts, st, first, m = self.chunks[0]
                excess = self.size - self.limit
                if m <= excess:
                    self.chunks.popleft()
                    self.size -= m
                    self.cut += m
                    continue
                kept = first.encode("utf-8", "replace")[excess:].decode("utf-8", "ignore")
                k = len(kept.encode("utf-8"))
                self.chunks[0] = (ts, st, kept, k)
                self.size -= m - k
                self.cut += m - k

    def record(self) -> LogRecord:
        """The log as a ``LogRecord``, secrets masked."""
        with self.lock:
            chunks, cut = list(self.chunks), self.cut
        parts: list[str] = []
        marks: list[tuple[int, str, float]] = []
        offset, last_stream, last_ts = 0, "", 0.0
        for ts, stream, text, _n in chunks:
            text = mask(text, self.secrets)
            if stream != last_stream or ts - last_ts >= 1.0:
                marks.append((offset, stream, round(ts, 3)))
                last_stream, last_ts = stream, ts
            parts.append(text)
            offset += len(text.encode("utf-8", "replace"))
        return LogRecord(self.task_id, self.attempt, "".join(parts), cut, tuple(marks))


def relay(stdout: str | None, stderr: str | None) -> None:
    """Hand a command's collected output on as the task's own (its routers or, in a worker
    process, its pipes), so it lands in the attempt's log."""
    for stream, text in ((sys.stdout, stdout), (sys.stderr, stderr)):
        if text and stream is not None:
            with contextlib.suppress(Exception):
                stream.write(text)


class LiveLogs:
    """The logs of one executor's running attempts that wrote something, by a key of the
    executor's choosing (its future); ``changed()`` gives the records of those written to
    since the last call."""

    def __init__(self) -> None:
        self.logs: dict[Any, AttemptLog] = {}
        self._seen: dict[int, int] = {}

    def changed(self) -> list[LogRecord]:
        out, seen = [], {}
        for log in list(self.logs.values()):
            v = seen[id(log)] = log.version
            if self._seen.get(id(log)) != v:
                out.append(log.record())
        self._seen = seen
        return out


class PipeCapture:
    """Reads a worker process's stdout and stderr pipes (non-blocking read ends ``fds``, each
    named by its stream) into the attempt's log, made at the first byte and kept in ``live``
    under ``key`` while the attempt runs."""

    def __init__(self, call: TaskCall, fds: dict[int, str], live: dict[Any, AttemptLog], key: Any) -> None:
        import codecs

        self.call, self.fds, self.live, self.key = call, fds, live, key
        self.log: AttemptLog | None = None
        self._decoders = {fd: codecs.getincrementaldecoder("utf-8")("replace") for fd in fds}

    def read(self, fd: int) -> bool:
        """Read what ``fd`` holds now; True at its end (the caller stops watching it)."""
        import os

        while True:
            try:
                data = os.read(fd, 1 << 16)
            except BlockingIOError:
                return False
            except OSError:
                return True
            text = self._decoders[fd].decode(data, final=not data)
            if text:
                log = self.log
                if log is None:
                    call = self.call
                    log = self.log = AttemptLog(call.task_id, call.attempt, secrets_of(call))
                    self.live[self.key] = log
                log.write(self.fds[fd], text)
                if _echo[0]:
                    stream = sys.stdout if self.fds[fd] == "stdout" else sys.stderr
                    with contextlib.suppress(Exception):
                        stream.write(_prefixed(log, self.fds[fd], mask(text, log.secrets)))
            if not data:
                return True

    def finish(self) -> LogRecord | None:
        """Read what is left and stop: the attempt's log (None: it wrote nothing)."""
        for fd in self.fds:
            self.read(fd)
        self.live.pop(self.key, None)
        if self.log is None:
            return None
        end_line(self.log)
        return self.log.record()


def mask(text: str, secrets: tuple[str, ...] = ()) -> str:
    """``text`` with the given secret values, those this process revealed and passwords in
    URLs replaced by ``***`` (``podium.secrets.redact``)."""
    return redact(text, secrets)


def secrets_of(call: TaskCall) -> tuple[str, ...]:
    """The secret values a call was granted: those in its config and its string arguments
    (``Sensitive`` values), and a container task's whole environment (every value of it is a
    secret, see ``container.py``)."""
    found = secrets_in(call.config) | secrets_in([v for v in call.kwargs.values() if isinstance(v, str)])
    if call.spec.kind == "container":
        found.update(str(v) for v in (call.config.get("env") or {}).values())
    return tuple(found)


# ------------------------------------------------------------------------------- the routers
class Slot:
    """What runs on one thread: the attempt (``call``) whose output this thread's writes go
    to, its log once it wrote, and where a running attempt's log is shown (``live[key]``).
    A pool thread takes its slot once (``slot()``) and opens and closes it per attempt."""

    __slots__ = ("call", "key", "live", "log")

    def __init__(self) -> None:
        self.call: TaskCall | None = None
        self.log: AttemptLog | None = None
        self.live: dict[Any, AttemptLog] | None = None
        self.key: Any = None

    def open(self, call: TaskCall, live: dict[Any, AttemptLog] | None = None, key: Any = None) -> None:
        """Output this thread writes from now on belongs to ``call``'s attempt."""
        self.call, self.live, self.key = call, live, key

    def close(self) -> AttemptLog | None:
        """Stop capturing; the attempt's log (None: it wrote nothing)."""
        self.call = None
        log = self.log
        if log is not None:
            self.log = None
            if self.live is not None:
                self.live.pop(self.key, None)
            end_line(log)
        return log

    def current(self) -> AttemptLog | None:
        """The running attempt's log, made at its first write (None: no attempt runs)."""
        log, call = self.log, self.call
        if log is None and call is not None:
            log = self.log = AttemptLog(call.task_id, call.attempt, secrets_of(call))
            if self.live is not None:
                self.live[self.key] = log
        return log


_local = threading.local()
_echo = [True]
_shown: list[Any] = [None]  # what echoed text goes through first (the CLI's terminal escaping)


def slot() -> Slot:
    """This thread's slot (made on first use)."""
    s: Slot | None = getattr(_local, "slot", None)
    if s is None:
        s = _local.slot = Slot()
    return s


def set_echo(on: bool, through: Any = None) -> None:
    """Whether captured output is also copied to the stream it would have gone to, each line
    prefixed by its task (on by default, so a program's tasks still print where it runs; the
    CLI turns it off while it shows its live progress line); ``through`` rewrites echoed text
    first (the CLI escapes control characters a task wrote)."""
    _echo[0], _shown[0] = on, through


def begin(call: TaskCall) -> None:
    """Output this thread writes from now on belongs to ``call``'s attempt (``Slot.open``)."""
    slot().open(call)


def end() -> AttemptLog | None:
    """Stop capturing for this thread; the attempt's log (None: it wrote nothing)."""
    return slot().close()


class Router(io.TextIOBase):
    """Stands for ``sys.stdout`` or ``sys.stderr``: a write goes to the log of the attempt
    running on the writing thread, else to the stream it replaced (``original``)."""

    def __init__(self, name: str, original: TextIO) -> None:
        self.name = name
        self.original = original

    def write(self, text: str) -> int:
        s: Slot | None = getattr(_local, "slot", None)
        if s is None or s.call is None:
            return self.original.write(text)
        try:
            log = s.current()
            if log is not None:
                log.write(self.name, text)
                if _echo[0]:
                    self.original.write(_prefixed(log, self.name, mask(text, log.secrets)))
        except Exception:  # capture must never break the task; the text goes where it went
            return self.original.write(text)
        return len(text)

    def flush(self) -> None:
        with contextlib.suppress(Exception):
            self.original.flush()

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return bool(getattr(self.original, "isatty", lambda: False)())

    def fileno(self) -> int:
        return self.original.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.original, "encoding", "utf-8")

    @property
    def errors(self) -> str | None:  # type: ignore[override]
        return getattr(self.original, "errors", None)

    def __getattr__(self, name: str) -> Any:  # buffer, errors, mode... of the replaced stream
        return getattr(self.original, name)


def end_line(log: AttemptLog) -> None:
    """End the echo of a finished attempt whose output stopped mid-line, so what is printed
    next (another task's output, an error) starts on a line of its own."""
    if not _echo[0]:
        return
    for name in sorted(log.midline):
        stream = getattr(sys, name, None)
        if isinstance(stream, Router):
            stream = stream.original
        if stream is not None:
            with contextlib.suppress(Exception):
                stream.write("\n")
    log.midline.clear()


def _prefixed(log: AttemptLog, stream: str, text: str) -> str:
    """``text`` with ``[task] `` before each line it starts (the log knows, per stream, whether
    the last line written there ended)."""
    out = []
    for line in text.splitlines(keepends=True):
        out.append(line if stream in log.midline else f"[{log.task_id}] {line}")
        if line.endswith("\n"):
            log.midline.discard(stream)
        else:
            log.midline.add(stream)
    shown = _shown[0]
    return shown("".join(out)) if shown is not None else "".join(out)


_install_lock = threading.Lock()


def install() -> None:
    """Put routers in place of ``sys.stdout``/``sys.stderr`` unless they are there (cheap to
    call again: a terminal display or a test harness may have swapped the streams since)."""
    if isinstance(sys.stdout, Router) and isinstance(sys.stderr, Router):
        return
    with _install_lock:
        swapped: dict[int, Router] = {}
        for name in ("stdout", "stderr"):
            stream = getattr(sys, name)
            if stream is not None and not isinstance(stream, Router):
                router = Router(name, stream)
                swapped[id(stream)] = router
                # a handler made before a display wrapped the stream writes to the process's own
                swapped.setdefault(id(getattr(sys, f"__{name}__")), router)
                setattr(sys, name, router)
        if swapped:
            _retarget_logging(swapped)


def _retarget_logging(swapped: dict[int, Router]) -> None:
    """Point stream handlers writing to a replaced stream (or to the process's own stdout or
    stderr, which a terminal display may have wrapped) at its router."""
    loggers: list[Any] = [logging.getLogger()]
    loggers += [lg for lg in list(logging.root.manager.loggerDict.values()) if isinstance(lg, logging.Logger)]
    for lg in loggers:
        for h in list(lg.handlers):
            if type(h) is logging.StreamHandler and id(h.stream) in swapped:
                h.setStream(swapped[id(h.stream)])  # type: ignore[arg-type]
