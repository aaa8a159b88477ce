"""``podium.http(...)``, ``podium.shell(...)`` and ``podium.service(...)``: declaring the other
task kinds inside a flow.

Their settings (``url``, ``json``, ``headers``, ``argv``, ``env``, ``cwd``) may hold task
results, parameters, templates and secrets; the task settings are those of ``@podium.task``.
Invariant: a declaration records a ``TaskSpec`` exactly as the YAML front end would build it
from the same settings (both go through ``podium.load.options``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from podium.errors import Problem
from podium.load import options
from podium.load.python import Handle, _check_settings, _current, _expr, _record


def http(
    url: Any,
    *,
    method: str | None = None,
    json: Any = None,
    body: Any = None,
    headers: Mapping[str, Any] | None = None,
    **settings: Any,
) -> Handle:
    """Declare an HTTP task inside a flow (``url``/``json``/``body``/``headers`` may hold results
    or params). Without ``method`` the request is a POST when it has a body, else a GET."""
    build = _current("podium.http")
    _check_settings(settings, "podium.http")
    issues: options.Issues = []
    config: dict[str, Any] = {"url": _expr(url)}
    if method is not None:
        config["method"] = options.normalize_http(method, issues)
    if json is not None and body is not None:
        issues.append(("body", "give json or body, not both"))
    if json is not None:
        config["json"] = _expr(json)
    if body is not None:
        config["body"] = _expr(body)
    if headers is not None:
        config["headers"] = _expr(dict(headers))
    problems = [Problem("", f"{k}: {m}") for k, m in issues]
    name = settings.get("name")
    return _record(build, name or "http", settings, "http", config=config, problems=problems, exact_name=name)


def shell(
    argv: list[Any],
    *,
    env: Mapping[str, Any] | None = None,
    cwd: Any = None,
    **settings: Any,
) -> Handle:
    """Declare a shell task inside a flow: ``argv`` items may be results, params or templates."""
    build = _current("podium.shell")
    _check_settings(settings, "podium.shell")
    config: dict[str, Any] = {"argv": [_expr(options.argv_item(a)) for a in argv]}
    if env is not None:
        config["env"] = {k: _expr(options.argv_item(v)) for k, v in env.items()}
    if cwd is not None:
        config["cwd"] = _expr(cwd)
    name = settings.get("name")
    return _record(build, name or "shell", settings, "shell", config=config, exact_name=name)


def service(
    argv: list[Any] | None = None,
    *,
    image: str | None = None,
    ready: str = "/",
    ready_timeout: Any = None,
    env: Mapping[str, Any] | None = None,
    cwd: Any = None,
    **settings: Any,
) -> Handle:
    """Declare a service inside a flow: ``argv`` is started with ``PORT`` set, probed at
    ``ready`` until it answers, and kept running while tasks that use it (``svc["url"]``) run.
    With ``image`` it is a container (``argv`` its command; the flow's images need no allowing)."""
    from podium.model.container import image_problem

    build = _current("podium.service")
    _check_settings(settings, "podium.service")
    issues: options.Issues = []
    config: dict[str, Any] = {}
    if argv is not None:
        config["argv"] = [_expr(options.argv_item(a)) for a in argv]
    elif image is None:
        issues.append(("argv", "a service needs argv (a process) or image (a container)"))
    if image is not None:
        if (msg := image_problem(image)) is not None:
            issues.append(("image", msg))
        config["image"] = image
    if env is not None:
        config["env"] = {k: _expr(options.argv_item(v)) for k, v in env.items()}
    if cwd is not None:
        config["cwd"] = _expr(cwd)
    probe: dict[str, Any] = {"path": ready}
    if not isinstance(ready, str) or not ready.startswith("/"):
        issues.append(("ready", f"expected a URL path starting with '/', got {ready!r}"))
    if ready_timeout is not None:
        probe["timeout"] = options.duration(ready_timeout, "ready_timeout", issues)
    config["ready"] = probe
    problems = [Problem("", f"{k}: {m}") for k, m in issues]
    name = settings.get("name")
    return _record(
        build, name or "service", settings, "service", config=config, problems=problems, exact_name=name
    )
