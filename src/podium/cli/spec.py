"""`podium` commands: spec (see module docstring of each command)."""

from podium.cli import cli  # noqa: F401
