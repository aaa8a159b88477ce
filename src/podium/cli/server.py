"""`podium server`: the HTTP API and web UI over the store, with workers, schedules and webhooks.

Invariants: the server binds to loopback unless ``--host`` names another address, and says so
when it does; it prints the login URL (with the token) once at start; a missing ``server``
extra, a bad configuration or a store it cannot share with its workers is one line and exit 2.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

import click

from podium.cli import cli
from podium.cli.stores import store_option
from podium.errors import UsageError


def state_dir_for(store_url: str) -> Path:
    """Where the server keeps its token and records: beside a SQLite store's file, else
    ``.podium`` in the current directory."""
    url = store_url.strip()
    if "://" not in url and url not in ("memory:",):
        return Path(url).resolve().parent
    if url.lower().startswith("sqlite:"):
        path = urlsplit(url).path
        path = path[1:] if path.startswith("/") else path
        if path and path != ":memory:":
            return Path(path).resolve().parent
    return (Path.cwd() / ".podium").resolve()


def absolute_store_url(url: str) -> str:
    """``url`` with a relative SQLite path made absolute: workers may run in another folder."""
    url = url.strip()
    if "://" not in url and url not in ("memory:",):
        return str(Path(url).resolve())
    if url.lower().startswith("sqlite:///") and not url.lower().startswith("sqlite:////"):
        path, sep, query = url[len("sqlite:///") :].partition("?")
        if path and path != ":memory:":
            return f"sqlite:///{Path(path).resolve()}{sep}{query}"
    return url


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@cli.command("server")
@click.option(
    "--host", default=None, metavar="ADDR", help="Address to listen on (default 127.0.0.1, loopback only)."
)
@click.option(
    "--port", default=8765, show_default=True, type=click.IntRange(0, 65535), help="Port (0: any free one)."
)
@store_option
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    help="Configuration file (default: the project's podium.toml, found up from here).",
)
@click.option(
    "--state-dir", type=click.Path(file_okay=False), help="Where the token and server records live."
)
@click.option(
    "--allow-host", multiple=True, metavar="NAME", help="Another Host name clients may use (a proxy's)."
)
def server_cmd(
    host: str | None,
    port: int,
    store_url: str | None,
    config_path: str | None,
    state_dir: str | None,
    allow_host: Sequence[str],
) -> None:
    """Serve the HTTP API and web UI: watch runs live, start registered workflows, cancel, resume."""
    try:
        import uvicorn  # noqa: F401
        from starlette.applications import Starlette  # noqa: F401
    except ImportError:
        raise UsageError("podium server needs the 'server' extra: pip install 'podium[server]'") from None
    from podium.cli.stores import cli_store_url
    from podium.server.app import Server, build_app
    from podium.server.auth import allowed_hosts, load_or_create_token
    from podium.server.config import load_server_config
    from podium.store.codec import redact

    bind = host or "127.0.0.1"
    url = absolute_store_url(cli_store_url(store_url))
    if url.strip() in ("memory:", "memory://"):
        raise UsageError("--store memory: cannot be shared with the server's worker processes; use a file")
    config = load_server_config(config_path)
    directory = Path(state_dir).resolve() if state_dir else state_dir_for(url)
    token, token_file, created = load_or_create_token(directory)
    family = socket.AF_INET6 if ":" in bind.strip("[]") else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets that say so, and without it
    # every response waits ~40 ms for the client's delayed ACK (headers and body are two writes)
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((bind.strip("[]"), port))
    except OSError as e:
        sock.close()
        raise UsageError(f"cannot listen on {bind}:{port}: {e.strerror}") from None
    port = sock.getsockname()[1]
    try:
        server = Server(store_url=url, config=config, state_dir=directory, host=bind, port=port, token=token)
        app = build_app(server, allowed_hosts(bind, port, tuple(allow_host)))
    except BaseException:
        sock.close()
        raise
    shown = f"[{bind}]" if ":" in bind else bind
    if host is not None and not _is_loopback(bind):
        click.echo(
            f"warning: listening on {bind}, reachable from other machines; only the token protects it, "
            "and traffic is not encrypted (put a TLS proxy in front)",
            err=True,
        )
    click.echo(f"podium server {server.version} on http://{shown}:{port}/ (store {redact(url)})")
    click.echo(f"  workflows: {', '.join(sorted(server.catalog.items)) or 'none registered'}")
    click.echo(f"  token file: {token_file}{' (new)' if created else ''}")
    click.echo(f"  log in: http://{shown}:{port}/?token={token}")
    sys.stdout.flush()
    _serve(app, sock, server)


def _serve(app: object, sock: socket.socket, server: object) -> None:
    import uvicorn

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    cfg = uvicorn.Config(
        app,  # type: ignore[arg-type]
        log_level="warning",
        access_log=False,
        lifespan="on",
        proxy_headers=False,
        server_header=False,
        timeout_graceful_shutdown=3,
        h11_max_incomplete_event_size=64 * 1024,
    )
    try:
        uvicorn.Server(cfg).run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn has shut down cleanly, then passes the Ctrl-C on
        click.echo(
            "podium server stopped (its workers' runs go on; a restarted server adopts them)", err=True
        )
    finally:
        server.close()  # type: ignore[attr-defined]
        sock.close()
