"""What the journal needs from the store behind it: the store package's internal contract.

Invariants: ``JournaledStore`` and journal recovery use nothing of their inner store beyond the
``Store`` Protocol and ``RowStore``, checked once when a journal is opened; ``SqlStore`` (SQLite,
PostgreSQL) implements it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from podium.types import SnapshotStore, Store

if TYPE_CHECKING:
    from podium.store import codec
    from podium.store.keys import ResultSigner


@runtime_checkable
class RowStore(Store, SnapshotStore, Protocol):
    """A ``Store`` that takes rows already encoded and results already tagged, and keeps
    snapshots (the journal applies its batches before it hands one on)."""

    #: Tags results with the store's key; the journal tags what it writes before the rows reach
    #: the store, so a journal record cannot carry a result the store would trust untagged.
    signer: ResultSigner

    def append_rows(
        self,
        run_id: str,
        rows: Sequence[codec.EventRow],
        results: Sequence[codec.ResultRow],
        history: Sequence[codec.HistoryRow],
    ) -> None:
        """``append`` in one transaction for encoded event rows, tagged result rows and history
        rows; ``ConflictError`` (nothing committed) if a seq or result is already there."""

    def note_attention(self, run_id: str, message: str) -> None:
        """Mark ``run_id`` as needing a person's attention, saying why."""
