"""The command-line flags that grant a spec more than ``podium.toml`` does, shared by every
command that loads a spec (``run``, ``validate``, ``graph``, ``plan``): modules, programs,
hosts, container images, environment variables and module folders.

Invariant: a flag only ever widens what the project configuration grants; a command receives
the flags as one ``grants`` mapping it passes to ``load_workflow``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import click

GRANT_OPTIONS: tuple[tuple[str, str, str, str], ...] = (
    ("--allow-module", "allow_modules", "MODULE", "Allow Python tasks from MODULE."),
    ("--allow-program", "allow_programs", "PROGRAM", "Allow shell tasks to run PROGRAM."),
    ("--allow-host", "allow_hosts", "HOST", "Allow HTTP tasks to reach HOST (a name, IP or network)."),
    ("--allow-image", "allow_images", "IMAGE", "Allow container tasks to run IMAGE."),
    ("--allow-env", "allow_env", "NAME", "Allow the spec to read environment variable NAME."),
    ("--module-path", "module_paths", "DIR", "Also look for allowed modules in DIR."),
)


def grant_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Add the grant flags (all repeatable) to a command; it receives them as ``grants``."""

    @functools.wraps(fn)
    def command(*args: Any, **kwargs: Any) -> Any:
        grants = {key: tuple(kwargs.pop(key, None) or ()) for _, key, _, _ in GRANT_OPTIONS}
        return fn(*args, grants=grants, **kwargs)

    for flag, key, metavar, text in reversed(GRANT_OPTIONS):
        help_ = f"{text} Repeatable; adds to {key} in podium.toml."
        command = click.option(flag, key, multiple=True, metavar=metavar, help=help_)(command)
    return command
