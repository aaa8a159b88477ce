"""The store a command line invocation reads or writes: ``open_cli_store``.

Invariants: every command opens its store here (``--store URL``, else ``$PODIUM_STORE``, else the
project's store found by ``podium.store.locate``); a read-only command (``runs``, ``show``,
``logs``, ``artifacts``, ``report``, ``history``, ``advise``) never creates a store: with none
there it fails saying where it looked, and nothing is written.
"""

from __future__ import annotations

from typing import Any

import click

from podium.errors import NotFoundError

#: ``--store URL``: the one option every command that opens a store takes.
store_option = click.option(
    "--store",
    "store_url",
    metavar="URL",
    help="Store URL (default: $PODIUM_STORE, else the project's store).",
)

#: The store this invocation opened last: a "run not found" message names it.
_opened: list[Any] = []


def locate_cli_store(url: str | None) -> Any:
    """The ``Located`` store of a command (``podium.store.locate.locate``)."""
    from podium.store.locate import locate

    return locate(url)


def cli_store_url(url: str | None) -> str:
    """The URL of the store a command uses (for what is kept beside it, such as artifacts)."""
    return str(locate_cli_store(url).url)


def open_cli_store(url: str | None, *, read_only: bool = False) -> Any:
    """Open the store at ``url``, else the project's store. ``read_only``: a store that does
    not exist yet is an error naming where it was looked for, and none is created."""
    from podium.store import open_store

    found = locate_cli_store(url)
    if read_only and not found.exists():
        raise NotFoundError(missing_message(found))
    _opened[:] = [found]
    return open_store(found.url)


def name_the_store(text: str) -> str:
    """``run 'x' not found`` -> ``run 'x' not found in store PATH`` (the store last opened),
    so a run looked for in another project's store says where it was looked for."""
    if _opened and text.startswith("run ") and text.endswith(" not found"):
        return f"{text} in store {_opened[0].shown}"
    return text


def missing_message(found: Any) -> str:
    if found.looked_in:
        where = ", ".join(str(p) for p in found.looked_in)
        return f"no Podium store found (looked in: {where}); run `podium run` first or pass --store"
    return f"no Podium store at {found.shown} (from {found.origin}); run `podium run` first or pass --store"
