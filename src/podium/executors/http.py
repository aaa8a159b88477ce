"""A guarded HTTP client: the one way Podium makes a request a spec asked for (HTTP tasks now;
webhooks and service calls reuse it).

Guards, all from the ``Policy`` the user granted:
- only ``http`` and ``https`` URLs, without credentials in them;
- the host is resolved once, every address it resolves to must be reachable (public, or listed
  in ``allow_hosts``; cloud metadata addresses only when listed exactly), and the connection is
  made to the address that was checked (a second DNS answer cannot rebind it); TLS still
  verifies the certificate against the host name;
- redirects are followed (at most ``MAX_REDIRECTS``) only within the same scheme, host and
  port, unless ``http_redirects = "any"``; each hop is checked like the first, and a hop to
  another origin carries none of the original headers but a few harmless ones, so
  ``Authorization``, cookies and API-key headers never reach another host;
- one deadline for the whole exchange (the task's timeout, else ``http_timeout``, 60 s);
- the response body is read up to ``max_response_bytes`` (64 MiB); a larger one fails.

Proxies from the environment (``HTTP_PROXY``) are not used: a proxy would make the address
checks meaningless. Invariants: nothing is sent before the address is checked; every failure
is an ``HttpError`` (a ``PodiumError``) saying whether it is worth retrying.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

from podium.errors import PodiumError
from podium.policy import Policy

MAX_REDIRECTS = 10
REDIRECTS = frozenset({301, 302, 303, 307, 308})
#: Headers that may follow a redirect to another origin (nothing that can carry a credential).
PORTABLE_HEADERS = frozenset({"accept", "accept-language", "content-type", "user-agent"})
_CHUNK = 64 * 1024


class HttpError(PodiumError):
    """A request that failed or was refused; ``status`` is the HTTP status if there was one."""

    def __init__(
        self, message: str, *, retryable: bool = True, status: int | None = None, timeout: bool = False
    ):
        super().__init__(message)
        self.retryable = retryable
        self.status = status
        self.timeout = timeout


class HttpRefused(HttpError):
    """The policy refused the request (scheme, address, redirect, size): never retried."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=False)


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    reason: str
    headers: http.client.HTTPMessage
    body: bytes
    url: str


@dataclass(frozen=True, slots=True)
class _Target:
    scheme: str
    host: str
    port: int
    path: str

    @property
    def origin(self) -> tuple[str, str, int]:
        return (self.scheme, self.host.lower(), self.port)


def fetch(
    method: str,
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    body: bytes | None = None,
    policy: Policy | None = None,
    timeout: float | None = None,
) -> Response:
    """Make the request under ``policy`` and return the final response (any status)."""
    pol = policy or Policy()
    limit = timeout if timeout is not None and timeout > 0 else pol.http_timeout
    deadline = time.monotonic() + limit
    hdrs = dict(headers or {})
    target = target_of(url)
    for _ in range(MAX_REDIRECTS + 1):
        addr = _address(target, pol, deadline, limit)
        resp = _exchange(method, url, target, addr, hdrs, body, deadline, limit, pol.max_response_bytes)
        location = resp.headers.get("Location")
        if resp.status not in REDIRECTS or not location or pol.http_redirects == "none":
            return resp
        nxt = urljoin(url, location)
        new = target_of(nxt)
        if new.origin != target.origin:
            if pol.http_redirects != "any":
                raise HttpRefused(
                    f"{url} redirected to another host ({nxt}); not followed "
                    '(allow it with http_redirects = "any" in podium.toml)'
                )
            hdrs = {k: v for k, v in hdrs.items() if k.lower() in PORTABLE_HEADERS}
        if method != "HEAD" and (resp.status == 303 or (resp.status in (301, 302) and method != "GET")):
            method, body = "GET", None
            hdrs = {k: v for k, v in hdrs.items() if k.lower() != "content-type"}
        url, target = nxt, new
    raise HttpRefused(f"{url}: more than {MAX_REDIRECTS} redirects")


