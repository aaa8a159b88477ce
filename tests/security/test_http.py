"""What an HTTP task may reach: public addresses, or hosts the user allowed; never cloud
metadata or loopback by default, never through a redirect, never with credentials handed to
another host; within a deadline and a response size cap.

Every test talks to real HTTP servers on 127.0.0.1 (threads in the test) and counts the
requests they receive: a refused request must not reach any server.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from security_helpers import Server, cli, json_reply, reply, write

from podium.errors import SpecError, TaskFailedError
from podium.executors.http import HttpRefused, fetch
from podium.executors.kinds import run_call
from podium.load import load_workflow
from podium.model import Resources, TaskCall, TaskSpec
from podium.policy import Policy
from podium.registry import Registry

LOOPBACK = Policy(hosts=("127.0.0.1",))


@pytest.fixture
def target() -> Iterator[Server]:
    """A server that answers every request with JSON naming what it received."""

    def handle(h: BaseHTTPRequestHandler) -> None:
        json_reply(h, {"path": h.path, "auth": h.headers.get("Authorization")})

    s = Server(handle)
    yield s
    s.close()


def redirector(location: str, status: int = 302) -> Server:
    return Server(lambda h: reply(h, status, b"moved", Location=location))


def call(url: str, timeout: float | None = None, **config: Any) -> TaskCall:
    spec = TaskSpec(name="t", kind="http", config={"url": url, **config})
    return TaskCall("r", "t", 1, spec, {}, spec.config, Resources(), timeout=timeout)


def run(url: str, policy: Policy = Policy(), **config: Any) -> Any:
    reg = Registry()
    reg.grant(policy)
    return run_call(call(url, **config), reg)


def refused(url: str, policy: Policy = Policy(), **config: Any) -> str:
    with pytest.raises(TaskFailedError) as e:
        run(url, policy, **config)
    assert not e.value.record.retryable
    return e.value.record.message


# -- schemes and addresses ------------------------------------------------------------------------
@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://127.0.0.1/x", "gopher://127.0.0.1:70/_x"])
def test_only_http_and_https(url: str) -> None:
    assert "only http and https" in refused(url, LOOPBACK)


def test_loopback_is_refused_unless_allowed(target: Server) -> None:
    assert "loopback" in refused(f"{target.url}/x")
    assert "--allow-host 127.0.0.1" in refused(f"{target.url}/x")
    assert target.hits == []
    assert run(f"{target.url}/x", LOOPBACK) == {"path": "/x", "auth": None}


@pytest.mark.parametrize(
    "host",
    [
        "localhost",
        "127.1",
        "0x7f000001",
        "2130706433",
        "[::1]",
        "[::ffff:127.0.0.1]",
        "0.0.0.0",
        "127.0.0.1.",
    ],
)
def test_other_spellings_of_loopback_are_refused_after_resolution(target: Server, host: str) -> None:
    with pytest.raises(TaskFailedError) as e:
        run(f"http://{host}:{target.port}/x")
    why = e.value.record.message
    assert "refused to connect" in why or "cannot resolve" in why, why
    assert target.hits == []


@pytest.mark.parametrize(
    ("host", "why"),
    [
        ("169.254.169.254", "cloud metadata"),
        ("[fd00:ec2::254]", "cloud metadata"),
        ("[::ffff:169.254.169.254]", "link-local"),
        ("169.254.1.1", "link-local"),
        ("10.0.0.1", "private"),
        ("192.168.1.1", "private"),
        ("100.64.0.1", "not publicly routable"),
        ("[fe80::1]", "link-local"),
        ("[64:ff9b::a9fe:a9fe]", "link-local"),
        ("[2002:a9fe:a9fe::1]", "link-local"),
        ("224.0.0.1", "multicast"),
    ],
)
def test_metadata_link_local_and_private_ranges_are_refused(host: str, why: str) -> None:
    t0 = time.monotonic()
    message = refused(f"http://{host}/latest/meta-data/")
    assert why in message
    assert time.monotonic() - t0 < 5  # refused before any connection attempt


def test_metadata_needs_an_exact_listing_not_a_network() -> None:
    wide = Policy(hosts=("169.254.0.0/16",))
    assert wide.address_refusal("x", __import__("ipaddress").ip_address("169.254.169.254")) is not None
    assert wide.address_refusal("x", __import__("ipaddress").ip_address("169.254.1.1")) is None


def test_the_connection_goes_to_the_address_that_was_checked(
    target: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DNS rebinding needs a second lookup between the check and the connection: there is
    none, and the request still names the host."""
    real = socket.getaddrinfo
    lookups: list[str] = []

    def fake(host: Any, *args: Any, **kw: Any) -> Any:
        if host == "rebind.example":
            lookups.append(host)
            return real("127.0.0.1", *args, **kw)
        return real(host, *args, **kw)

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    assert "loopback" in refused(f"http://rebind.example:{target.port}/a")
    assert run(f"http://rebind.example:{target.port}/a", Policy(hosts=("rebind.example",)))["path"] == "/a"
    assert lookups == ["rebind.example", "rebind.example"]  # one lookup per request
    assert target.hits[0][2]["Host"] == f"rebind.example:{target.port}"


