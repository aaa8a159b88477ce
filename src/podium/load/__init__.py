"""The load layer: Python flows and YAML/JSON specs into a validated ``Workflow``.

Entry points: ``load_workflow(path)`` (a ``.yaml``/``.yml``/``.json`` spec or a ``.py`` file
with a ``@podium.flow``, optionally ``FILE.py:flowname``) returns ``Loaded(workflow, source)``;
``load_source(source)`` loads the same workflow again, refusing a file that changed;
``reload_source(source)`` loads what the file holds now, with what was granted when the run
started (for resume: the runtime accepts a changed file whose DAG kept its shape);
``parse_params`` reads ``-p key=value`` pairs.

Invariants: ``source`` is plain JSON-serialisable data and enough to reload the workflow;
modules a spec names are importable only when allowed by configuration or the caller;
importing this package is light (YAML is imported only when a spec is read).
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from podium.errors import Problem, SpecError
from podium.load.config import Config, load_config
from podium.load.limits import Limits
from podium.load.params import parse_params
from podium.model.cluster import Node
from podium.model.workflow import Workflow
from podium.registry import REGISTRY, Registry

__all__ = [
    "Config",
    "Limits",
    "Loaded",
    "load_config",
    "load_source",
    "load_workflow",
    "parse_params",
    "reload_source",
]

SPEC_SUFFIXES = {".yaml": "yaml", ".yml": "yaml", ".json": "json"}
#: The sha256 of the version of a flow file its imported module ran (set on the module).
_DIGEST = "__podium_sha256__"


@dataclass(frozen=True)
class Loaded:
    """A loaded workflow and the plain-data description of where it came from."""

    workflow: Workflow
    source: dict[str, Any]


def split_target(target: str | Path) -> tuple[Path, str | None]:
    """``"flows.py:train"`` -> ``(Path("flows.py"), "train")``; other paths have no flow name."""
    text = str(target)
    head, sep, tail = text.rpartition(":")
    if (
        sep
        and Path(head).suffix.lower() in (*SPEC_SUFFIXES, ".py")
        and tail
        and "/" not in tail
        and "\\" not in tail
    ):
        return Path(head), tail
    return Path(text), None


def load_workflow(
    path: str | Path,
    allow_modules: Iterable[str] = (),
    registry: Registry = REGISTRY,
    limits: Limits | None = None,
    cwd: str | Path | None = None,
    *,
    module_paths: Iterable[str | Path] = (),
    allow_programs: Iterable[str] = (),
    allow_hosts: Iterable[str] = (),
    allow_env: Iterable[str] = (),
    allow_images: Iterable[str] = (),
    nodes: Sequence[Node] | None = None,
) -> Loaded:
    """Load and validate the workflow in ``path``. ``SpecError`` lists every problem, with
    ``nodes`` (the machines the run will have) also every task that no node can ever hold.

    Granted: what ``podium.toml``/``pyproject.toml`` of the project ``cwd`` (default: the
    current directory) is in grants (``load_config``: the nearest trusted project folder up),
    plus the arguments (modules, folders to find modules in, programs, hosts, environment
    variables, container images).
    """
    file, flow_name = split_target(path)
    config = load_config(cwd).widen(
        allow_modules, module_paths, allow_programs, allow_hosts, allow_env, allow_images
    )
    shown = str(path) if flow_name is None else str(file)
    return _load(file, shown, flow_name, config, registry, limits, nodes=nodes)


def load_source(
    source: Mapping[str, Any], registry: Registry = REGISTRY, limits: Limits | None = None
) -> Workflow:
    """The workflow described by a ``Loaded.source``; ``SpecError`` if its file changed since.
    It is loaded with what was granted when the run started (recorded in the source)."""
    path, digest, config = _recorded(source)
    loaded = _load(Path(path), path, source.get("flow"), config, registry, limits, expect_sha256=digest)
    return loaded.workflow


def reload_source(
    source: Mapping[str, Any], registry: Registry = REGISTRY, limits: Limits | None = None
) -> Loaded:
    """The workflow in ``source``'s file as it is now (changed or not), loaded with what was
    granted when the run started; the returned source keeps the recorded settings (such as
    ``keep_going``) with the file's current sha256."""
    path, _, config = _recorded(source)
    loaded = _load(Path(path), path, source.get("flow"), config, registry, limits)
    return Loaded(loaded.workflow, {**source, **loaded.source})


def _recorded(source: Mapping[str, Any]) -> tuple[str, str, Config]:
    """``(path, sha256, configuration)`` of a recorded source; ``SpecError`` if incomplete."""
    kind, path, digest = source.get("kind"), source.get("path"), source.get("sha256")
    if kind not in ("yaml", "json", "python") or not isinstance(path, str) or not isinstance(digest, str):
        raise SpecError(f"run source is incomplete or unknown: {dict(source)!r}")
    if isinstance(source.get("allow"), Mapping):  # what was granted when the run started
        config = Config.from_source(source["allow"], source.get("allow_modules") or ())
    else:  # a run started before grants were recorded: the project's current configuration
        config = load_config().widen(
            source.get("allow_modules") or (), images=source.get("allow_images") or ()
        )
    return path, digest, config


def _changed(shown: str, old: str, new: str) -> str:
    return (
        f"{shown}: the spec changed since the run started (sha256 {old[:12]}... is now "
        f"{new[:12]}...); restore the original file or start a new run"
    )


