"""Checking a task's kind settings against what the user granted, before anything runs.

Both front ends (YAML/JSON and Python flows) call ``task_problems`` with a task's kind and its
``config`` (expressions not yet resolved), so a spec and a flow are judged alike:

- shell: ``argv[0]`` must be a program in ``allow_programs``; it may come from an expression
  (a parameter, an upstream result) only when some programs are allowed, and then the value is
  checked again when the task runs; environment variable names must be plain names that do
  not change what code a program loads (``LD_PRELOAD``...); no NUL byte anywhere.
- http: the URL's scheme must be ``http`` or ``https``; it carries no credentials; a host
  written as an IP address or ``localhost`` must be public or allowed (other names are judged
  at run time, after DNS); header names and values hold no line breaks or NUL bytes.

Invariants: pure (no I/O, no DNS); every problem is ``(path inside the task, message)`` with
a message that says how to allow what was refused.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from podium.model.task import TaskSpec, Template
from podium.policy import Policy, env_key_problem, program_refusal

Found = list[tuple[tuple[str | int, ...], str]]


def task_problems(kind: str, config: Mapping[str, Any], policy: Policy) -> Found:
    if kind == "shell" or (kind == "service" and not config.get("image")):
        return _shell(config, policy)
    if kind == "http":
        return _http(config, policy)
    return []


def _shell(config: Mapping[str, Any], policy: Policy) -> Found:
    out: Found = []
    argv = config.get("argv")
    if isinstance(argv, list | tuple) and argv:
        program = argv[0]
        if isinstance(program, str):
            if "\x00" not in program and not policy.program_allowed(program):
                out.append((("argv", 0), program_refusal(program)))
        elif not policy.programs:
            out.append(
                (
                    ("argv", 0),
                    "the program comes from an expression, so the spec could run anything: "
                    "allow the programs it may be with --allow-program or allow_programs in podium.toml",
                )
            )
        for i, a in enumerate(argv):
            if isinstance(a, str) and "\x00" in a:
                out.append((("argv", i), "contains a NUL byte"))
    env = config.get("env")
    if isinstance(env, Mapping):
        for k, v in env.items():
            msg = env_key_problem(k)
            if msg is not None:
                out.append((("env", k), msg))
            elif isinstance(v, str) and "\x00" in v:
                out.append((("env", k), "contains a NUL byte"))
    cwd = config.get("cwd")
    if isinstance(cwd, str) and "\x00" in cwd:
        out.append((("cwd",), "contains a NUL byte"))
    return out


def _http(config: Mapping[str, Any], policy: Policy) -> Found:
    out: Found = []
    url = config.get("url")
    text = url if isinstance(url, str) else _literal_prefix(url)
    if text is not None:
        msg = url_problem(text, policy, complete=isinstance(url, str))
        if msg is not None:
            out.append((("url",), msg))
    headers = config.get("headers")
    if isinstance(headers, Mapping):
        for k, v in headers.items():
            bad = [s for s in (k, v) if isinstance(s, str) and any(c in s for c in "\r\n\x00")]
            if bad or not str(k).strip():
                out.append((("headers", k), "a header name or value may not be empty or hold line breaks"))
    return out


def url_problem(text: str, policy: Policy, complete: bool = True) -> str | None:
    """What is wrong with URL ``text`` (or the literal start of a templated URL), if anything."""
    if "://" not in text:
        return f"expected an http:// or https:// URL, got {text!r}" if complete else None
    try:
        parts = urlsplit(text)
        host = parts.hostname
        _ = parts.port
    except ValueError as e:
        return f"malformed URL {text!r}: {e}" if complete else None
    if parts.scheme.lower() not in ("http", "https"):
        return f"only http and https URLs are allowed, got {parts.scheme!r}"
    if parts.username is not None or parts.password is not None:
        return "credentials in the URL are not sent: put them in headers (Authorization: ...)"
    if host is None:
        return f"URL {text!r} names no host" if complete else None
    netloc_done = complete or any(c in text.split("://", 1)[1] for c in "/?#")
    if netloc_done:
        why = policy.literal_refusal(host)
        if why is not None:
            return (
                f"host {host!r} is {why}: HTTP tasks reach public addresses only, unless the host "
                f"is allowed (--allow-host {host} or allow_hosts in podium.toml)"
            )
    return None


def literal_grants(tasks: Iterable[TaskSpec]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The programs and hosts that tasks name as literal text (what a flow grants itself)."""
    programs: dict[str, None] = {}
    hosts: dict[str, None] = {}
    for t in tasks:
        argv = t.config.get("argv")
        if (
            (t.kind == "shell" or (t.kind == "service" and "image" not in t.config))
            and isinstance(argv, tuple)
            and argv
            and isinstance(argv[0], str)
        ):
            programs[argv[0]] = None
        url = t.config.get("url")
        if t.kind == "http" and isinstance(url, str):
            try:
                host = urlsplit(url).hostname
            except ValueError:
                host = None
            if host:
                hosts[host] = None
    return tuple(programs), tuple(hosts)


def _literal_prefix(value: Any) -> str | None:
    if isinstance(value, Template) and value.parts and isinstance(value.parts[0], str):
        return value.parts[0]
    return None
