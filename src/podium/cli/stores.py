"""The store a command line invocation reads or writes: ``open_cli_store``.

Invariant: one place decides which store a command opens (``--store URL``, else the default).
"""

from __future__ import annotations

from typing import Any


def open_cli_store(url: str | None) -> Any:
    """Open the store at ``url``, else the default store."""
    from podium.store import default_store_url, open_store

    return open_store(url or default_store_url())
