"""Content hashes that name artifacts: BLAKE3 for new objects, sha256 still read.

An artifact's reference says which algorithm named it (``{"blake3": ...}`` or, written before
BLAKE3, ``{"sha256": ...}``), and a store checks an object with the algorithm its reference
names. New objects are named by BLAKE3 (the ``blake3`` package: about 2.5x sha256 on one core,
and multithreaded on a large buffer); without that package, by sha256.

Invariants:
- A digest is 64 lowercase hex digits (both algorithms give 32 bytes), checked before it is
  used as a name (``check_digest``); an algorithm is one of ``ALGORITHMS``, nothing else.
- Hashing never copies: slices of at most ``SLICE`` bytes are views of the caller's buffers,
  and both hashers release the GIL on them, so hashing can overlap a write in another thread.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Protocol

from podium.errors import StoreError

ALGORITHMS = ("blake3", "sha256")
SLICE = 8 << 20  # hash and copy in slices that stay in the CPU's caches
_DIGEST = re.compile(r"[0-9a-f]{64}")
_THREADED = 64 << 20  # one-shot BLAKE3 of at least this many bytes uses several threads
_OVERLAP = 32 << 20  # values at least this large are hashed in a second thread while written


class ArtifactError(StoreError):
    """An artifact is missing, changed or cannot be read or written."""


class Hasher(Protocol):
    def update(self, data: Any, /) -> Any: ...

    def hexdigest(self) -> str: ...


def check_digest(digest: object) -> str:
    """``digest`` if it is 64 lowercase hex digits, else ``ArtifactError`` (never a path)."""
    if not isinstance(digest, str) or not _DIGEST.fullmatch(digest):
        raise ArtifactError(f"not an artifact name: {str(digest)[:80]!r}")
    return digest


def check_algorithm(algorithm: object) -> str:
    if algorithm not in ALGORITHMS:
        raise ArtifactError(f"unknown artifact hash {str(algorithm)[:40]!r}")
    return algorithm  # type: ignore[return-value]


@functools.cache
def default_algorithm() -> str:
    """``blake3`` if its package is installed, else ``sha256``."""
    try:
        import blake3  # noqa: F401
    except ImportError:
        return "sha256"
    return "blake3"


def hasher(algorithm: str, threads: bool = False) -> Hasher:
    """A new hasher of ``algorithm`` (``threads``: BLAKE3 may use every core on large updates)."""
    if check_algorithm(algorithm) == "sha256":
        return hashlib.sha256()
    try:
        from blake3 import blake3
    except ImportError:
        raise ArtifactError("this artifact is named by BLAKE3: pip install blake3") from None
    return blake3(max_threads=blake3.AUTO) if threads else blake3()  # type: ignore[no-any-return]


def digest_of(view: Any, algorithm: str) -> str:
    """The hex digest of one buffer (BLAKE3 on several threads if it is large)."""
    mv = memoryview(view)
    h = hasher(algorithm, threads=mv.nbytes >= _THREADED)
    for s in slices([mv], 1 << 30):
        h.update(s)
    return h.hexdigest()


def slices(chunks: Iterable[Any], size: int = SLICE) -> Iterator[memoryview]:
    """Every chunk as flat byte views of at most ``size`` bytes."""
    for c in chunks:
        mv = memoryview(c).cast("B") if not isinstance(c, memoryview) or c.format != "B" else c
        for i in range(0, mv.nbytes, size):
            yield mv[i : i + size]


def hash_chunks(chunks: Sequence[Any], algorithm: str) -> tuple[str, int]:
    """Digest and total size of the concatenation of ``chunks``."""
    h, size = hasher(algorithm, threads=True), 0
    for s in slices(chunks, 1 << 30):
        h.update(s)
        size += s.nbytes
    return h.hexdigest(), size


def write_hashing(fd: int, chunks: Sequence[Any], algorithm: str) -> tuple[str, int]:
    """Write the concatenation of ``chunks`` to ``fd`` and return its digest and size. A large
    value is hashed slice by slice in a second thread while this one writes the slice (both
    release the GIL): one pass over the bytes, hashing hidden behind the write."""
    h = hasher(algorithm)
    total = 0
    pending: Future[Any] | None = None
    with contextlib.ExitStack() as stack:
        pool: ThreadPoolExecutor | None = None
        for s in slices(chunks):
            if pool is None and total >= _OVERLAP:  # large: hash from now on beside the writes
                pool = stack.enter_context(ThreadPoolExecutor(1))
            total += s.nbytes
            if pool is None:
                h.update(s)
            else:
                if pending is not None:
                    pending.result()  # updates stay in order: one at a time
                pending = pool.submit(h.update, s)
            while s.nbytes:  # a write to a regular file may be short (a full disk)
                s = s[os.write(fd, s) :]
        if pending is not None:
            pending.result()
    return h.hexdigest(), total
