"""The ``podium`` command line: a thin edge over the library.

Invariants: every error becomes one line on stderr (``error: ...``; a spec error lists each
problem on its own line) and a non-zero exit code taken from the error class (2 for bad input),
never a traceback; commands live in one module per group and register on ``cli``.
"""

from __future__ import annotations

import os
import sys

import click

from podium.errors import PodiumError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="podium")
def cli() -> None:
    """Podium: plan and run AI workflows to minimise alpha*T + beta*R."""


def fail(message: str, code: int = 2) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI and translate every error into a message and an exit code."""
    from podium.cli import plan, run, server, spec  # noqa: F401  (registers commands)

    args = sys.argv[1:] if argv is None else list(argv)
    for i, a in enumerate(args, 1):
        if "\x00" in a:
            fail(f"argument {i} contains a NUL byte")
    try:
        rv = cli.main(args=args, prog_name="podium", standalone_mode=False)
    except click.exceptions.Abort:
        fail("aborted", 130)
    except click.ClickException as e:
        fail(e.format_message(), e.exit_code if e.exit_code else 2)
    except PodiumError as e:
        fail(str(e), e.exit_code)
    except KeyboardInterrupt:
        fail("interrupted", 130)
    except Exception as e:  # a bug, not bad input: one line unless asked for the traceback
        if os.environ.get("PODIUM_DEBUG"):
            raise
        fail(f"internal error: {type(e).__name__}: {e} (set PODIUM_DEBUG=1 for the traceback)", 1)
    else:
        if isinstance(rv, int) and rv:
            sys.exit(rv)
