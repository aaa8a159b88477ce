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
only a reference with encoding ``artifact``: ``{"blake3": <hex>, "size": n}`` (``"sha256"`` in
references written before BLAKE3: the key names the hash), plus ``"tree": <name>`` for a file or
folder a task returned as ``podium.Artifact`` (decoded as the ``Path`` of its read-only copy),
plus ``"lineage"``: the run, task and attempt that produced it and its inputs (each upstream
task's artifact as ``algorithm:hex``, null for an inline result). The reference is
authenticated like any result and names the object only by its hash, so the object's bytes are
authenticated too; a missing or changed object is a ``CorruptResult``. A reference of any other
shape (a path, a URL, another key) is a ``CorruptResult`` too.
"""

from __future__ import annotations

import json
import os
import pickle
import re
from collections.abc import Callable, Iterable
from struct import error as struct_error
from typing import TYPE_CHECKING, Any, NamedTuple

from podium.errors import PodiumError, StoreError
from podium.model.artifact import Artifact
from podium.model.events import ResultRecord, checksum
from podium.runtime import artifact_format

if TYPE_CHECKING:
    from podium.types import ArtifactStore

#: The encoding of a record that refers to an artifact.
ARTIFACT = "artifact"
_HASHES = ("blake3", "sha256")
_HEX = re.compile(r"[0-9a-f]{64}")
_INPUT = re.compile(r"(?:blake3|sha256):[0-9a-f]{64}")
#: ``lineage(task_id, attempt)``: where an artifact came from, asked only when one is written.
Lineage = Callable[[str, int], dict[str, Any]]


class ArtifactRef(NamedTuple):
    """What an artifact reference says: the object's hash, its algorithm and size, the name of
    a tree's top entry (None for a value) and the artifact's lineage (None if not recorded)."""

    digest: str
    size: int
    algorithm: str
    tree: str | None
    lineage: dict[str, Any] | None

    @property
    def name(self) -> str:
        """``algorithm:digest``, as lineage names an input."""
        return f"{self.algorithm}:{self.digest}"


class CorruptResult(PodiumError):
    """A stored result whose bytes no longer match their checksum, or that the store could not
    authenticate, or whose artifact is missing or changed."""


def encode(
    task_id: str,
    attempt: int,
    value: Any,
    artifacts: ArtifactStore | None = None,
    lineage: Lineage | None = None,
) -> ResultRecord:
    if type(value) is Artifact:
        return _tree(task_id, attempt, value, artifacts, lineage)
    if artifacts is None:
        data = _dumps(value, 5)
    else:
        large = _large(task_id, attempt, value, artifacts, lineage)
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


def _large(
    task_id: str, attempt: int, value: Any, artifacts: ArtifactStore, lineage: Lineage | None
) -> bytes | ResultRecord:
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
        if artifact_format.is_table(value):  # an Arrow table: as an Arrow IPC file
            chunks = artifact_format.of_table(value)
        else:
            chunks = artifact_format.of_value(value, data, buffers)
    digest, size = artifacts.put(chunks)
    return _reference(task_id, attempt, {artifacts.algorithm: digest, "size": size}, lineage)


def _tree(
    task_id: str, attempt: int, value: Artifact, artifacts: ArtifactStore | None, lineage: Lineage | None
) -> ResultRecord:
    """Store the file or folder a task returned; the record refers to its tree."""
    put_tree = getattr(artifacts, "put_tree", None)
    if artifacts is None or put_tree is None:
        where = "no artifact store is open" if artifacts is None else f"{artifacts.url} keeps no folders"
        raise StoreError(f"task returned podium.Artifact({value.path!r}), and {where} (use a local folder)")
    digest, size = put_tree(value.path)
    name = os.path.basename(os.path.abspath(value.path))
    return _reference(task_id, attempt, {artifacts.algorithm: digest, "size": size, "tree": name}, lineage)


def _reference(task_id: str, attempt: int, ref: dict[str, Any], lineage: Lineage | None) -> ResultRecord:
    if lineage is not None:
        ref["lineage"] = lineage(task_id, attempt)
    data = json.dumps(ref, separators=(",", ":")).encode()
    return _new(ResultRecord, (task_id, attempt, data, checksum(data), ARTIFACT))


#: Results pickling to at most this many bytes (None, booleans, small numbers, short strings)
#: have their checksum remembered, up to ``_SMALL_KEEP`` distinct ones.
_SMALL = 32
_SMALL_KEEP = 4096
_small: dict[bytes, str] = {}
_dumps = pickle.dumps
_new = tuple.__new__


def reference(rec: ResultRecord) -> ArtifactRef | None:
    """What the artifact reference in ``rec`` says, None for an inline result; ``CorruptResult``
    for a reference that is not exactly the shape the module docstring gives."""
    if rec.encoding != ARTIFACT:
        return None
    try:
        ref = json.loads(rec.data)
        algos = [a for a in _HASHES if a in ref]
        digest, size = ref[algos[0]], ref["size"]
        tree, lineage = ref.get("tree"), ref.get("lineage")
        ok = len(algos) == 1 and set(ref) <= {algos[0], "size", "tree", "lineage"}
        ok = ok and isinstance(digest, str) and _HEX.fullmatch(digest) is not None
        ok = ok and type(size) is int and size >= 0 and (tree is None or _plain_name(tree))
        ok = ok and (lineage is None or _lineage_ok(lineage))
    except (ValueError, TypeError, KeyError, IndexError, AttributeError):
        ok = False
    if not ok:
        raise CorruptResult(f"result of task {rec.task_id!r} holds a malformed artifact reference")
    return ArtifactRef(digest, size, algos[0], tree, lineage)


def _plain_name(name: object) -> bool:
    return isinstance(name, str) and name not in ("", ".", "..") and "/" not in name and "\0" not in name


def _lineage_ok(lineage: Any) -> bool:
    inputs = lineage.get("inputs", {})
    return (
        all(isinstance(lineage.get(k), str) for k in ("run", "task"))
        and type(lineage.get("attempt")) is int
        and isinstance(inputs, dict)
        and all(v is None or (isinstance(v, str) and _INPUT.fullmatch(v)) for v in inputs.values())
    )


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
            names.add(ref.digest)
    return names


def decode(rec: ResultRecord, artifacts: ArtifactStore | None = None, verify: bool = True) -> Any:
    """The value ``rec`` holds (the ``Path`` of a tree). ``verify=False`` skips hashing a tree
    again: only for one this process has just written and hashed."""
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
        if ref.tree is not None:
            tree = getattr(artifacts, "tree", None)
            if tree is None:
                raise StoreError(f"{artifacts.url} keeps no folders")
            return tree(ref.digest, ref.tree, ref.algorithm, verify)
        head, whole = artifacts.get(ref.digest, ref.size, artifact_format.head_size, ref.algorithm)
        return artifact_format.decode(head, whole)
    except (StoreError, ValueError, struct_error) as e:
        raise CorruptResult(f"result of task {rec.task_id!r}: {e}") from None
