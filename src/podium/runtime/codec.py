"""How task results become bytes in the store and back.

Invariants: every stored result carries the sha256 of its bytes; ``decode`` unpickles only a
record whose checksum matches its bytes and raises ``CorruptResult`` otherwise (the engine then
runs the task again; a cache entry is a miss). Results are pickled (protocol 5) because they are
the user's own values, and unpickling runs code, so nothing written by anyone else may reach
``decode``: a durable store hands back a result only if its tag, made with the store's secret
key, checks (``podium.store.keys``), and otherwise with a checksum that never matches. So a
result planted or altered in the database, even with its sha256 recomputed, fails here.

Large results: with an artifact store (``types.ArtifactStore``), a result whose pickle and
out-of-band buffers together exceed the store's ``threshold`` is written there streaming (see
``artifact_format``: no copy of array data, none of a large ``bytes``), and the record holds
only a reference, ``{"sha256": ..., "size": ...}`` with encoding ``artifact``. The reference is
authenticated like any result and names the object only by its hash, so the object's bytes are
authenticated too; a missing or changed object is a ``CorruptResult``.
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Iterable
from struct import error as struct_error
from typing import TYPE_CHECKING, Any

from podium.errors import PodiumError, StoreError
from podium.model.events import ResultRecord, checksum
from podium.runtime import artifact_format

if TYPE_CHECKING:
    from podium.types import ArtifactStore

#: The encoding of a record that refers to an artifact.
ARTIFACT = "artifact"


class CorruptResult(PodiumError):
    """A stored result whose bytes no longer match their checksum, or that the store could not
    authenticate, or whose artifact is missing or changed."""


def encode(task_id: str, attempt: int, value: Any, artifacts: ArtifactStore | None = None) -> ResultRecord:
    if artifacts is None:
        data = _dumps(value, 5)
    else:
        large = _large(task_id, attempt, value, artifacts)
        if type(large) is not bytes:
            return large  # type: ignore[return-value]
        data = large
    if len(data) <= _SMALL:  # the sha256 of a few bytes costs more than looking it up
        digest = _small.get(data)
        if digest is None:
            digest = checksum(data)
            if len(_small) < _SMALL_KEEP:
                _small[data] = digest
    else:
        digest = checksum(data)
    return _new(ResultRecord, (task_id, attempt, data, digest, "pickle"))


def _large(task_id: str, attempt: int, value: Any, artifacts: ArtifactStore) -> bytes | ResultRecord:
    """The inline pickle of ``value`` if it is small, else a record referring to the artifact
    it was written to."""
    limit = artifacts.threshold
    if type(value) is bytes and len(value) > limit:  # pickle would copy it: store it as itself
        chunks = artifact_format.of_value(value, None, [])
    else:
        buffers: list[pickle.PickleBuffer] = []
        data = _dumps(value, 5, buffer_callback=buffers.append)
        if not buffers and len(data) <= limit:
            return data
        if len(data) + sum(b.raw().nbytes for b in buffers) <= limit:
            return _dumps(value, 5)  # a few small arrays: in band, inline
        chunks = artifact_format.of_value(value, data, buffers)
    digest, size = artifacts.put(chunks)
    ref = json.dumps({"sha256": digest, "size": size}, separators=(",", ":")).encode()
    return _new(ResultRecord, (task_id, attempt, ref, checksum(ref), ARTIFACT))


#: Results pickling to at most this many bytes (None, booleans, small numbers, short strings)
#: have their checksum remembered, up to ``_SMALL_KEEP`` distinct ones.
_SMALL = 32
_SMALL_KEEP = 4096
_small: dict[bytes, str] = {}
_dumps = pickle.dumps
_new = tuple.__new__


def reference(rec: ResultRecord) -> tuple[str, int] | None:
    """``(sha256, size)`` of the artifact a record refers to, None for an inline result;
    ``CorruptResult`` for a reference that is not exactly that shape."""
    if rec.encoding != ARTIFACT:
        return None
    try:
        ref = json.loads(rec.data)
        digest, size = ref["sha256"], ref["size"]
        ok = set(ref) == {"sha256", "size"} and isinstance(digest, str) and len(digest) == 64
        ok = ok and all(c in "0123456789abcdef" for c in digest) and type(size) is int and size >= 0
    except (ValueError, TypeError, KeyError):
        ok = False
    if not ok:
        raise CorruptResult(f"result of task {rec.task_id!r} holds a malformed artifact reference")
    return digest, size


def referenced(refs: Iterable[bytes]) -> set[str]:
    """The sha256 names of the artifacts that reference records' data (``Store.artifact_refs``)
    refer to; a malformed reference refers to nothing (it can never be read either)."""
    names = set()
    for data in refs:
        try:
            ref = reference(ResultRecord("", 0, data, "", ARTIFACT))
        except CorruptResult:
            continue
        if ref is not None:
            names.add(ref[0])
    return names


def decode(rec: ResultRecord, artifacts: ArtifactStore | None = None) -> Any:
    if not rec.verify():  # before anything reads the bytes: they may not be ours
        raise CorruptResult(f"result of task {rec.task_id!r} fails its checksum or its authentication")
    if rec.encoding == "pickle":
        return pickle.loads(rec.data)
    if rec.encoding != ARTIFACT:
        raise CorruptResult(f"result of task {rec.task_id!r} has unknown encoding {rec.encoding!r}")
    ref = reference(rec)
    assert ref is not None
    if artifacts is None:
        raise CorruptResult(f"result of task {rec.task_id!r} is an artifact, and no artifact store is open")
    try:
        head, whole = artifacts.get(ref[0], ref[1], artifact_format.head_size)
        return artifact_format.decode(head, whole)
    except (StoreError, ValueError, struct_error) as e:
        raise CorruptResult(f"result of task {rec.task_id!r}: {e}") from None
