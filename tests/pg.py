"""A real PostgreSQL server for tests: ``$DATABASE_URL`` or a private throw-away server.

Invariants:
- No mocks: tests talk to a real server. If ``DATABASE_URL`` is set it is used as is; otherwise
  ``private_server()`` runs ``initdb`` + ``pg_ctl`` on a free port with its socket and data in a
  temporary directory, and stops and removes it afterwards.
- Missing PostgreSQL binaries fail loudly when ``CI`` is set (CI must install them:
  ``apt-get install -y postgresql``) and skip with a clear reason otherwise.
- Each test gets its own database (``fresh_database``), dropped afterwards, so tests never see
  each other's data.
- As root, ``initdb`` refuses to run, so the server runs as the ``postgres`` user.

Usable from any test directory: ``server_url_or_skip()`` in a fixture scoped to the whole test run and
``fresh_database(url)`` in a function fixture (see ``tests/store/conftest.py``).
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

INSTALL_HINT = "install PostgreSQL server binaries (apt-get install -y postgresql)"


def pg_bin_dir() -> Path | None:
    """The newest ``/usr/lib/postgresql/<version>/bin`` holding ``initdb``, else ``initdb`` on PATH."""
    found = [Path(p) for p in glob.glob("/usr/lib/postgresql/*/bin") if (Path(p) / "initdb").exists()]
    if found:
        return max(found, key=lambda p: _version_key(p.parent.name))
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(x) if x.isdigit() else 0 for x in name.split("."))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_server_user(argv: list[str]) -> list[str]:
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *argv]
    return argv


class PrivateServer:
    """A PostgreSQL server in a temp dir: ``start()``, ``url``, ``stop()``."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.dir = Path(tempfile.mkdtemp(prefix="podium-pg-"))
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self._started = False

    def _run(self, *argv: str) -> None:
        proc = subprocess.run(_as_server_user(list(argv)), capture_output=True, text=True, timeout=120)
        if proc.returncode != 0:
            log = self.dir / "log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(
                f"{Path(argv[0]).name} failed ({proc.returncode}): {proc.stderr.strip()}\n{tail}"
            )

    def start(self) -> PrivateServer:
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        data = str(self.dir / "data")
        self._run(str(self.bindir / "initdb"), "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8",
                  "--no-sync")  # fmt: skip
        opts = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.dir} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=50"
        )
        self._run(str(self.bindir / "pg_ctl"), "-D", data, "-l", str(self.dir / "log"), "-w", "-t", "30",
                  "-o", opts, "start")  # fmt: skip
        self._started = True
        return self

    def stop(self) -> None:
        try:
            if self._started:
                self._run(
                    str(self.bindir / "pg_ctl"), "-D", str(self.dir / "data"), "-m", "fast", "-w", "stop"
                )
                self._started = False
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


def _missing(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"PostgreSQL tests cannot run in CI: {reason}; {INSTALL_HINT}", pytrace=False)
    pytest.skip(f"PostgreSQL tests skipped: {reason}; set DATABASE_URL or {INSTALL_HINT}")


@contextlib.contextmanager
def server_url_or_skip() -> Iterator[str]:
    """Yield an admin URL of a usable server: ``$DATABASE_URL`` or a private one for the block."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        _missing("psycopg is not installed (pip install 'psycopg[binary]')")
    url = os.environ.get("DATABASE_URL", "").strip()
    if url:
        yield url
        return
    bindir = pg_bin_dir()
    if bindir is None:
        _missing("no PostgreSQL server binaries (initdb) found")
        return
    server = PrivateServer(bindir)
    try:
        server.start()
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
        server.stop()
        pytest.fail(f"could not start a private PostgreSQL server: {e}", pytrace=False)
    try:
        yield server.url
    finally:
        server.stop()


def with_database(url: str, dbname: str) -> str:
    """``url`` pointing at database ``dbname`` (query string kept)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{dbname}"))


def _admin(url: str, sql: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql)


@contextlib.contextmanager
def fresh_database(admin_url: str, prefix: str = "podium_test") -> Iterator[str]:
    """Create an empty database on the server of ``admin_url``; yield its URL; drop it after."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    _admin(admin_url, f'CREATE DATABASE "{name}"')
    try:
        yield with_database(admin_url, name)
    finally:
        _admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
