"""Shared fixtures for executor tests: a user flow file loaded by path, calls, an HTTP server."""

from __future__ import annotations

import json
import textwrap
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from executor_helpers import FLOW_MODULE

from podium.registry import Registry

FLOW = textwrap.dedent(
    """
    import os, subprocess, sys, time

    def add(a, b):
        return a + b

    def boom(x):
        raise ValueError(f"bad x={x}")

    def pid():
        return os.getpid()

    def nap(s):
        time.sleep(s)
        return s

    def spawn_and_sleep(pidfile):
        child = subprocess.Popen(["sleep", "60"])
        with open(pidfile + ".tmp", "w") as f:
            f.write(str(child.pid))
        os.rename(pidfile + ".tmp", pidfile)
        time.sleep(60)

    def hog():
        chunks = []
        while True:
            chunks.append(bytearray(16 * 1024 * 1024))

    def fill_then_die(mib):
        data = b"x" * (mib * 1024 * 1024)
        os.kill(os.getpid(), 9)
        return len(data)

    def vanish():
        os._exit(3)

    def unpicklable():
        return lambda: 1

    def echo(**kw):
        return kw
    """
)


@pytest.fixture(scope="session")
def flow_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    p = tmp_path_factory.mktemp("flows") / "flow.py"
    p.write_text(FLOW)
    return p


@pytest.fixture
def registry(flow_file: Path) -> Registry:
    r = Registry()
    r.load_file(flow_file, FLOW_MODULE)
    return r


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, code: int, body: bytes, ctype: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _route(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        path = self.path
        if path.startswith("/json"):
            payload = {
                "method": method,
                "body": json.loads(body) if body else None,
                "auth": self.headers.get("X-Token"),
            }
            self._send(200, json.dumps(payload).encode(), "application/json")
        elif path == "/text":
            self._send(200, b"hello", "text/plain; charset=utf-8")
        elif path.startswith("/status/"):
            code = int(path.rsplit("/", 1)[1])
            self._send(code, b"nope", "text/plain")
        elif path == "/slow":
            time.sleep(3)
            self._send(200, b"late", "text/plain")
        else:
            self._send(404, b"no such route", "text/plain")

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")


@pytest.fixture(scope="session")
def http_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