def _read(file: Path, shown: str) -> bytes:
    try:
        return file.read_bytes()
    except FileNotFoundError:
        raise SpecError(f"{shown}: no such file") from None
    except IsADirectoryError:
        raise SpecError(f"{shown}: is a directory, not a spec file") from None
    except OSError as e:
        raise SpecError(f"{shown}: cannot be read: {e.strerror}") from None


def _load(
    file: Path,
    shown: str,
    flow_name: str | None,
    config: Config,
    registry: Registry,
    limits: Limits | None,
    expect_sha256: str | None = None,
    allow_images: tuple[str, ...] = (),
    nodes: Sequence[Node] | None = None,
) -> Loaded:
    suffix = file.suffix.lower()
    if suffix not in SPEC_SUFFIXES and suffix != ".py":
        raise SpecError(
            f"{shown}: unknown spec type {file.suffix or '(none)'!r}: use .yaml, .yml, .json or .py"
        )
    data = _read(file, shown)
    digest = hashlib.sha256(data).hexdigest()
    if expect_sha256 is not None and digest != expect_sha256:
        raise SpecError(_changed(shown, expect_sha256, digest))
    absolute = str(file.resolve())
    source: dict[str, Any] = {
        "path": absolute,
        "sha256": digest,
        "allow_modules": list(config.allow_modules),
        "allow": config.to_source(),
    }
    config.apply(registry)
    if suffix == ".py":
        flow = _python_flow(file, shown, flow_name, registry, limits, len(data), digest)
        try:
            wf = flow.build(nodes)
        except SpecError as e:
            raise SpecError(e.problems, source=shown) from None
        _check_grants(wf, config, registry, shown)
        return Loaded(wf, {"kind": "python", **source, "flow": flow.name})
    if flow_name is not None:
        raise SpecError(f"{shown}: ':{flow_name}' selects a flow in a .py file only")
    from podium.load.spec import load_spec

    fmt = SPEC_SUFFIXES[suffix]
    wf = load_spec(
        data, shown, fmt, registry=registry, limits=limits, default_name=file.stem, config=config, nodes=nodes
    )
    return Loaded(wf, {"kind": "yaml" if fmt == "yaml" else "json", **source, "flow": None})


def _check_grants(wf: Workflow, config: Config, registry: Registry, shown: str) -> None:
    """A flow is code the user runs, so the programs and hosts it names literally are granted
    (as its own module is); a program chosen by an expression, loader environment variables,
    URL schemes and credentials are held to the same rules as a spec's."""
    from podium.load.grants import literal_grants, task_problems

    programs, hosts = literal_grants(wf.tasks.values())
    policy = config.policy.widen(programs, hosts)
    problems = [
        Problem(f"tasks.{name}." + ".".join(str(p) for p in sub), msg)
        for name, t in wf.tasks.items()
        for sub, msg in task_problems(t.kind, t.config, policy)
    ]
    if problems:
        raise SpecError(problems, source=shown)
    registry.grant(policy)  # with the configuration's settings (a bare Policy would reset them)


def _python_flow(
    file: Path,
    shown: str,
    flow_name: str | None,
    registry: Registry,
    limits: Limits | None,
    size: int,
    digest: str,
) -> Any:
    from podium.load.flow import Flow, _user_frame

    lim = limits or Limits()
    if size > lim.max_bytes:
        raise SpecError(f"{shown}: file is {size} bytes, over the limit of {lim.max_bytes} bytes")
    module = file.stem
    existing = sys.modules.get(module)
    if existing is not None and getattr(existing, "__file__", None) != str(file.resolve()):
        raise SpecError(
            f"{shown}: a module named {module!r} is already imported from elsewhere; rename the file"
        )
    if existing is not None and getattr(existing, _DIGEST, digest) != digest:
        # the file changed since this process ran it (a resume after a fix): run the new version
        del sys.modules[module]
        registry.forget(module)
    # Like ``python FILE.py``: modules next to the flow file can be imported by it.
    folder = str(file.resolve().parent)
    if folder not in sys.path:
        sys.path.append(folder)
    try:
        mod = registry.load_file(file, module)
        setattr(mod, _DIGEST, digest)
    except SpecError:
        raise
    except SyntaxError as e:
        raise SpecError(f"{shown}:{e.lineno}:{e.offset}: Python syntax error: {e.msg}") from None
    except Exception as e:
        raise SpecError(f"{shown}: importing it failed: {type(e).__name__}: {e}{_user_frame(e)}") from None
    flows: dict[int, tuple[str, Flow]] = {}
    for attr, value in vars(mod).items():
        if isinstance(value, Flow):
            flows.setdefault(id(value), (attr, value))
    found = list(flows.values())
    names = ", ".join(sorted(f.name for _, f in found)) or "none"
    if flow_name is not None:
        for attr, f in found:
            if flow_name in (attr, f.name):
                return f
        raise SpecError(Problem(shown, f"no flow named {flow_name!r} (flows: {names})"))
    if not found:
        raise SpecError(Problem(shown, "defines no @podium.flow"))
    if len(found) > 1:
        raise SpecError(Problem(shown, f"defines {len(found)} flows ({names}): pick one with {shown}:FLOW"))
    return found[0][1]
