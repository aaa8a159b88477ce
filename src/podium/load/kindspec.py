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


def shell_settings(r: Reader, body: dict[str, Any], path: P) -> dict[str, Any]:
    cfg: dict[str, Any] = {}
    argv = body.get("argv")
    if argv is None:
        r.err(path, "a shell task needs 'argv:' (a list of strings)")
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