def test_literal_addresses_are_refused_at_validation(tmp_path: Path) -> None:
    for url in ("http://169.254.169.254/latest", "http://127.0.0.1:8000/x", "file:///etc/passwd"):
        spec = write(tmp_path / "s.yaml", f"tasks:\n  t: {{kind: http, url: '{url}'}}\n")
        with pytest.raises(SpecError, match=r"tasks\.t\.url"):
            load_workflow(spec, cwd=tmp_path, registry=Registry())
    spec = write(tmp_path / "s.yaml", "tasks:\n  t: {kind: http, url: 'http://u:pw@example.com/'}\n")
    with pytest.raises(SpecError, match="credentials in the URL"):
        load_workflow(spec, cwd=tmp_path, registry=Registry())
    templated = "tasks:\n  t: {kind: http, url: 'http://169.254.169.254/${params.p}'}\nparams: {p: str}\n"
    with pytest.raises(SpecError, match="cloud metadata"):
        load_workflow(write(tmp_path / "s.yaml", templated), cwd=tmp_path, registry=Registry())


def test_a_refused_run_reaches_no_server(
    tmp_path: Path, target: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A name that resolves to loopback: refused when the task runs (validation cannot know)."""
    real = socket.getaddrinfo
    monkeypatch.setattr(
        socket,
        "getaddrinfo",
        lambda host, *a, **kw: real("127.0.0.1" if host == "internal.example" else host, *a, **kw),
    )
    write(
        tmp_path / "s.yaml", f"tasks:\n  t: {{kind: http, url: 'http://internal.example:{target.port}/x'}}\n"
    )
    args = ["run", "s.yaml", "--store", "memory:", "--no-progress"]
    code, out, _err = cli(args, cwd=tmp_path)
    assert code == 1 and "refused to connect to internal.example (127.0.0.1): loopback" in out
    assert target.hits == []
    code, _out, err = cli([*args, "--allow-host", "internal.example"], cwd=tmp_path)
    assert code == 0, err
    assert len(target.hits) == 1
    write(tmp_path / "s.yaml", f"tasks:\n  t: {{kind: http, url: 'http://localhost:{target.port}/x'}}\n")
    code, _out, err = cli(args, cwd=tmp_path)
    assert code == 2 and "loopback (localhost)" in err  # a literal loopback name: refused at validation


# -- redirects ------------------------------------------------------------------------------------
def test_a_redirect_to_the_metadata_address_is_refused() -> None:
    hop = redirector("http://169.254.169.254/latest/meta-data/iam/")
    try:
        assert "cloud metadata" in refused(
            f"{hop.url}/start", Policy(hosts=("127.0.0.1",), http_redirects="any")
        )
        assert "redirected to another host" in refused(f"{hop.url}/start", LOOPBACK)
        assert len(hop.hits) == 2
    finally:
        hop.close()


def test_redirects_within_the_same_origin_are_followed(target: Server) -> None:
    hop = Server(
        lambda h: reply(h, 302, Location="/final") if h.path == "/start" else json_reply(h, {"path": h.path})
    )
    try:
        assert run(f"{hop.url}/start", LOOPBACK) == {"path": "/final"}
    finally:
        hop.close()


def test_credentials_never_follow_a_redirect_to_another_host(target: Server) -> None:
    hop = redirector(f"{target.url}/landed", status=307)
    secret_headers = {"Authorization": "Bearer s3cret", "Cookie": "sid=s3cret", "X-Api-Key": "s3cret"}
    try:
        assert "redirected to another host" in refused(f"{hop.url}/go", LOOPBACK, headers=secret_headers)
        assert target.hits == []
        got = run(f"{hop.url}/go", LOOPBACK.widen(http_redirects="any"), headers=secret_headers)
        assert got == {"path": "/landed", "auth": None}
        sent = target.hits[0][2]
        assert not {"Authorization", "Cookie", "X-Api-Key"} & set(sent)
        assert hop.hits[0][2]["Authorization"] == "Bearer s3cret"  # the first host did get them
    finally:
        hop.close()


def test_a_redirect_loop_ends() -> None:
    loop = Server(lambda h: reply(h, 302, Location=h.path + "x"))
    try:
        assert "more than 10 redirects" in refused(f"{loop.url}/a", LOOPBACK)
        assert len(loop.hits) == 11
    finally:
        loop.close()


# -- time and size ------------------------------------------------------------------------------
def test_responses_over_the_size_cap_fail_clearly() -> None:
    body = b"x" * (2 * 1024 * 1024)

    def handle(h: BaseHTTPRequestHandler) -> None:
        if h.path == "/chunked":  # no Content-Length: the cap holds while streaming
            h.send_response(200)
            h.send_header("Transfer-Encoding", "chunked")
            h.end_headers()
            for _ in range(32):
                h.wfile.write(b"10000\r\n" + b"y" * 0x10000 + b"\r\n")
            h.wfile.write(b"0\r\n\r\n")
        else:
            reply(h, 200, body)

    big = Server(handle)
    small = LOOPBACK.widen(max_response_bytes=1024 * 1024)
    try:
        for path in ("/sized", "/chunked"):
            assert "larger than max_response_bytes (1048576 bytes" in refused(f"{big.url}{path}", small)
        assert len(run(f"{big.url}/sized", LOOPBACK)) == len(body)  # 64 MiB by default
    finally:
        big.close()


def test_the_default_deadline_is_sixty_seconds_and_configurable() -> None:
    assert Policy().http_timeout == 60.0
    slow = Server(lambda h: (time.sleep(2), reply(h, 200, b"late")))
    try:
        with pytest.raises(TaskFailedError) as e:
            run(f"{slow.url}/x", LOOPBACK.widen(http_timeout=0.3))
        assert e.value.record.kind == "timeout" and "timed out after 0.3s" in e.value.record.message
    finally:
        slow.close()


def test_the_client_is_reusable_on_its_own(target: Server) -> None:
    resp = fetch("GET", f"{target.url}/direct", policy=LOOPBACK)
    assert resp.status == 200 and b"/direct" in resp.body
    with pytest.raises(HttpRefused):
        fetch("GET", f"{target.url}/direct")
