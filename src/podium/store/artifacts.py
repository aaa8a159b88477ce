"""Artifacts: large results kept as content-addressed objects outside the run store.

The run store keeps a reference to each large result (its sha256 and size, in the result's row,
authenticated like every result); the bytes live in an artifact store: a local folder (the
default, ``<database>.podium-artifacts`` beside a SQLite store) or an S3-compatible bucket
(``s3artifacts``). ``artifact_url.open_artifacts`` picks one from a URL.

Invariants:
- An object's only name is the sha256 of its bytes (64 lowercase hex digits, checked before
  any use); a reference holds no path or URL, so nothing read from the database can point the
  store at another file, bucket or host.
- An object appears whole: it is written under a temporary name, its sha256 computed while
  writing, then renamed into place. A process killed mid-write leaves only a temporary file,
  never a partial object under a name (``collect`` removes temporaries and unreferenced objects
  older than a grace period, so a live run's object written just before its commit is kept).
- ``get`` hands back bytes only after their size and sha256 check; the first ``head`` bytes (a
  result's pickle, which can run code) are a private copy read once and hashed, the rest (raw
  buffers such as array data, which never run code) a copy-on-write memory map. A missing or
  changed object raises ``ArtifactError``; the runtime treats it as a corrupt result and runs
  the task again.
- The folder is 0700 and every file 0600 (``store.files``). Writes are not fsynced: like the
  SQLite store's default, an object survives a killed process but maybe not a power loss, and
  an object lost that way is found missing and its task runs again.
"""

from __future__ import annotations

import contextlib
import hashlib
import mmap
import os
import re
import stat
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from podium.errors import StoreError
from podium.store.files import FILE_MODE, private_dir

if TYPE_CHECKING:
    from podium.types import ArtifactStore

#: Results whose encoding is larger than this go to the artifact store (1 MiB).
DEFAULT_THRESHOLD = 1 << 20
#: Unreferenced objects and temporaries younger than this are kept by ``collect`` (seconds).
GRACE = 3600.0
_DIGEST = re.compile(r"[0-9a-f]{64}")
_SLICE = 8 << 20  # hash and copy in slices that stay in the CPU's caches


class ArtifactError(StoreError):
    """An artifact is missing, changed or cannot be read or written."""


def check_digest(digest: object) -> str:
    """``digest`` if it is 64 lowercase hex digits, else ``ArtifactError`` (never a path)."""
    if not isinstance(digest, str) or not _DIGEST.fullmatch(digest):
        raise ArtifactError(f"not an artifact name: {str(digest)[:80]!r}")
    return digest


def slices(chunks: Iterable[Any]) -> Iterator[memoryview]:
    """Every chunk as flat byte views of at most ``_SLICE`` bytes."""
    for c in chunks:
        mv = memoryview(c).cast("B") if not isinstance(c, memoryview) or c.format != "B" else c
        for i in range(0, mv.nbytes, _SLICE):
            yield mv[i : i + _SLICE]


def hash_chunks(chunks: Sequence[Any]) -> tuple[str, int]:
    """sha256 and total size of ``chunks`` (hashlib releases the GIL on large slices)."""
    h, size = hashlib.sha256(), 0
    for s in slices(chunks):
        h.update(s)
        size += s.nbytes
    return h.hexdigest(), size


class LocalArtifacts:
    """Content-addressed objects in a private folder: ``objects/ab/abcd...`` and ``tmp/``."""

    def __init__(self, root: str | os.PathLike[str], threshold: int = DEFAULT_THRESHOLD) -> None:
        self.root = Path(root).absolute()
        self.threshold = threshold
        self.url = self.root.as_uri()

    def __repr__(self) -> str:
        return f"LocalArtifacts({str(self.root)!r})"

    def _path(self, digest: str) -> Path:
        digest = check_digest(digest)
        return self.root / "objects" / digest[:2] / digest

    def where(self, digest: str) -> str:
        return str(self._path(digest))

    def put(self, chunks: Sequence[Any]) -> tuple[str, int]:
        """Store the concatenation of ``chunks``; returns its sha256 and size."""
        tmpdir = self.root / "tmp"
        try:
            private_dir(tmpdir, own=True)
            tmp = tmpdir / f"{os.getpid()}-{uuid.uuid4().hex}"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, FILE_MODE)
        except OSError as e:
            raise ArtifactError(f"cannot write to artifact store {str(self.root)!r}: {e}") from None
        try:
            h, size = hashlib.sha256(), 0
            try:
                for s in slices(chunks):
                    h.update(s)
                    size += s.nbytes
                    while s.nbytes:  # a write to a regular file may be short (a full disk)
                        s = s[os.write(fd, s) :]
            finally:
                os.close(fd)
            digest = h.hexdigest()
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

    def get(self, digest: str, size: int, head: Callable[[bytes], int]) -> tuple[bytes, memoryview]:
        """The object's first ``head(first bytes)`` bytes as a private copy and the whole object
        as a read-only-to-others view, once its size and sha256 check."""
        path = self._path(digest)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            raise ArtifactError(f"artifact {digest[:12]} is missing from {str(self.root)!r}") from None
        except OSError as e:
            raise ArtifactError(f"cannot read artifact {digest[:12]}: {e}") from None
        with contextlib.closing(_Fd(fd)):
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or st.st_size != size:
                raise ArtifactError(f"artifact {digest[:12]} has {st.st_size} bytes, its reference {size}")
            with open(fd, "rb", buffering=0, closefd=False) as f:
                first = f.read(min(size, 64 << 10))
                n = head(first)
                if not 0 <= n <= size:
                    raise ArtifactError(f"artifact {digest[:12]} has a damaged header")
                private = first[:n] if n <= len(first) else first + _read_exact(f, n - len(first))
                h = hashlib.sha256(private)
                f.seek(n)
                buf = bytearray(_SLICE)
                view = memoryview(buf)
                while True:
                    got = f.readinto(buf)
                    if not got:
                        break
                    h.update(view[:got])
            if h.hexdigest() != digest:
                raise ArtifactError(f"artifact {digest[:12]} does not match its sha256 (changed on disk)")
            if size == 0:
                return private, memoryview(b"")
            mapped = mmap.mmap(fd, size, access=mmap.ACCESS_COPY)
        return private, memoryview(mapped)

    def exists(self, digest: str) -> bool:
        return self._path(digest).is_file()

    def delete(self, digest: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path(digest).unlink()

    def objects(self) -> Iterator[tuple[str, int, float]]:
        """``(sha256, size, modified)`` of every object, and of every temporary as ``("tmp/NAME", ...)``."""
        for sub in ("objects", "tmp"):
            base = self.root / sub
            if not base.is_dir():
                continue
            for p in base.rglob("*"):
                with contextlib.suppress(FileNotFoundError):
                    st = p.lstat()
                    if stat.S_ISREG(st.st_mode):
                        name = p.name if sub == "objects" else f"tmp/{p.name}"
                        yield name, st.st_size, st.st_mtime

    def remove(self, name: str) -> None:
        """Delete an object or a temporary named as ``objects`` names it."""
        if name.startswith("tmp/"):
            leaf = name[4:]
            if "/" in leaf or leaf in ("", ".", ".."):
                raise ArtifactError(f"not an artifact name: {name!r}")
            with contextlib.suppress(FileNotFoundError):
                (self.root / "tmp" / leaf).unlink()
        else:
            self.delete(name)


class _Fd:
    def __init__(self, fd: int) -> None:
        self.fd = fd

    def close(self) -> None:
        os.close(self.fd)


def _read_exact(f: Any, n: int) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise ArtifactError("artifact ends early")
    return bytes(data)


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
