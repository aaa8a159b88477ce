"""Authentication and request hygiene for every request, as one ASGI middleware (``Guard``).

The token: 32 random bytes (URL-safe text) in ``server.token`` beside the server's state
(mode 0600, created on first start, reused after). A client proves it knows the token with
``Authorization: Bearer TOKEN``; a browser opens the printed login URL (``/?token=TOKEN``), which
sets an HttpOnly, SameSite=Strict session cookie (a MAC of the token, not the token) and
redirects to the same URL without the token.

Checks, in order, on every HTTP request:
1. the ``Host`` header names the address the server is bound to (DNS rebinding), else 400;
   ``/healthz`` answers whatever the Host (it says only "up"; probes use the pod's address);
2. except for the exact path ``/healthz``: valid credentials, else 401. A present but empty,
   malformed or wrong ``Authorization`` header is refused even when a cookie is valid; tokens
   are compared in constant time;
3. a state-changing request (not GET/HEAD/OPTIONS) authenticated by the cookie must come from
   the server's own pages: ``Origin`` equal to the server's origin, or, without ``Origin``,
   ``Sec-Fetch-Site: same-origin`` (CSRF), else 403;
4. the request body may not exceed ``max_body`` bytes (413).
Every response gets ``nosniff``, ``no-referrer``, ``DENY`` framing and ``no-store`` headers;
HTML responses get a Content-Security-Policy that allows only the server's own scripts.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import stat
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

from podium.errors import UsageError
from podium.server.problems import BodyTooLarge

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

TOKEN_FILE = "server.token"
_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{32,128}$")
_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})
PUBLIC_PATH = "/healthz"
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_COMMON_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
]


def load_or_create_token(state_dir: Path) -> tuple[str, Path, bool]:
    """``(token, its file, created now?)``. A token file others can read is refused."""
    path = state_dir / TOKEN_FILE
    state_dir.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        mode = path.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise UsageError(
                f"{path} is readable by other users (mode {oct(mode & 0o777)}); chmod 600 it"
            ) from None
        token = path.read_text(encoding="ascii", errors="replace").strip()
        if not _TOKEN_RE.match(token):
            raise UsageError(f"{path} does not hold a valid token; delete it to make a new one") from None
        return token, path, False
    token = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(token + "\n")
    return token, path, True


def session_value(token: str) -> str:
    return hmac.new(token.encode(), b"podium-session-v1", hashlib.sha256).hexdigest()


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode())


def _cookies(header: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in header.split(";"):
        name, sep, value = part.strip().partition("=")
        if sep and name not in out:
            out[name] = value
    return out


class Guard:
    """The middleware described in the module docstring."""

    def __init__(
        self, app: ASGIApp, *, token: str, allowed_hosts: set[str], port: int, max_body: int
    ) -> None:
        self.app = app
        self.token = token
        self.session = session_value(token)
        self.allowed_hosts = {h.lower() for h in allowed_hosts}
        self.cookie = f"podium_session_{port}"
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http":  # no websockets here
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
            return
        headers: dict[str, str] = {}
        for k, v in scope["headers"]:
            name = k.decode("latin-1").lower()
            if name in headers and name in ("host", "authorization", "cookie", "origin"):
                await _reply(send, 400, f"duplicate {name} header")
                return
            headers[name] = v.decode("latin-1")
        host = headers.get("host", "").lower()
        path = scope["path"]
        # /healthz tells nothing but "up", so orchestrators may probe it by pod or node address
        if host not in self.allowed_hosts and path != PUBLIC_PATH:
            await _reply(send, 400, f"Host header {host!r} is not this server's address")
            return
        if path != PUBLIC_PATH:
            # a login URL: the token leaves the address bar at once, whatever else is sent
            login = scope["method"] in ("GET", "HEAD") and b"token=" in scope.get("query_string", b"")
            if login and await self._login(scope, send):
                return
            via = self._credentials(headers)
            if via is None:
                await _reply(
                    send,
                    401,
                    "authentication required: send Authorization: Bearer TOKEN, or open the login URL "
                    "printed by `podium server`",
                    html=path == "/" and "text/html" in headers.get("accept", ""),
                )
                return
            if via == "cookie" and scope["method"] not in _SAFE and not self._same_origin(headers, host):
                await _reply(
                    send, 403, "cross-site request refused: state changes need the page's own origin"
                )
                return
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body):
            await _reply(send, 413 if length.isdigit() else 400, f"request body over {self.max_body} bytes")
            return
        await self.app(scope, self._limited(receive), self._secured(send))

    def _credentials(self, headers: dict[str, str]) -> str | None:
        authz = headers.get("authorization")
        if authz is not None:
            scheme, _, cred = authz.partition(" ")
            cred = cred.strip()
            if scheme.lower() == "bearer" and _TOKEN_RE.match(cred) and _same(cred, self.token):
                return "bearer"
            return None  # present but empty, malformed or wrong: never fall back to the cookie
        value = _cookies(headers.get("cookie", "")).get(self.cookie)
        if value is not None and _same(value, self.session):
            return "cookie"
        return None

    async def _login(self, scope: Scope, send: Send) -> bool:
        """``?token=`` on a GET: set the session cookie and redirect to the URL without it."""
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        given = [v for k, v in query if k == "token"]
        if len(given) != 1 or not _TOKEN_RE.match(given[0]) or not _same(given[0], self.token):
            return False
        rest = urlencode([(k, v) for k, v in query if k != "token"])
        location = scope["path"] + (f"?{rest}" if rest else "")
        cookie = f"{self.cookie}={self.session}; HttpOnly; SameSite=Strict; Path=/"
        await send(
            {
                "type": "http.response.start",
                "status": 303,
                "headers": [
                    (b"location", location.encode("latin-1", "replace")),
                    (b"set-cookie", cookie.encode()),
                    (b"cache-control", b"no-store"),
                    (b"content-length", b"0"),
                    *_COMMON_HEADERS,
                ],
            }
        )
        await send({"type": "http.response.body", "body": b""})
        return True

    @staticmethod
    def _same_origin(headers: dict[str, str], host: str) -> bool:
        origin = headers.get("origin")
        if origin is not None:
            return origin.lower() in (f"http://{host}", f"https://{host}")
        return headers.get("sec-fetch-site") == "same-origin"

    def _limited(self, receive: Receive) -> Receive:
        seen = 0
        limit = self.max_body

        async def wrapped() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(f"request body over {limit} bytes")
            return message

        return wrapped

    @staticmethod
    def _secured(send: Send) -> Send:
        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                headers += [h for h in _COMMON_HEADERS if h[0] not in names]
                if b"cache-control" not in names:
                    headers.append((b"cache-control", b"no-store"))
                ctype = next((v for k, v in headers if k.lower() == b"content-type"), b"")
                if ctype.startswith(b"text/html"):
                    headers.append((b"content-security-policy", CSP.encode()))
                message["headers"] = headers
            await send(message)

        return wrapped


_LOGIN_PAGE = (
    "<!doctype html><meta charset=utf-8><title>Podium: log in</title>"
    "<p>Open the login URL that <code>podium server</code> printed (it ends with <code>?token=...</code>), "
    "or read the token from the <code>server.token</code> file next to the store.</p>"
)


async def _reply(send: Send, status: int, message: str, html: bool = False) -> None:
    if html:
        body, ctype = _LOGIN_PAGE.encode(), b"text/html; charset=utf-8"
    else:
        body, ctype = json.dumps({"error": message}).encode(), b"application/json"
    headers = [
        (b"content-type", ctype),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
    ]
    if status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="podium"'))
    if html:
        headers.append((b"content-security-policy", CSP.encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers + _COMMON_HEADERS})
    await send({"type": "http.response.body", "body": body})


def allowed_hosts(host: str, port: int, extra: tuple[str, ...] = ()) -> set[str]:
    """Host header values that name this server: the bound address (and, for loopback, the
    usual loopback names; for a wildcard bind, this machine's names and addresses), with and
    without the port, plus ``extra`` names."""
    import ipaddress
    import socket

    names = {host.strip("[]")}
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        ip = None
    if ip is not None and ip.is_loopback:
        names |= {"localhost", "127.0.0.1", "::1"}
    if ip is not None and ip.is_unspecified:
        import psutil

        names |= {socket.gethostname(), socket.getfqdn(), "localhost", "127.0.0.1", "::1"}
        for addrs in psutil.net_if_addrs().values():
            names |= {a.address.split("%")[0] for a in addrs if a.family in (socket.AF_INET, socket.AF_INET6)}
    names |= set(extra)
    out = set()
    for n in names:
        shown = f"[{n}]" if ":" in n else n
        out |= {shown.lower(), f"{shown}:{port}".lower()}
    return out
