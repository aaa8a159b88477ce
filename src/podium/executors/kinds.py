"""How one ``TaskCall`` of each kind is run, wherever it runs (thread or worker process).

Kinds:
- ``python``: ``registry.resolve(spec.call)(**kwargs)``; the function is found by name, never sent
  as code.
- ``http``: one request through the guarded client (``podium.executors.http``: http/https only,
  public or allowed addresses, same-origin redirects, a deadline, a response size cap) built
  from ``config`` (``method``, ``url``, ``headers``, ``json`` or ``body``); returns the parsed
  JSON if the response says JSON, else its text. 5xx, 408, 429, timeouts and connection errors
  are retryable failures; other 4xx and refusals are not.
- ``shell``: ``argv`` (a list, never a string: no shell ever parses it) with ``env`` merged over
  ``os.environ`` and the task's variables (``taskenv``: threads, GPUs, identity) and ``cwd``;
  returns ``{"returncode", "stdout", "stderr"}``. ``argv[0]`` must be a program the registry's
  policy allows (checked here again: a parameter may have chosen it) and is looked up on this
  process's ``PATH``, never the task's. The command runs in its own process group so a timeout
  or kill takes its children too. Each of stdout and stderr keeps at most ``max_output_bytes``
  (its first and last halves, with a line saying what was cut) and goes to the attempt's log
  too (``capture.relay``).
- ``container``: one container per attempt (``podium.executors.container``: inputs as files, a
  JSON result file, limits, its own timeout that removes the container).

Invariants: every failure leaves this module either as the user's own exception (python kind:
the caller records it) or as ``TaskFailedError`` carrying an ``ErrorRecord`` with the right
``kind`` and ``retryable`` flag; ``MemoryError`` is always classified as ``oom``, a GPU out of
memory (``torch.cuda.OutOfMemoryError``, or "CUDA out of memory" in an error or in a failed
command's stderr) as ``gpu_oom``; secret values (``Sensitive`` strings in the call) and URL
passwords are masked in shell output and in every message made here. This module imports only
leaves and model.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import time
from collections.abc import Callable, Mapping
from typing import Any

from podium.errors import GPU_OOM, OOM, TIMEOUT, USER_ERROR, ErrorRecord, TaskFailedError
from podium.executors.capture import relay
from podium.executors.failure import failure, signame
from podium.executors.program import granted_program
from podium.model.task import TaskCall
from podium.policy import Policy
from podium.registry import Registry
from podium.secrets import redact, secrets_in

#: Lines of stderr quoted in the message of a failed shell command.
STDERR_TAIL_LINES = 10
#: HTTP statuses below 500 that are still worth retrying.
RETRYABLE_4XX = frozenset({408, 429})

#: What CUDA and PyTorch say when a GPU runs out of memory.
GPU_OOM_MARKS = ("CUDA out of memory", "CUDA error: out of memory")

OnProcess = Callable[[subprocess.Popen[Any]], None]
OnUsage = Callable[[dict[str, Any]], None]


def gpu_oom(exc: BaseException) -> bool:
    """Whether ``exc`` says a GPU ran out of memory."""
    t = type(exc)
    if t.__name__ == "OutOfMemoryError" and t.__module__.startswith("torch"):
        return True
    text = str(exc)[:1000]
    return any(m in text for m in GPU_OOM_MARKS)


def record_of(exc: BaseException) -> ErrorRecord:
    """The ``ErrorRecord`` of anything a task attempt raised (``MemoryError`` counts as oom, a
    GPU out of memory as gpu_oom)."""
    if isinstance(exc, TaskFailedError):
        return exc.record
    if isinstance(exc, MemoryError):
        return ErrorRecord.from_exception(exc, kind=OOM)
    return ErrorRecord.from_exception(exc, kind=GPU_OOM if gpu_oom(exc) else USER_ERROR)


def thaw(value: Any) -> Any:
    """Turn frozen config values (read-only mappings, tuples) back into plain dicts and lists."""
    if isinstance(value, Mapping):
        return {str(k): thaw(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [thaw(v) for v in value]
    return value


def run_call(
    call: TaskCall,
    registry: Registry,
    on_process: OnProcess | None = None,
    env: Mapping[str, str] | None = None,
    on_usage: OnUsage | None = None,
) -> Any:
    """Run ``call`` in the current thread and return its result (or raise).

    ``on_process`` is told about any OS process started for the call (shell kind; the runtime
    client of a container task, whose death makes the call remove its container) so the
    executor can kill its process group on timeout or cancel. ``env`` holds the task's
    variables for a command it starts (None: this process's environment already has them).
    ``on_usage`` is told what a container attempt used (``container_usage``), as
    ``AttemptMeta`` keys, when its runtime could measure it.
    """
    kind = call.spec.kind
    if kind == "python":
        return run_python(call, registry)
    if kind == "http":
        return run_http(call, registry.policy)
    if kind == "shell":
        return run_shell(call, on_process, registry.policy, env)
    if kind == "service":
        from podium.executors.service import start

        return start(call, registry.policy)
    if kind == "container":
        from podium.executors.container import run_container

        return run_container(call, on_process, on_usage)
    raise failure(USER_ERROR, "SpecError", f"task {call.task_id!r}: unknown kind {kind!r}", retryable=False)


def run_python(call: TaskCall, registry: Registry) -> Any:
    if not call.spec.call:
        raise failure(
            USER_ERROR, "SpecError", f"python task {call.task_id!r} names no function", retryable=False
        )
    fn = registry.resolve(call.spec.call)
    return fn(**call.kwargs)


# --------------------------------------------------------------------------------------- http


def run_http(call: TaskCall, policy: Policy | None = None) -> Any:
    from podium.executors.breaker import BREAKERS, retry_after
    from podium.executors.http import HttpError, HttpRefused, fetch, target_of

    cfg = call.config
    hidden = secrets_in(cfg)
    url = cfg.get("url")
    if not isinstance(url, str) or not url:
        raise failure(
            USER_ERROR, "SpecError", f"http task {call.task_id!r}: config.url must be a URL", retryable=False
        )
    headers = {str(k): str(v) for k, v in thaw(cfg.get("headers") or {}).items()}
    data: bytes | None = None
    if cfg.get("json") is not None:
        data = json.dumps(thaw(cfg["json"])).encode()
        headers.setdefault("Content-Type", "application/json")
    elif cfg.get("body") is not None:
        body = cfg["body"]
        data = body if isinstance(body, bytes) else str(body).encode()
    method = str(cfg.get("method") or ("POST" if data is not None else "GET")).upper()
    where = redact(f"{method} {url}", hidden)
    pol = policy or Policy()
    try:
        origin = target_of(str(url)).origin
    except HttpRefused as e:
        raise failure(USER_ERROR, "HttpRefused", redact(str(e), hidden), retryable=False) from None
    breaker = BREAKERS.of(origin, pol.http_breaker_failures, pol.http_breaker_cooldown)
    wait = breaker.admit()
    if wait is not None:  # the service is down: fail now instead of waiting for a timeout
        msg = (
            f"{where}: not sent, {origin[1]}:{origin[2]} failed {breaker.failed} calls in a row "
            f"(circuit open); the next call goes through in {wait:.1f}s"
        )
        raise failure(USER_ERROR, "CircuitOpen", redact(msg, hidden), retry_after=round(wait, 3))
    try:
        resp = fetch(method, str(url), headers=headers, body=data, policy=pol, timeout=call.timeout)
    except HttpError as e:
        if not isinstance(e, HttpRefused):
            breaker.failed_call()
        kind, type_ = (TIMEOUT, "TimeoutError") if e.timeout else (USER_ERROR, "ConnectionError")
        if isinstance(e, HttpRefused):
            type_ = "HttpRefused"
        raise failure(kind, type_, redact(str(e), hidden), retryable=e.retryable) from None
    if resp.status >= 500 or resp.status == 429:
        breaker.failed_call()
    else:
        breaker.succeeded()
    if resp.status >= 400:
        detail = _snippet(resp.body)
        retryable = resp.status >= 500 or resp.status in RETRYABLE_4XX
        msg = f"{where} returned HTTP {resp.status} {resp.reason}" + (f": {detail}" if detail else "")
        extra: dict[str, Any] = {"status": resp.status}
        wait_s = retry_after(resp.headers.get("Retry-After")) if resp.status in (429, 503) else None
        if wait_s is not None:
            extra["retry_after"] = wait_s
            msg += f" (Retry-After: {wait_s:g}s)"
        raise failure(USER_ERROR, "HTTPError", redact(msg, hidden), retryable=retryable, **extra)
    ctype = resp.headers.get("Content-Type", "")
    charset = resp.headers.get_content_charset() or "utf-8"
    try:
        text = resp.body.decode(charset, errors="replace")
    except LookupError:  # a charset Python does not know
        text = resp.body.decode("utf-8", errors="replace")
    if "json" in ctype.lower():
        if not text.strip():
            return None
        try:
            return json.loads(text)
        except ValueError as e:
            raise failure(
                USER_ERROR, "HTTPError", f"{where} returned malformed JSON ({e})", retryable=False
            ) from None
    return text


def _snippet(raw: bytes, limit: int = 200) -> str:
    text = raw.decode("utf-8", errors="replace").strip().replace("\n", " ")
    return text if len(text) <= limit else text[:limit] + "..."


# -------------------------------------------------------------------------------------- shell


def run_shell(
    call: TaskCall,
    on_process: OnProcess | None = None,
    policy: Policy | None = None,
    task_env: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    cfg = call.config
    pol = policy or Policy()
    argv = cfg.get("argv")
    if isinstance(argv, str) or not isinstance(argv, tuple | list) or not argv:
        raise failure(
            USER_ERROR,
            "SpecError",
            f"shell task {call.task_id!r}: config.argv must be a non-empty list of strings "
            "(a command line string is never passed to a shell)",
            retryable=False,
        )
    hidden = secrets_in(cfg)
    args = [str(a) for a in argv]
    program = granted_program(call.task_id, args, cfg.get("env") or {}, pol)
    env = None
    if cfg.get("env") or task_env:
        env = {**os.environ, **(task_env or {})}
        env.update({str(k): str(v) for k, v in (cfg.get("env") or {}).items()})
    cwd = cfg.get("cwd")
    try:
        proc = subprocess.Popen(
            args,
            executable=program,
            shell=False,
            env=env,
            cwd=str(cwd) if cwd else None,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
    except FileNotFoundError as e:
        what = f"working directory {cwd!r}" if cwd and not os.path.isdir(str(cwd)) else f"command {args[0]!r}"
        raise failure(
            USER_ERROR,
            "FileNotFoundError",
            f"shell task {call.task_id!r}: {what} not found ({e.strerror})",
            retryable=False,
        ) from None
    except (PermissionError, ValueError) as e:
        raise failure(
            USER_ERROR,
            type(e).__name__,
            f"shell task {call.task_id!r}: cannot run {args[0]!r} ({getattr(e, 'strerror', None) or e})",
            retryable=False,
        ) from None
    if on_process is not None:
        on_process(proc)
    try:
        stdout, stderr = capture(proc, call.timeout, pol.max_output_bytes)
    except subprocess.TimeoutExpired:
        kill_group(proc.pid)
        proc.wait()
        raise failure(TIMEOUT, "TimeoutError", f"{args[0]!r} timed out after {call.timeout}s") from None
    finally:
        # Whatever the command left running in its group goes with it.
        kill_group(proc.pid)
    stdout, stderr = redact(stdout, hidden), redact(stderr, hidden)
    relay(stdout, stderr)  # into the attempt's log, as what the task wrote
    rc = proc.returncode
    if rc != 0:
        tail = "\n".join(stderr.rstrip().splitlines()[-STDERR_TAIL_LINES:])
        how = f"was killed by {signame(-rc)}" if rc < 0 else f"exited with code {rc}"
        msg = f"{args[0]!r} {how}" + (f"; stderr:\n{tail}" if tail else "")
        kind = GPU_OOM if any(m in tail for m in GPU_OOM_MARKS) else USER_ERROR
        raise failure(kind, "CommandFailed", redact(msg, hidden), returncode=rc)
    return {"returncode": rc, "stdout": stdout, "stderr": stderr}


class _Capped:
    """The first and last ``limit // 2`` bytes of a stream, and how many bytes it had."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.half = max(1, limit // 2)
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0

    def add(self, data: bytes) -> None:
        self.total += len(data)
        room = self.half - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        if data:
            self.tail += data
            if len(self.tail) > self.half:
                del self.tail[: len(self.tail) - self.half]

    def text(self) -> str:
        cut = self.total - len(self.head) - len(self.tail)
        if cut <= 0:
            return bytes(self.head + self.tail).decode("utf-8", errors="replace")
        head = self.head.decode("utf-8", errors="replace")
        tail = self.tail.decode("utf-8", errors="replace")
        note = (
            f"\n[... podium cut {cut} bytes here: the output was {self.total} bytes, over "
            f"max_output_bytes ({self.limit}); its first and last {self.half} bytes are kept ...]\n"
        )
        return head + note + tail


def capture(proc: subprocess.Popen[bytes], timeout: float | None, limit: int) -> tuple[str, str]:
    """Read ``proc``'s stdout and stderr to the end (each capped to ``limit`` bytes) and wait
    for it; ``subprocess.TimeoutExpired`` after ``timeout`` seconds."""
    deadline = None if timeout is None else time.monotonic() + timeout
    out, err = _Capped(limit), _Capped(limit)
    sinks = {proc.stdout: out, proc.stderr: err}
    try:
        with selectors.DefaultSelector() as sel:
            for f in sinks:
                sel.register(f, selectors.EVENT_READ)  # type: ignore[arg-type]
            while sel.get_map():
                wait = None if deadline is None else deadline - time.monotonic()
                if wait is not None and wait <= 0:
                    raise subprocess.TimeoutExpired(proc.args, timeout or 0)
                for key, _ in sel.select(wait):
                    data = os.read(key.fd, 65536)
                    if data:
                        sinks[key.fileobj].add(data)  # type: ignore[index]
                    else:
                        sel.unregister(key.fileobj)
    finally:
        for f in sinks:
            f.close()  # type: ignore[union-attr]
    proc.wait(None if deadline is None else max(0.0, deadline - time.monotonic()))
    return out.text(), err.text()


def kill_group(pgid: int, sig: int = signal.SIGKILL) -> None:
    """Send ``sig`` to process group ``pgid``; a group that is already gone is fine."""
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass
