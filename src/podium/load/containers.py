"""Container tasks in both front ends: ``kind: container`` in YAML/JSON and ``podium.container``.

A container task runs ``image`` with ``argv`` (optional: the image's own command otherwise),
``env``, ``workdir`` and ``network`` (``none`` unless ``host``); its ``inputs`` are expressions
like a Python task's arguments (each becomes ``/podium/in/NAME.json``) and ``map`` fans it out
over one of them. See ``podium.model.container`` for the rules and docs/services.md for the
result contract.

Invariants: both front ends build the same ``TaskSpec`` for the same description (defaults such
as ``network: none`` are left out of ``config``); the image is written out in the spec, never
computed, and a YAML/JSON spec may name only images its caller allowed (``allow_images`` in
podium.toml or ``--allow-image``). A Python flow file is code the user runs, so, as with its
own task functions, its images need no allowing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from podium.errors import Problem
from podium.load import options
from podium.load.python import Handle, _check_settings, _current, _expr, _record, arguments
from podium.model import container as rules
from podium.model.task import Param, Template

P = tuple[str | int, ...]


class Reader(Protocol):
    """What ``read_container`` uses of the YAML/JSON spec reader (``podium.load.spec``)."""

    allow_images: tuple[str, ...]

    def err(self, path: Sequence[str | int], message: str, key: bool = False) -> None: ...
    def expect(self, value: Any, types: type | tuple[type, ...], path: P, what: str) -> bool: ...
    def plain(self, value: Any, path: P) -> Any: ...
    def _arg(self, value: Any, path: P) -> Any: ...
    def _map(self, body: dict[str, Any], given: Any, path: P, what: str, key: str) -> dict[str, Any]: ...


def read_container(reader: Reader, body: dict[str, Any], path: P) -> dict[str, Any]:
    """The ``TaskSpec`` fields of a YAML/JSON container task; problems go to ``reader``."""
    cfg: dict[str, Any] = {}
    image = body.get("image")
    if image is None:
        reader.err(path, "a container task needs 'image:'")
    elif (msg := rules.image_problem(image)) is not None:
        reader.err((*path, "image"), msg)
    elif not rules.image_allowed(image, reader.allow_images):
        reader.err((*path, "image"), rules.not_allowed(image))
    else:
        cfg["image"] = image
    argv = body.get("argv")
    if argv is not None and reader.expect(argv, list, (*path, "argv"), "a list of strings"):
        items = [reader.plain(options.argv_item(a), (*path, "argv", i)) for i, a in enumerate(argv)]
        for i, a in enumerate(argv):
            if not isinstance(a, str) and not options.is_number(a):
                reader.err((*path, "argv", i), f"expected a string, got {type(a).__name__} {a!r}")
        if items:
            cfg["argv"] = items
    env = body.get("env")
    if env is not None and reader.expect(env, dict, (*path, "env"), "a mapping of strings"):
        for k in env:
            if (msg := rules.env_name_problem(k)) is not None:
                reader.err((*path, "env", k), msg, key=True)
        if env:
            cfg["env"] = {k: reader.plain(options.argv_item(v), (*path, "env", k)) for k, v in env.items()}
    if "workdir" in body:
        workdir = body["workdir"]
        if isinstance(workdir, str) and "${" in workdir:  # from a result: checked when it runs
            cfg["workdir"] = reader.plain(workdir, (*path, "workdir"))
        elif (msg := rules.workdir_problem(workdir)) is not None:
            reader.err((*path, "workdir"), msg)
        else:
            cfg["workdir"] = workdir
    network = body.get("network", "none")
    if (msg := rules.network_problem(network)) is not None:
        reader.err((*path, "network"), msg)
    elif network != "none":
        cfg["network"] = network
    out: dict[str, Any] = {"config": cfg}
    inputs = body.get("inputs", {})
    if reader.expect(inputs, dict, (*path, "inputs"), "a mapping of input name to value"):
        for k in inputs:
            if (msg := rules.input_problem(k)) is not None:
                reader.err((*path, "inputs", k), msg, key=True)
        out["args"] = {k: reader._arg(v, (*path, "inputs", k)) for k, v in inputs.items()}
    out.update(reader._map(body, inputs, path, "input", "inputs"))
    return out


def container(
    image: str,
    argv: list[Any] | None = None,
    *,
    inputs: Mapping[str, Any] | None = None,
    env: Mapping[str, Any] | None = None,
    workdir: Any = None,
    network: str = "none",
    **settings: Any,
) -> Handle:
    """Declare a container task inside a flow: run ``image`` (written out, never computed) with
    ``argv``. Each of ``inputs`` (results, params, values; ``podium.each(...)`` for one
    container per item) is written to ``/podium/in/NAME.json``; the result is the JSON the
    container leaves in ``/podium/out/result.json``. The network is off unless
    ``network="host"``; ``cpu``/``memory`` become the container's limits; ``env`` values are
    treated as secrets (never on a command line, redacted from captured output)."""
    build = _current("podium.container")
    _check_settings(settings, "podium.container")
    problems: list[Problem] = []  # the image and input names are checked with the workflow
    config: dict[str, Any] = {"image": image}
    if argv:
        config["argv"] = [_expr(options.argv_item(a)) for a in argv]
    if env:
        problems += [Problem("", f"env: {m}") for k in env if (m := rules.env_name_problem(k))]
        config["env"] = {k: _expr(options.argv_item(v)) for k, v in env.items()}
    if workdir is not None:
        if not isinstance(workdir, Handle | Param | Template) and (m := rules.workdir_problem(workdir)):
            problems.append(Problem("", m))
        config["workdir"] = _expr(workdir)
    if (msg := rules.network_problem(network)) is not None:
        problems.append(Problem("", msg))
    elif network != "none":
        config["network"] = network
    args, mapped = arguments(dict(inputs or {}), problems, "input")
    name = settings.get("name")
    return _record(
        build,
        name or "container",
        settings,
        "container",
        args=args,
        config=config,
        map_over=mapped,
        problems=problems,
        exact_name=name,
    )
