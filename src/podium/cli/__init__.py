"""The ``podium`` command line: a thin edge over the library.

Invariants: every error becomes one line on stderr (``error: ...``; a spec error lists each
problem on its own line) and a non-zero exit code, never a traceback; ``exit_code`` is the one
mapping from an error to its exit code (a Podium error's class decides: 2 for bad input, 1 for
a run that did not succeed, 130 for an interrupted one); commands live in one module per group,
register on ``cli`` and end by returning or raising, never by exiting themselves.
"""

from __future__ import annotations

import importlib
import os
import sys

import click

from podium.errors import NotFoundError, PodiumError, UsageError


class RunNotSucceeded(PodiumError):
    """A run ended failed or cancelled (it can be resumed)."""

    exit_code = 1


class RunInterrupted(PodiumError):
    """Ctrl-C or SIGTERM stopped a run: it was cancelled cleanly and can be resumed."""

    exit_code = 130


#: Which module defines each command: a command's module is imported when it is asked for, so
#: ``podium show`` does not pay for importing what ``podium run`` needs (``--help`` imports all).
COMMANDS = {
    "artifacts": "artifacts",
    "gc": "artifacts",
    "history": "learn",
    "advise": "learn",
    "logs": "logs",
    "plan": "plan",
    "report": "report",
    "resume": "resume",
    "cancel": "resume",
    "run": "run",
    "server": "server",
    "runs": "show",
    "show": "show",
    "validate": "spec",
    "graph": "spec",
    "schema": "spec",
}


class _LazyGroup(click.Group):
    """A group whose commands register when their module is first imported (``COMMANDS``)."""

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = COMMANDS.get(cmd_name)
        if module is not None and cmd_name not in self.commands:
            importlib.import_module(f"podium.cli.{module}")
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        for module in sorted(set(COMMANDS.values())):
            importlib.import_module(f"podium.cli.{module}")
        return super().list_commands(ctx)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="podium")
def cli() -> None:
    """Podium: plan and run AI workflows to minimise alpha*T + beta*R."""


_EXPECTED = (PodiumError, click.ClickException, click.exceptions.Abort, KeyboardInterrupt)


def exit_code(err: BaseException) -> int:
    """The exit code for ``err``: the one mapping from errors to exit codes."""
    if isinstance(err, PodiumError):
        return err.exit_code
    if isinstance(err, click.ClickException):
        return err.exit_code or 2  # click's usage errors: 2
    if isinstance(err, KeyboardInterrupt | click.exceptions.Abort):
        return 130
    return 1  # a bug, not bad input


def message(err: BaseException) -> str:
    """The one line (or a spec error's lines) that says what went wrong."""
    if isinstance(err, click.ClickException):
        return err.format_message()
    if isinstance(err, click.exceptions.Abort):
        return "aborted"
    if isinstance(err, KeyboardInterrupt):
        return "interrupted"
    if isinstance(err, PodiumError):
        return str(err)
    return f"internal error: {type(err).__name__}: {err} (set PODIUM_DEBUG=1 for the traceback)"


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI and translate every error into a message and an exit code."""
    args = sys.argv[1:] if argv is None else list(argv)
    _opened_stores_forget()
    try:
        for i, a in enumerate(args, 1):
            if "\x00" in a:
                raise UsageError(f"argument {i} contains a NUL byte")
        rv = cli.main(args=args, prog_name="podium", standalone_mode=False)
    except (Exception, KeyboardInterrupt) as e:
        if os.environ.get("PODIUM_DEBUG") and not isinstance(e, _EXPECTED):
            raise
        from podium.cli.terminal import safe  # messages quote specs and tasks: no raw escapes, no secrets

        text = message(e)
        if isinstance(e, NotFoundError):
            from podium.cli.stores import name_the_store

            text = name_the_store(text)
        if isinstance(e, click.exceptions.NoArgsIsHelpError):  # bare ``podium``: its help, not an error
            click.echo(safe(text).rstrip(), err=True)
        else:
            click.echo(f"error: {safe(text).rstrip()}", err=True)
        sys.exit(exit_code(e))
    if isinstance(rv, int) and rv:  # click's own ``ctx.exit(code)``
        sys.exit(rv)


def _opened_stores_forget() -> None:
    """A new invocation (tests run several in one process) has opened no store yet."""
    stores = sys.modules.get("podium.cli.stores")
    if stores is not None:
        stores._opened.clear()
