"""How one ``TaskCall`` of each kind is run, wherever it runs (thread or worker process).

Kinds:
- ``python``: ``registry.resolve(spec.call)(**kwargs)``; the function is found by name, never sent
  as code.
- ``http``: one request with ``urllib`` built from ``config`` (``method``, ``url``, ``headers``,
  ``json`` or ``body``); returns the parsed JSON if the response says JSON, else its text.
  5xx, 408, 429 and connection errors are retryable failures; other 4xx are not.
- ``shell``: ``argv`` (a list, never a string: no shell ever parses it) with ``env`` merged over
  ``os.environ`` and ``cwd``; returns ``{"returncode", "stdout", "stderr"}``. The command runs in
  its own process group so a timeout or kill takes its children too.
- ``container``: one container per attempt (``podium.executors.container``: inputs as files, a
  JSON result file, limits, its own timeout that removes the container).

Invariants: every failure leaves this module either as the user's own exception (python kind:
the caller records it) or as ``TaskFailedError`` carrying an ``ErrorRecord`` with the right
``kind`` and ``retryable`` flag; ``MemoryError`` is always classified as ``oom``.
This module imports only leaves and model.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Callable, Mapping
from typing import Any

from podium.errors import OOM, TIMEOUT, USER_ERROR, ErrorRecord, TaskFailedError
from podium.executors.failure import failure
from podium.model.task import TaskCall
from podium.registry import Registry

#: Lines of stderr quoted in the message of a failed shell command.
STDERR_TAIL_LINES = 10
#: HTTP statuses below 500 that are still worth retrying.
RETRYABLE_4XX = frozenset({408, 429})

OnProcess = Callable[[subprocess.Popen[Any]], None]


def record_of(exc: BaseException) -> ErrorRecord:
    """The ``ErrorRecord`` of anything a task attempt raised (``MemoryError`` counts as oom)."""
    if isinstance(exc, TaskFailedError):
        return exc.record
    return ErrorRecord.from_exception(exc, kind=OOM if isinstance(exc, MemoryError) else USER_ERROR)


def thaw(value: Any) -> Any:
    """Turn frozen config values (read-only mappings, tuples) back into plain dicts and lists."""
    if isinstance(value, Mapping):
        return {str(k): thaw(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [thaw(v) for v in value]
    return value


def run_call(call: TaskCall, registry: Registry, on_process: OnProcess | None = None) -> Any:
    """Run ``call`` in the current thread and return its result (or raise).

    ``on_process`` is told about any OS process started for the call (shell kind; the runtime
    client of a container task, whose death makes the call remove its container) so the
    executor can kill its process group on timeout or cancel.
    """
    kind = call.spec.kind
    if kind == "python":
        return run_python(call, registry)
    if kind == "http":
        return run_http(call)
    if kind == "shell":
        return run_shell(call, on_process)
    if kind == "container":
        from podium.executors.container import run_container

        return run_container(call, on_process)
    raise failure(USER_ERROR, "SpecError", f"task {call.task_id!r}: unknown kind {kind!r}", retryable=False)


def run_python(call: TaskCall, registry: Registry) -> Any:
    if not call.spec.call:
        raise failure(
            USER_ERROR, "SpecError", f"python task {call.task_id!r} names no function", retryable=False
        )
    fn = registry.resolve(call.spec.call)
    return fn(**call.kwargs)


# --------------------------------------------------------------------------------------- http


def run_http(call: TaskCall) -> Any:
    import urllib.error
    import urllib.request

    cfg = call.config
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
    where = f"{method} {url}"
    req = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=call.timeout) as resp:
            raw = resp.read()
            ctype = resp.headers.get("Content-Type", "")
            charset = resp.headers.get_content_charset() or "utf-8"
    except urllib.error.HTTPError as e:
        detail = _snippet(e.read())
        retryable = e.code >= 500 or e.code in RETRYABLE_4XX
        msg = f"{where} returned HTTP {e.code} {e.reason}" + (f": {detail}" if detail else "")
        raise failure(USER_ERROR, "HTTPError", msg, retryable=retryable, status=e.code) from None
    except TimeoutError:
        raise failure(TIMEOUT, "TimeoutError", f"{where} timed out after {call.timeout}s") from None
    except urllib.error.URLError as e:
        if isinstance(e.reason, TimeoutError):
            raise failure(TIMEOUT, "TimeoutError", f"{where} timed out after {call.timeout}s") from None
        raise failure(USER_ERROR, "ConnectionError", f"{where} failed: {e.reason}") from None
    except (ConnectionError, OSError) as e:
        raise failure(USER_ERROR, "ConnectionError", f"{where} failed: {e}") from None
    text = raw.decode(charset, errors="replace")
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


def run_shell(call: TaskCall, on_process: OnProcess | None = None) -> dict[str, Any]:
    cfg = call.config
    argv = cfg.get("argv")
    if isinstance(argv, str) or not isinstance(argv, tuple | list) or not argv:
        raise failure(
            USER_ERROR,
            "SpecError",
            f"shell task {call.task_id!r}: config.argv must be a non-empty list of strings "
            "(a command line string is never passed to a shell)",
            retryable=False,
        )
    args = [str(a) for a in argv]
    env = None
    if cfg.get("env"):
        env = dict(os.environ)
        env.update({str(k): str(v) for k, v in cfg["env"].items()})
    cwd = cfg.get("cwd")
    try:
        proc = subprocess.Popen(
            args,
            shell=False,
            env=env,
            cwd=str(cwd) if cwd else None,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
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
    except PermissionError as e:
        raise failure(
            USER_ERROR,
            "PermissionError",
            f"shell task {call.task_id!r}: cannot run {args[0]!r} ({e.strerror})",
            retryable=False,
        ) from None
    if on_process is not None:
        on_process(proc)
    try:
        stdout, stderr = proc.communicate(timeout=call.timeout)
    except subprocess.TimeoutExpired:
        kill_group(proc.pid)
        proc.communicate()
        raise failure(TIMEOUT, "TimeoutError", f"{args[0]!r} timed out after {call.timeout}s") from None
    finally:
        # Whatever the command left running in its group goes with it.
        kill_group(proc.pid)
    rc = proc.returncode
    if rc != 0:
        tail = "\n".join(stderr.rstrip().splitlines()[-STDERR_TAIL_LINES:])
        how = f"was killed by {_signame(-rc)}" if rc < 0 else f"exited with code {rc}"
        msg = f"{args[0]!r} {how}" + (f"; stderr:\n{tail}" if tail else "")
        raise failure(USER_ERROR, "CommandFailed", msg, returncode=rc)
    return {"returncode": rc, "stdout": stdout, "stderr": stderr}


def kill_group(pgid: int, sig: int = signal.SIGKILL) -> None:
    """Send ``sig`` to process group ``pgid``; a group that is already gone is fine."""
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _signame(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"
