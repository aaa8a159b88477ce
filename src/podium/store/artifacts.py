"""Artifacts: large results kept as content-addressed objects outside the run store.

The run store keeps a reference to each large result (its hash, the hash's algorithm and its
size, in the result's row, authenticated like every result); the bytes live in an artifact
store: a local folder (the default, ``<database>.podium-artifacts`` beside a SQLite store) or an
S3-compatible bucket (``s3artifacts``). ``artifact_url.open_artifacts`` picks one from a URL.
Folders a task returned (``podium.Artifact``) are trees beside the objects (``trees``).

Invariants:
- An object's only name is the digest of its bytes (64 lowercase hex digits, checked before
  any use; BLAKE3 for new objects, sha256 for older ones, ``hashing``); a reference holds no
  path or URL, so nothing read from the database can point the store at another file, bucket
  or host.
- An object appears whole: it is written under a temporary name, its digest computed while
  writing (each slice hashed in a second thread as it is written: one pass over the bytes),
  then renamed into place. A process killed mid-write leaves only a temporary, never a partial
  object under a name (``collect`` removes temporaries and unreferenced objects older than a
  grace period, so a live run's object written just before its commit is kept).
- ``get`` hands back bytes only after their size and digest check; the object is memory-mapped
  (copy-on-write), its first ``head`` bytes (a result's pickle, which can run code) copied out
  of the map before they are hashed, so the bytes unpickled are the bytes checked; the rest
  (raw buffers such as array data, which never run code) stays a view of the map. A missing or
  changed object raises ``ArtifactError``; the runtime treats it as a corrupt result and runs
  the task again.
- The folder is 0700 and every file 0600 (``store.files``). Writes are not fsynced: like the
  SQLite store's default, an object survives a killed process but maybe not a power loss, and
  an object lost that way is found missing and its task runs again.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import stat
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from podium.store import trees
from podium.store.files import FILE_MODE, private_dir
from podium.store.hashing import (
    ArtifactError,
    check_algorithm,
    check_digest,
    default_algorithm,
    hash_chunks,
    hasher,
    slices,
    write_hashing,
)

if TYPE_CHECKING:
    from podium.types import ArtifactStore

__all__ = ["ArtifactError", "LocalArtifacts", "check_digest", "collect", "hash_chunks", "slices"]

#: Results whose encoding is larger than this go to the artifact store (1 MiB).
DEFAULT_THRESHOLD = 1 << 20
#: Unreferenced objects and temporaries younger than this are kept by ``collect`` (seconds).
GRACE = 3600.0
_HEAD = 64 << 10


class LocalArtifacts:
    """Content-addressed objects in a private folder: ``objects/ab/abcd...``, ``trees/`` and ``tmp/``."""

    def __init__(
        self, root: str | os.PathLike[str], threshold: int = DEFAULT_THRESHOLD, algorithm: str | None = None
    ) -> None:
        self.root = Path(root).absolute()
        self.threshold = threshold
        self.algorithm = check_algorithm(algorithm or default_algorithm())
        self.url = self.root.as_uri()

    def __repr__(self) -> str:
        return f"LocalArtifacts({str(self.root)!r})"

    def _path(self, digest: str) -> Path:
        digest = check_digest(digest)
        return self.root / "objects" / digest[:2] / digest

    def where(self, digest: str) -> str:
        tree = trees.location(self.root, digest)
        return str(tree if tree.is_dir() else self._path(digest))

    def _tmp(self) -> Path:
        tmpdir = self.root / "tmp"
        try:
            private_dir(tmpdir, own=True)
        except OSError as e:
            raise ArtifactError(f"cannot write to artifact store {str(self.root)!r}: {e}") from None
        return tmpdir / f"{os.getpid()}-{uuid.uuid4().hex}"

    def put(self, chunks: Sequence[Any]) -> tuple[str, int]:
        """Store the concatenation of ``chunks``; returns its digest (``self.algorithm``) and size."""
        tmp = self._tmp()
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, FILE_MODE)
        except OSError as e:
            raise ArtifactError(f"cannot write to artifact store {str(self.root)!r}: {e}") from None
        try:
            try:
                digest, size = write_hashing(fd, chunks, self.algorithm)
            finally:
                os.close(fd)
            final = self._path(digest)
            private_dir(final.parent)
            os.replace(tmp, final)  # an existing object has the same bytes: replacing it is harmless
        except OSError as e:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise ArtifactError(f"cannot write artifact to {str(self.root)!r}: {e}") from None
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        return digest, size

    def get(
        self, digest: str, size: int, head: Callable[[bytes], int], algorithm: str = "sha256"
    ) -> tuple[bytes, memoryview]:
        """The object's first ``head(first bytes)`` bytes as a private copy and the whole object
        as a copy-on-write map, once its size and digest (by ``algorithm``) check."""
        h = hasher(algorithm, threads=True)
        path = self._path(digest)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            raise ArtifactError(f"artifact {digest[:12]} is missing from {str(self.root)!r}") from None
        except OSError as e:
            raise ArtifactError(f"cannot read artifact {digest[:12]}: {e}") from None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or st.st_size != size:
                raise ArtifactError(f"artifact {digest[:12]} has {st.st_size} bytes, its reference {size}")
            whole = memoryview(mmap.mmap(fd, size, access=mmap.ACCESS_COPY)) if size else memoryview(b"")
        finally:
            os.close(fd)
        n = head(bytes(whole[:_HEAD]))
        if not 0 <= n <= size:
            raise ArtifactError(f"artifact {digest[:12]} has a damaged header")
        private = bytes(whole[:n])  # copied before hashing: what is checked is what is unpickled
        h.update(private)
        for s in slices([whole[n:]], 1 << 30):
            h.update(s)
        if h.hexdigest() != digest:
            raise ArtifactError(f"artifact {digest[:12]} does not match its {algorithm} (changed on disk)")
        return private, whole

    def put_tree(self, source: str | os.PathLike[str]) -> tuple[str, int]:
        """Store the file or folder ``source`` (checked by ``trees.check_source``) as a tree:
        moved in if it is on this filesystem under the temporary directory, else copied.
        Returns the tree's digest and its files' total size."""
        src = trees.check_source(source, self.root)
        return trees.put(self.root, self._tmp(), src, self.algorithm)

    def tree(self, digest: str, name: str, algorithm: str, verify: bool = True) -> Path:
        """The read-only path of a tree's top entry ``name``, checked against its digest first."""
        return trees.open_tree(self.root, check_digest(digest), name, algorithm, verify)

    def exists(self, digest: str) -> bool:
        return self._path(digest).is_file() or trees.location(self.root, digest).is_dir()

    def delete(self, digest: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path(digest).unlink()
        trees.remove(trees.location(self.root, digest))

    def objects(self) -> Iterator[tuple[str, int, float]]:
        """``(digest, size, modified)`` of every object and tree, and of every temporary as
        ``("tmp/NAME", ...)``."""
        base = self.root / "objects"
        if base.is_dir():
            for p in base.glob("??/*"):
                with contextlib.suppress(FileNotFoundError):
                    st = p.lstat()
                    if stat.S_ISREG(st.st_mode):
                        yield p.name, st.st_size, st.st_mtime
        yield from trees.listing(self.root / "trees", "")
        yield from trees.listing(self.root / "tmp", "tmp/", nested=False)

    def remove(self, name: str) -> None:
        """Delete an object, a tree or a temporary named as ``objects`` names it."""
        if name.startswith("tmp/"):
            leaf = name[4:]
            if "/" in leaf or leaf in ("", ".", ".."):
                raise ArtifactError(f"not an artifact name: {name!r}")
            trees.remove(self.root / "tmp" / leaf)
        else:
            self.delete(name)


def collect(
    artifacts: ArtifactStore,
    referenced: set[str],
    grace: float = GRACE,
    now: float | None = None,
    dry_run: bool = False,
) -> list[tuple[str, int]]:
    """Delete every object not in ``referenced`` and every temporary, if older than ``grace``
    seconds (a live run writes its object before the commit that references it). Returns what
    was (with ``dry_run``: would be) deleted as ``(name, size)``."""
    now = time.time() if now is None else now
    gone = []
    for name, size, modified in list(artifacts.objects()):
        if name in referenced or now - modified < grace:
            continue
        if not dry_run:
            artifacts.remove(name)
        gone.append((name, size))
    return gone
