"""The journal's bytes: a file header, then one checksummed record per appended batch. No pickles.

File header: ``PODIUMJ2`` and the journal's generation (u32, random at creation, bumped each time
the journal restarts from the top). Record, little-endian::

    b"\\xa5PJ2" | header crc32 | generation u32 | body length u32 | body crc32 | run id length u16
    | run id (utf-8) | body

The header crc covers the run id and the fields after the crc, so a damaged body still
names its run and its length (the reader skips exactly it); a damaged header is skipped by
searching for the next marker. The body holds the batch's event rows and result rows (see
``encode_body``): fixed-width numbers, the utf-8 text of the strings, the raw result bytes and
tags. Encoding costs one ``struct.pack`` and one ``join`` per batch, about as much as a pickle;
decoding builds only ints, floats, strings and bytes. History rows are not stored: they are
derived again from the events when a record is recovered.

Invariants:
- The writer copies the body before the header: a process killed mid-append leaves a whole
  record or a zero header (an append that never returned), never a valid header over a torn body.
- Records of an older generation (left after a restart from the top was cut short) are not live.
- ``scan`` returns every intact live record in order and every damaged span between them; bytes
  that cannot be a record are never decoded, and a record that does not decode is damage.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from podium.store import codec

MAGIC = b"PODIUMJ2"
#: The pickled format of older versions: never read (see ``recovery``).
LEGACY_MAGIC = b"PODIUMJ1"
MARKER = b"\xa5PJ2"
_FILE = struct.Struct("<8sI4x")  # magic, generation, reserved
_HEAD = struct.Struct("<4sIIIIH")  # marker, header crc, generation, body length, body crc, run id length
_FIXED = struct.Struct("<IIIH")  # the part of the header its crc covers, before the run id
_COMPACT_HEAD = struct.Struct("<BIII")  # kind 0, events, results, length of the utf-8 text
_GENERAL = struct.Struct("<BQ")  # kind 1, length of the JSON text
FILE_HEADER_SIZE = _FILE.size
_crc32 = zlib.crc32
_pack_fixed = _FIXED.pack
_NO_TASK = "\x01"  # the task id of a run event (None) in a compact body
_shapes: dict[tuple[int, int], struct.Struct] = {}

ResultRow = codec.ResultRow


class RecordError(ValueError):
    """Bytes that are not a well-formed record body."""


def file_header(generation: int) -> bytes:
    return _FILE.pack(MAGIC, generation)


def generation_of(data: bytes) -> int:
    return int(_FILE.unpack_from(data)[1])


def set_generation(buf: Any, generation: int) -> None:
    """Write ``generation`` into the file header held in ``buf`` (a bytearray or memory map)."""
    _FILE.pack_into(buf, 0, MAGIC, generation)


def record_header(generation: int, run_id: bytes, body: bytes, run_crc: int | None = None) -> bytes:
    """The header of a record of ``run_id`` (utf-8) whose body is ``body``; ``run_crc`` is
    ``crc32(run_id)`` if the caller keeps it (a writer appends to one run many times)."""
    fixed = _pack_fixed(generation, len(body), _crc32(body), len(run_id))
    hcrc = _crc32(fixed, _crc32(run_id) if run_crc is None else run_crc)
    return MARKER + hcrc.to_bytes(4, "little") + fixed + run_id


def _shape(n: int, m: int) -> struct.Struct:
    """The numbers of a compact body with ``n`` events and ``m`` results: kind, counts and text
    length, then seqs, attempts and timestamps of the events, attempts and byte lengths (data,
    tag) of the results."""
    s = _shapes.get((n, m))
    if s is None:
        if len(_shapes) > 512:
            _shapes.clear()
        s = _shapes[(n, m)] = struct.Struct(f"<BIII{n}q{n}q{n}d{m}q{m}Q{m}Q")
    return s


def encode_body(rows: Sequence[codec.EventRow], results: Sequence[ResultRow]) -> bytes:
    """The body of a record: ``rows`` are event rows (run id first), ``results`` result rows.

    The compact form (kind 0) packs the numbers with one ``struct`` and joins every string with
    NUL, which JSON text (the event data) never holds raw; a missing task id is ``_NO_TASK``. A
    batch where another string holds a NUL, or a task id is ``_NO_TASK`` itself, takes the
    general form (kind 1: JSON, with floats exact)."""
    n, m = len(rows), len(results)
    if n:
        _, seqs, types, tids, attempts, stamps, datas = zip(*rows, strict=False)
        if None in tids and _NO_TASK not in tids:  # run events: a run's first batch holds them
            tids = tuple(_NO_TASK if t is None else t for t in tids)
        if m == 1:  # the engine's usual batch (one task finished this turn), inlined: hot path
            _, rtid, rattempt, blob, checksum, encoding, mac = results[0]
            text = "\0".join((*types, *tids, rtid, checksum, encoding, *datas))
            if text.count("\0") == 3 * n + 2 and None not in tids:
                raw = text.encode("utf-8", "surrogatepass")
                shape = _shapes.get((n, 1)) or _shape(n, 1)
                nums = shape.pack(0, n, 1, len(raw), *seqs, *attempts, *stamps, rattempt, len(blob), len(mac))
                return b"".join((nums, raw, blob, mac))
        elif None not in tids:
            body = _compact(n, m, seqs, types, tids, attempts, stamps, datas, results)
            if body is not None:
                return body
    meta = [[r[1:] for r in rows], [(r[1], r[2], r[4], r[5], len(r[3]), len(r[6])) for r in results]]
    raw = "".join(codec.c_encode(meta, 0)).encode("utf-8", "surrogatepass")
    return b"".join((_GENERAL.pack(1, len(raw)), raw, *(r[3] for r in results), *(r[6] for r in results)))


def _compact(
    n: int,
    m: int,
    seqs: Any,
    types: Any,
    tids: Any,
    attempts: Any,
    stamps: Any,
    datas: Any,
    results: Sequence[ResultRow],
) -> bytes | None:
    """The compact body of a batch with no result or several, or None if a string holds a NUL
    of its own (counted: JSON never does)."""
    if not m:
        text = "\0".join((*types, *tids, *datas))
        if text.count("\0") != 3 * n - 1:
            return None
        raw = text.encode("utf-8", "surrogatepass")
        return _shape(n, 0).pack(0, n, 0, len(raw), *seqs, *attempts, *stamps) + raw
    _, rtids, rattempts, blobs, sums, encs, macs = zip(*results, strict=False)
    text = "\0".join((*types, *tids, *rtids, *sums, *encs, *datas))
    if text.count("\0") != 3 * (n + m) - 1:
        return None
    raw = text.encode("utf-8", "surrogatepass")
    nums = _shape(n, m).pack(
        0, n, m, len(raw), *seqs, *attempts, *stamps, *rattempts, *map(len, blobs), *map(len, macs)
    )
    return b"".join((nums, raw, *blobs, *macs))


def decode_body(run_id: str, body: bytes) -> tuple[list[codec.EventRow], list[ResultRow]]:
    """Event rows and result rows from a record body; ``RecordError`` if it is not well formed
    (including event data that is not a JSON object)."""
    try:
        return _decode(run_id, body)
    except (struct.error, UnicodeDecodeError, ValueError, TypeError, RecursionError) as e:
        raise RecordError(f"{type(e).__name__}: {e}") from None


def _decode(run_id: str, body: bytes) -> tuple[list[codec.EventRow], list[ResultRow]]:
    if body[:1] == b"\0":
        rows, metas, rest = _decode_compact(run_id, body)
    elif body[:1] == b"\1":
        rows, metas, rest = _decode_general(run_id, body)
    else:
        raise RecordError("unknown body kind")
    blobs, pos = [], 0
    for size in [r[3] for r in metas] + [r[6] for r in metas]:  # the data of each, then each tag
        blobs.append(rest[pos : pos + size])
        pos += size
    if pos != len(rest):
        raise RecordError("byte lengths do not add up to the body")
    m = len(metas)
    results = [(*r[:3], blobs[i], r[4], r[5], blobs[m + i]) for i, r in enumerate(metas)]
    for r in rows:
        if not (type(r[1]) is int and type(r[2]) is str and isinstance(codec.decode_json(r[6]), dict)):
            raise RecordError("an event row is malformed")
    return rows, results  # type: ignore[return-value]


def _decode_compact(run_id: str, body: bytes) -> tuple[list[Any], list[Any], bytes]:
    _, n, m, text_len = _COMPACT_HEAD.unpack_from(body)
    if _COMPACT_HEAD.size + 24 * n + 24 * m + text_len > len(body):  # before building a large struct
        raise RecordError(f"counts ({n} events, {m} results) exceed the body")
    shape = _shape(n, m)
    v = shape.unpack_from(body)[4:]
    end = shape.size + text_len
    text = body[shape.size : end].decode("utf-8", "surrogatepass")
    parts = text.split("\0") if n or m else []
    if len(parts) != 3 * (n + m):
        raise RecordError("the strings do not match the counts")
    types, datas = parts[:n], parts[2 * n + 3 * m :]
    tids = [None if t == _NO_TASK else t for t in parts[n : 2 * n]]
    strs = parts[2 * n : 2 * n + 3 * m]  # the results' task ids, then checksums, then encodings
    rows = list(zip([run_id] * n, v[:n], types, tids, v[n : 2 * n], v[2 * n : 3 * n], datas, strict=True))
    r = v[3 * n :]  # the results' attempts, then data lengths, then tag lengths
    results = [
        (run_id, strs[i], r[i], r[m + i], strs[m + i], strs[2 * m + i], r[2 * m + i]) for i in range(m)
    ]
    return rows, results, body[end:]


def _decode_general(run_id: str, body: bytes) -> tuple[list[Any], list[Any], bytes]:
    _, size = _GENERAL.unpack_from(body)
    end = _GENERAL.size + size
    if end > len(body):
        raise RecordError("text length exceeds the body")
    events, metas = codec.decode_json(body[_GENERAL.size : end].decode("utf-8", "surrogatepass"))
    rows = [(run_id, seq, typ, tid, attempt, float(ts), data) for seq, typ, tid, attempt, ts, data in events]
    out = [
        (run_id, tid, attempt, size, checksum, enc, mac) for tid, attempt, checksum, enc, size, mac in metas
    ]
    if any(type(x) is not int or x < 0 for r in out for x in (r[3], r[6])):
        raise RecordError("a byte length is not a count")
    return rows, out, body[end:]


@dataclass
class Scan:
    """What a journal file holds: intact live records ``(run_id, rows, results)`` in order with
    their byte ``spans``, and damaged spans ``(start, end, run_id or None)``."""

    generation: int
    records: list[tuple[str, list[codec.EventRow], list[ResultRow]]] = field(default_factory=list)
    spans: list[tuple[int, int]] = field(default_factory=list)
    damaged: list[tuple[int, int, str | None]] = field(default_factory=list)
    #: index into ``records`` of the first record after each damaged span
    after: list[int] = field(default_factory=list)

    def damaged_before(self, record: int) -> list[tuple[int, int, str | None]]:
        """The damaged spans between record ``record`` and the intact record before it."""
        return [d for d, a in zip(self.damaged, self.after, strict=True) if a == record]


def _header_at(data: bytes, pos: int) -> tuple[int, str, int, int, int] | None:
    """(generation, run_id, body start, body end, body crc) of a well-formed header at ``pos``
    whose body fits in ``data``, else None."""
    if pos + _HEAD.size > len(data) or data[pos : pos + 4] != MARKER:
        return None
    _, hcrc, gen, blen, bcrc, rlen = _HEAD.unpack_from(data, pos)
    start = pos + _HEAD.size + rlen
    if start + blen > len(data):
        return None
    rid = data[pos + _HEAD.size : start]
    if _crc32(data[pos + 8 : pos + _HEAD.size], _crc32(rid)) != hcrc:
        return None
    try:
        return gen, rid.decode("utf-8", "surrogatepass"), start, start + blen, bcrc
    except UnicodeDecodeError:
        return None


def _ends_here(data: bytes, pos: int) -> bool:
    """Whether ``pos`` holds no live header in a way an intact journal can: zeros (the space after
    the last record, or an append cut short before its header) or a header of an older generation
    (a restart from the top cut short)."""
    return not any(data[pos : pos + _HEAD.size]) or _header_at(data, pos) is not None


def scan(data: bytes) -> Scan:
    """Every intact live record of a journal file and every damaged span (see the module doc)."""
    if not data.startswith(MAGIC) or len(data) < FILE_HEADER_SIZE:
        return Scan(0)
    out = Scan(generation_of(data))
    pos, bad = FILE_HEADER_SIZE, -1  # bad: where bytes that are no live record began
    while pos < len(data):
        head = _header_at(data, pos)
        if head is None or head[0] != out.generation:
            if bad < 0:
                bad = pos
            pos = data.find(MARKER, pos + 1)
            if pos < 0:
                break
            continue
        _, run_id, start, end, bcrc = head
        if bad >= 0:  # a live record after bytes that are none: those bytes are damage
            out.damaged.append((bad, pos, None))
            out.after.append(len(out.records))
            bad = -1
        body = data[start:end]
        try:
            if _crc32(body) != bcrc:
                raise RecordError("body checksum")
            rows, results = decode_body(run_id, body)
        except RecordError:
            out.damaged.append((pos, end, run_id))
            out.after.append(len(out.records))
        else:
            out.records.append((run_id, rows, results))
            out.spans.append((pos, end))
        pos = end
    if bad >= 0 and not _ends_here(data, bad):
        # Something where the next header should be that no intact journal leaves there (a header
        # is written whole, after its body): damage, even with no record after it.
        out.damaged.append((bad, len(data.rstrip(b"\0")), None))
        out.after.append(len(out.records))
    return out
