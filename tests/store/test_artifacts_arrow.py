"""Arrow tables as artifacts: written as an Arrow IPC file (any Arrow reader opens the stored
bytes), read back on the mapped pages without a copy, checked like every artifact."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from podium.runtime.codec import ARTIFACT, CorruptResult, decode, encode, reference
from podium.store.artifacts import LocalArtifacts

pa = pytest.importorskip("pyarrow")


@pytest.fixture
def store(tmp_path: Path) -> LocalArtifacts:
    return LocalArtifacts(tmp_path / "artifacts", threshold=64 << 10)


def _table(rows: int) -> Any:
    import numpy as np

    return pa.table(
        {"x": np.arange(rows, dtype=np.float64), "name": pa.array([f"r{i % 97}" for i in range(rows)])}
    )


def test_a_large_table_is_an_arrow_ipc_file_read_back_without_a_copy(store: LocalArtifacts) -> None:
    table = _table(1 << 19)
    rec = encode("t", 1, table, store)
    assert rec.encoding == ARTIFACT
    ref = reference(rec)
    assert ref is not None
    raw = Path(store.where(ref.digest)).read_bytes()
    assert pa.ipc.open_file(pa.py_buffer(raw[64:])).read_all().equals(table)  # plain Arrow IPC
    allocated = pa.total_allocated_bytes()
    out = decode(rec, store)
    assert out.equals(table)
    assert pa.total_allocated_bytes() - allocated < 1 << 20  # columns on the mapped pages, not copied


def test_a_small_table_stays_inline(store: LocalArtifacts) -> None:
    rec = encode("t", 1, _table(100), store)
    assert rec.encoding == "pickle" and decode(rec, store).equals(_table(100))


def test_a_changed_table_object_is_refused(store: LocalArtifacts) -> None:
    rec = encode("t", 1, _table(1 << 16), store)
    path = Path(store.where(reference(rec).digest))  # type: ignore[union-attr]
    raw = bytearray(path.read_bytes())
    raw[-200] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(CorruptResult, match="does not match its blake3"):
        decode(rec, store)
