"""Reading the settings of http and shell tasks from a spec (``url``, ``json``, ``headers``;
``argv``, ``env``, ``cwd``): strings may hold expressions, other values stay as written.

Invariant: shapes are checked here and reported through the reader with positions; what the
settings may reach (programs, hosts, environment names) is judged by ``podium.load.grants``.
"""

from __future__ import annotations

from typing import Any, Protocol

from podium.load import options
from podium.load.report import P, describe


class Reader(Protocol):
    def err(self, path: P, message: str, key: bool = False) -> None: ...
    def issues(self, base: P, issues: options.Issues) -> None: ...
    def expect(self, value: Any, types: type | tuple[type, ...], path: P, what: str) -> bool: ...
    def plain(self, value: Any, path: P) -> Any: ...

    allow_images: tuple[str, ...]


def http_settings(r: Reader, body: dict[str, Any], path: P) -> dict[str, Any]:
    issues: options.Issues = []
    cfg: dict[str, Any] = {}
    if "method" in body:
        cfg["method"] = options.normalize_http(body["method"], issues)
    r.issues(path, issues)
    url = body.get("url")
    if url is None:
        r.err(path, "an http task needs 'url:'")
    elif r.expect(url, str, (*path, "url"), "a URL string"):
        cfg["url"] = r.plain(url, (*path, "url"))
    if "json" in body:
        cfg["json"] = r.plain(body["json"], (*path, "json"))
    if "body" in body:
        if "json" in body:
            r.err((*path, "body"), "give 'json:' or 'body:', not both")
        if r.expect(body["body"], str, (*path, "body"), "a string"):
            cfg["body"] = r.plain(body["body"], (*path, "body"))
    if "headers" in body and r.expect(body["headers"], dict, (*path, "headers"), "a mapping"):
        cfg["headers"] = r.plain(body["headers"], (*path, "headers"))
    return cfg


def service_settings(r: Reader, body: dict[str, Any], path: P) -> dict[str, Any]:
    """A service is started like a shell command (``argv``, ``env``, ``cwd``) and probed
    (``ready: {path: /health, timeout: 30s}``) until it answers."""
    image = body.get("image")
    if image is None:
        cfg = shell_settings(r, body, path, "a service")
    else:  # a container: argv (optional) is its command, inside it
        from podium.model import container as rules

        cfg = shell_settings(r, {"argv": ["-"], **body}, path, "a service")
        if "argv" not in body:
            del cfg["argv"]
        if "cwd" in body:
            r.err((*path, "cwd"), "a container service has no host working directory", key=True)
        if (msg := rules.image_problem(image)) is not None:
            r.err((*path, "image"), msg)
        elif not rules.image_allowed(image, r.allow_images):
            r.err((*path, "image"), rules.not_allowed(image))
        else:
            cfg["image"] = image
    ready = body.get("ready")
    if ready is None or not r.expect(ready, dict, (*path, "ready"), "a mapping like {path: /health}"):
        return cfg
    out: dict[str, Any] = {}
    for k in ready:
        if k not in ("path", "timeout"):
            r.err((*path, "ready", k), f"unknown key {k!r} in ready (path, timeout)", key=True)
    p = ready.get("path", "/")
    if not isinstance(p, str) or not p.startswith("/") or any(c in p for c in " \r\n\x00"):
        r.err((*path, "ready", "path"), f"expected a URL path starting with '/', got {p!r}")
    else:
        out["path"] = p
    if "timeout" in ready:
        issues: options.Issues = []
        out["timeout"] = options.duration(ready["timeout"], "timeout", issues)
        r.issues((*path, "ready"), issues)
    cfg["ready"] = out
    return cfg


def shell_settings(r: Reader, body: dict[str, Any], path: P, what: str = "a shell task") -> dict[str, Any]:
    cfg: dict[str, Any] = {}
    argv = body.get("argv")
    if argv is None:
        r.err(path, f"{what} needs 'argv:' (a list of strings)")
    elif r.expect(argv, list, (*path, "argv"), "a list of strings") and not argv:
        r.err((*path, "argv"), "argv must not be empty")
    elif isinstance(argv, list):
        items = []
        for i, a in enumerate(argv):
            if not isinstance(a, str) and not options.is_number(a):
                r.err((*path, "argv", i), f"expected a string, got {describe(a)}")
            items.append(r.plain(options.argv_item(a), (*path, "argv", i)))
        cfg["argv"] = items
    if "env" in body and r.expect(body["env"], dict, (*path, "env"), "a mapping of strings"):
        cfg["env"] = {k: r.plain(options.argv_item(v), (*path, "env", k)) for k, v in body["env"].items()}
    if "cwd" in body and r.expect(body["cwd"], str, (*path, "cwd"), "a directory path"):
        cfg["cwd"] = r.plain(body["cwd"], (*path, "cwd"))
    return cfg
