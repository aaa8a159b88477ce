"""Authentication, Host and CSRF checks on a real server: every route of the app's router
answers 401 without valid credentials, except exactly ``/healthz``."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import httpx
import pytest

from podium.server.app import Server, build_app
from podium.server.auth import allowed_hosts
from podium.server.config import ServerConfig

from .conftest import ServerProcess

BAD_AUTH = [
    {},
    {"Authorization": ""},
    {"Authorization": "Bearer"},
    {"Authorization": "Bearer x"},
    {"Authorization": "Token abc"},
    {"Authorization": "Basic dXNlcjpwYXNz"},
    {"Authorization": "Bearer not-the-token-not-the-token-not-the-token"},
    {"Authorization": "Bearer a b c"},
]


@pytest.fixture(scope="module")
def router_routes(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, str]]:
    """(method, path) of every route of the app, from its router."""
    tmp = tmp_path_factory.mktemp("routes")
    srv = Server(
        store_url=f"sqlite:///{tmp / 'db.sqlite'}",
        config=ServerConfig(base_dir=tmp),
        state_dir=tmp,
        host="127.0.0.1",
        port=1,
        token="t" * 43,
    )
    try:
        app = build_app(srv, allowed_hosts("127.0.0.1", 1))
        out = []
        for route in app.routes:
            for method in sorted(route.methods or ()):
                if method != "HEAD":
                    out.append((method, route.path))
        return out
    finally:
        srv.close()


def _fill(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x1", path).replace("/static/x1", "/static/app.js")


def test_every_route_but_healthz_needs_credentials(server: ServerProcess, router_routes) -> None:
    assert len(router_routes) >= 19
    for method, path in router_routes:
        for headers in BAD_AUTH:
            r = server.anon.request(method, _fill(path), headers=headers)
            if path == "/healthz":
                assert r.status_code == 200
            else:
                assert r.status_code == 401, (method, path, headers, r.status_code)
                assert r.headers["www-authenticate"].startswith("Bearer")
    assert server.anon.get("/healthz/").status_code == 401  # exactly /healthz, nothing like it
    assert server.anon.get("/healthz?x=1").status_code == 200


def test_the_openapi_document_describes_every_route(server: ServerProcess, router_routes) -> None:
    doc = server.get("/api/openapi.json").json()
    documented = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
    assert documented == set(router_routes)
    for p, ops in doc["paths"].items():
        for op in ops.values():
            assert ("security" in op and op["security"] == []) == (p == "/healthz")


def test_a_valid_cookie_does_not_rescue_a_bad_bearer(server: ServerProcess) -> None:
    r = httpx.get(f"{server.url}/?token={server.token}", follow_redirects=False)
    cookie = r.headers["set-cookie"]
    jar = {cookie.split("=", 1)[0]: cookie.split("=", 1)[1].split(";", 1)[0]}
    assert httpx.get(f"{server.url}/api/runs", cookies=jar).status_code == 200
    bad = {"Authorization": "Bearer wrong-wrong-wrong-wrong-wrong-wrong-wrong"}
    assert httpx.get(f"{server.url}/api/runs", cookies=jar, headers=bad).status_code == 401


def test_login_url_sets_a_strict_httponly_cookie_and_drops_the_token(server: ServerProcess) -> None:
    r = httpx.get(f"{server.url}/?token={server.token}&x=1", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/?x=1"
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and server.token not in cookie
    assert httpx.get(f"{server.url}/?token=wrong", follow_redirects=False).status_code == 401
    page = httpx.get(f"{server.url}/", headers={"accept": "text/html"})
    assert page.status_code == 401 and "login URL" in page.text


def test_state_changes_with_the_cookie_need_the_same_origin(server: ServerProcess) -> None:
    r = httpx.get(f"{server.url}/?token={server.token}", follow_redirects=False)
    name, value = r.headers["set-cookie"].split(";", 1)[0].split("=", 1)
    c = httpx.Client(base_url=server.url, cookies={name: value})
    try:
        url = "/api/runs/no-such-run/cancel"
        assert c.post(url).status_code == 403  # neither Origin nor Sec-Fetch-Site
        assert c.post(url, headers={"Origin": "http://evil.example"}).status_code == 403
        assert c.post(url, headers={"Origin": "null"}).status_code == 403
        assert c.post(url, headers={"Sec-Fetch-Site": "same-site"}).status_code == 403
        assert c.post(url, headers={"Sec-Fetch-Site": "cross-site"}).status_code == 403
        # the page's own origin passes the CSRF check (and then finds no such run)
        assert c.post(url, headers={"Origin": f"http://{server.host}"}).status_code == 404
        assert c.post(url, headers={"Sec-Fetch-Site": "same-origin"}).status_code == 404
        # the bearer header needs no origin: a cross-site page cannot set it
        assert server.post(url).status_code == 404
    finally:
        c.close()


def test_host_header_must_name_this_server(server: ServerProcess) -> None:
    port = server.host.rsplit(":", 1)[1]
    for host in (
        "evil.example",
        f"evil.example:{port}",
        f"127.0.0.1.evil.example:{port}",
        "",
        f"10.0.0.1:{port}",
    ):
        r = server.get("/api/runs", headers={"Host": host})
        assert r.status_code == 400, host
        # /healthz says only "up": probes by pod or node address get it, and nothing else
        health = server.anon.get("/healthz", headers={"Host": host})
        assert health.status_code == 200 and len(health.content) < 64, host
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", "localhost"):
        assert server.get("/api/runs", headers={"Host": host}).status_code == 200


def test_request_bodies_are_limited(server: ServerProcess) -> None:
    big = b"x" * ((1 << 20) + 1)
    assert server.post("/api/runs", content=big).status_code == 413

    def chunks():
        for _ in range(40):
            yield b"y" * 65536

    r = server.post("/api/runs", content=chunks())  # no Content-Length: counted as it arrives
    assert r.status_code == 413 and "over" in r.json()["error"]


def test_token_file_is_private_and_reused(server: ServerProcess) -> None:
    path = Path(server.root) / ".podium" / "server.token"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().strip() == server.token
    assert len(server.token) >= 40
    assert stat.S_IMODE((Path(server.root) / ".podium" / "server.db").stat().st_mode) == 0o600


def test_security_headers(server: ServerProcess) -> None:
    page = server.get("/")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"
    api = server.get("/api/runs")
    assert api.headers["cache-control"] == "no-store" and api.headers["x-content-type-options"] == "nosniff"
    assert "access-control-allow-origin" not in api.headers
    assert server.get("/static/..%2f..%2fapp.py").status_code == 404
    assert server.get("/static/index.html").status_code == 404