def target_of(url: str) -> _Target:
    """The parts of ``url`` a request needs; ``HttpRefused`` for anything but plain http(s)."""
    try:
        parts = urlsplit(url)
        port = parts.port
        host = parts.hostname
    except ValueError as e:
        raise HttpRefused(f"malformed URL {url!r}: {e}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise HttpRefused(f"only http and https URLs are allowed, got {url!r}")
    if parts.username is not None or parts.password is not None:
        raise HttpRefused("credentials in the URL are not sent: put them in headers (Authorization: ...)")
    if not host:
        raise HttpRefused(f"URL {url!r} names no host")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return _Target(scheme, host, port or (443 if scheme == "https" else 80), path)


def _address(target: _Target, pol: Policy, deadline: float, limit: float) -> tuple[int, Any]:
    """(family, sockaddr) to connect to: every address of the host is checked first."""
    host = target.host
    try:
        infos = socket.getaddrinfo(host, target.port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as e:
        raise HttpError(f"cannot resolve host {host!r}: {e}") from None
    if not infos:
        raise HttpError(f"host {host!r} has no address")
    if time.monotonic() > deadline:
        raise HttpError(f"resolving {host!r} took longer than {limit:g}s", timeout=True)
    for _family, _, _, _, sockaddr in infos:
        addr = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        why = pol.address_refusal(host, addr)
        if why is not None:
            shown = host if host == str(addr) else f"{host} ({addr})"
            raise HttpRefused(
                f"refused to connect to {shown}: {why}. HTTP tasks reach public addresses only, unless "
                f"the host is allowed (--allow-host {host} or allow_hosts in podium.toml)"
            )
    family, _, _, _, sockaddr = infos[0]
    return family, sockaddr


def _exchange(
    method: str,
    url: str,
    target: _Target,
    addr: tuple[int, Any],
    headers: dict[str, str],
    body: bytes | None,
    deadline: float,
    limit: float,
    max_bytes: int,
) -> Response:
    conn = _connection(target, addr, max(0.001, deadline - time.monotonic()))
    resp: http.client.HTTPResponse | None = None
    try:
        try:
            conn.request(method, target.path, body=body, headers=headers)
            resp = conn.getresponse()
        except ValueError as e:  # a header http.client refuses to send (line breaks...)
            raise HttpRefused(f"{method} {url}: {e}") from None
        length = resp.getheader("Content-Length")
        if length and length.isdigit() and int(length) > max_bytes:
            raise HttpRefused(_too_large(url, int(length), max_bytes))
        chunks: list[bytes] = []
        total = 0
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            if conn.sock is not None:
                conn.sock.settimeout(left)
            chunk = resp.read(_CHUNK)
            if not chunk:
                break
            total += len(chunk)
            if total > max_bytes:
                raise HttpRefused(_too_large(url, None, max_bytes))
            chunks.append(chunk)
        return Response(resp.status, resp.reason, resp.headers, b"".join(chunks), url)
    except TimeoutError:
        raise HttpError(f"{method} {url} timed out after {limit:g}s", timeout=True) from None
    except (http.client.HTTPException, OSError) as e:
        raise HttpError(f"{method} {url} failed: {e or type(e).__name__}") from None
    finally:
        if resp is not None:
            resp.close()
        conn.close()


def _too_large(url: str, size: int | None, limit: int) -> str:
    got = f"{size} bytes" if size is not None else "more"
    return (
        f"the response of {url} is larger than max_response_bytes ({limit} bytes; it sent {got}): "
        "raise max_response_bytes in podium.toml, or fetch it into a file with a shell task"
    )


def _connection(target: _Target, addr: tuple[int, Any], timeout: float) -> http.client.HTTPConnection:
    family, sockaddr = addr
    if target.scheme == "https":
        return _PinnedHTTPS(target.host, target.port, family, sockaddr, timeout)
    return _PinnedHTTP(target.host, target.port, family, sockaddr, timeout)


def _connect(family: int, sockaddr: Any, timeout: float | None) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(sockaddr)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except BaseException:
        sock.close()
        raise
    return sock


class _PinnedHTTP(http.client.HTTPConnection):
    """HTTP to a host name, connected to the address that was checked."""

    def __init__(self, host: str, port: int, family: int, sockaddr: Any, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._pinned = (family, sockaddr)

    def connect(self) -> None:
        self.sock = _connect(*self._pinned, self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    """HTTPS to a host name, connected to the address that was checked; the certificate is
    verified against the host name."""

    def __init__(self, host: str, port: int, family: int, sockaddr: Any, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._pinned = (family, sockaddr)

    def connect(self) -> None:
        sock = _connect(*self._pinned, self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]
