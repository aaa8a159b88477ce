"""Helpers for the attack tests: a project folder, unique module names, the CLI in process,
an audit log of what the process runs, and real local HTTP servers (threads in the test).

Every attack test states what the attacker wants (a sentinel file, a process, a request) and
checks it did not happen; these helpers make that observable.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from inprocess_cli import cli  # noqa: F401  (re-exported for the attack tests)

_COUNTER = itertools.count()


def unique(prefix: str = "secmod") -> str:
    """A module name no other test uses (modules stay in ``sys.modules`` once imported)."""
    return f"{prefix}_{uuid.uuid4().hex[:8]}_{next(_COUNTER)}"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# -- what the process runs ----------------------------------------------------------------------
#: Audit events that start programs or run code from text.
EXEC_EVENTS = frozenset(
    {"subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.startfile"}
)
_AUDIT: list[tuple[str, str]] | None = None
_AUDIT_LOCK = threading.Lock()


def _hook(event: str, args: tuple[Any, ...]) -> None:
    log = _AUDIT
    if log is not None and event in EXEC_EVENTS:
        with _AUDIT_LOCK:
            log.append((event, repr(args)[:300]))


_INSTALLED = False


@contextlib.contextmanager
def audited() -> Iterator[list[tuple[str, str]]]:
    """Record every program start (``subprocess.Popen``, ``os.system``, exec, spawn) made by
    this process while the block runs. An audit hook cannot be removed, so one is installed
    once and switched on and off."""
    global _AUDIT, _INSTALLED
    if not _INSTALLED:
        sys.addaudithook(_hook)
        _INSTALLED = True
    log: list[tuple[str, str]] = []
    _AUDIT = log
    try:
        yield log
    finally:
        _AUDIT = None


# -- HTTP servers -------------------------------------------------------------------------------
class Server:
    """A real HTTP server on ``host`` (127.0.0.1) in a thread; ``hits`` records (method, path, headers)."""

    def __init__(self, handler: Callable[[BaseHTTPRequestHandler], None], host: str = "127.0.0.1") -> None:
        self.hits: list[tuple[str, str, dict[str, str]]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                outer.hits.append((self.command, self.path, dict(self.headers.items())))
                try:
                    handler(self)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout or a size cap under test)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _any

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer((host, 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://{host}:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def reply(h: BaseHTTPRequestHandler, status: int, body: bytes = b"", **headers: str) -> None:
    h.send_response(status)
    for k, v in headers.items():
        h.send_header(k.replace("_", "-"), v)
    h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    if h.command != "HEAD":
        h.wfile.write(body)


def json_reply(h: BaseHTTPRequestHandler, value: Any) -> None:
    reply(h, 200, json.dumps(value).encode(), Content_Type="application/json")
