"""The bytes of a large result in an artifact: a pickle (protocol 5) with its buffers out of band.

Layout (little-endian): ``PDMART01`` | kind u32 | buffer count u32 | pickle length u64 |
buffer lengths (u64 each) | zeros to a multiple of 64 | the pickle | then each buffer, starting
at a multiple of 64. Kind 0 is a pickle whose out-of-band buffers (NumPy arrays, bytearrays,
``PickleBuffer`` s) follow it; kind 1 is one ``bytes`` value held as a single buffer (``bytes``
never goes out of band in pickle itself); kind 2 is a ``pyarrow.Table`` held as one buffer in
the Arrow IPC file format (readable by any Arrow implementation), read back memory-mapped.

Invariants:
- Writing copies nothing: the chunks are the pickle and views of the value's own buffers (for
  a table, the IPC writer's small messages and views of the columns' buffers). pyarrow is
  imported only for a table.
- Reading unpickles only the head (header + pickle), which the artifact store hands over as a
  private, hashed copy; buffers are views of the mapped object (array data, never code), 64-byte
  aligned, so a NumPy array is rebuilt on the mapped pages without a copy.
- Every length is checked against the object's size before any slice is taken: a damaged or
  hostile header is a ``ValueError``, never an out-of-range read.
"""

from __future__ import annotations

import pickle
import struct
from typing import Any

MAGIC = b"PDMART01"
PICKLE, BYTES, ARROW = 0, 1, 2
_FIXED = struct.Struct("<8sIIQ")
_ALIGN = 64
_MAX_BUFFERS = 1 << 24
_ZEROS = bytes(_ALIGN)


def _up(n: int) -> int:
    return -(-n // _ALIGN) * _ALIGN


def chunks(kind: int, pickled: bytes, buffers: list[memoryview]) -> list[Any]:
    """The artifact's bytes as a list of chunks (header, pickle, padding, buffers)."""
    lengths = [b.nbytes for b in buffers]
    header = _FIXED.pack(MAGIC, kind, len(buffers), len(pickled)) + struct.pack(f"<{len(lengths)}Q", *lengths)
    out: list[Any] = [header, _ZEROS[: _up(len(header)) - len(header)], pickled]
    pos = _up(len(header)) + len(pickled)
    for b in buffers:
        out.append(_ZEROS[: _up(pos) - pos])
        out.append(b)
        pos = _up(pos) + b.nbytes
    return out


def of_value(value: Any, pickled: bytes | None, buffers: list[pickle.PickleBuffer]) -> list[Any]:
    """Chunks for ``value``: a large ``bytes`` as itself, else its pickle and buffers."""
    if pickled is None:
        return chunks(BYTES, b"", [memoryview(value)])
    return chunks(PICKLE, pickled, [b.raw() for b in buffers])


def is_table(value: Any) -> bool:
    """Whether ``value`` is a ``pyarrow.Table`` (without importing pyarrow)."""
    t = type(value)
    return t.__name__ == "Table" and t.__module__ == "pyarrow.lib"


class _Parts:
    """A write-only file collecting what the Arrow IPC writer writes, without copying it."""

    closed = False

    def __init__(self) -> None:
        self.parts: list[Any] = []
        self.size = 0

    def write(self, data: Any) -> int:
        n = memoryview(data).nbytes
        self.parts.append(data)
        self.size += n
        return n

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False


def of_table(table: Any) -> list[Any]:
    """Chunks for a ``pyarrow.Table``: its Arrow IPC file as one buffer."""
    import pyarrow as pa

    sink = _Parts()
    with pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    header = _FIXED.pack(MAGIC, ARROW, 1, 0) + struct.pack("<Q", sink.size)
    return [header, _ZEROS[: _up(len(header)) - len(header)], *sink.parts]


def head_size(first: bytes) -> int:
    """How many leading bytes are header and pickle (read from the fixed header in ``first``)."""
    if len(first) < _FIXED.size:
        raise ValueError("artifact shorter than its header")
    magic, _kind, count, plen = _FIXED.unpack_from(first)
    if magic != MAGIC or count > _MAX_BUFFERS:
        raise ValueError("not a Podium artifact")
    return _up(_FIXED.size + 8 * int(count)) + int(plen)


def decode(head: bytes, whole: memoryview) -> Any:
    """The value from the private ``head`` and the mapped ``whole`` object."""
    size = whole.nbytes
    magic, kind, count, plen = _FIXED.unpack_from(head)
    start = _up(_FIXED.size + 8 * count)
    if magic != MAGIC or len(head) != start + plen or kind not in (PICKLE, BYTES, ARROW):
        raise ValueError("damaged artifact header")
    lengths = struct.unpack_from(f"<{count}Q", head, _FIXED.size)
    views, pos = [], len(head)
    for n in lengths:
        pos = _up(pos)
        if pos + n > size:
            raise ValueError("artifact buffer runs past its end")
        views.append(whole[pos : pos + n])
        pos += n
    if pos != size:
        raise ValueError("artifact has trailing bytes")
    if kind != PICKLE and (count != 1 or plen):
        raise ValueError("damaged artifact header")
    if kind == BYTES:
        return bytes(views[0])
    if kind == ARROW:  # zero-copy: the table's buffers are the mapped pages
        import pyarrow as pa

        return pa.ipc.open_file(pa.py_buffer(views[0])).read_all()
    return pickle.loads(memoryview(head)[start:], buffers=views)
