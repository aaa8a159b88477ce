"""The per-store secret and the tags that authenticate stored results.

A result is a user value pickled by the runtime, and unpickling runs code; so the store hands a
result back only if its tag checks: a keyed BLAKE2b MAC (a message authentication code like HMAC;
Python's ``hashlib`` documents keyed BLAKE2 as a faster replacement for HMAC, here about 5x) over
the result's encoding and the sha256 of its bytes. The runtime checks that sha256 against the
bytes before unpickling, so together the bytes are authenticated, at a cost independent of their
size. The tag does not bind a result to its run or task: moving a genuine result elsewhere in
the database is no worse than the rest of what a writer of the database can do to a run's
history (events are data, not code), and it can never make Podium load bytes it did not write.

Invariants:
- The key is 32 random bytes in a file of its own: created on first use with mode 0600, refused
  if it is a symlink, not a regular file, owned by another user or open to other users. It is
  never written to the database, so someone who can write the database but not read the key
  cannot make a result the store will hand out.
- A stored result whose tag is missing or wrong comes back with its checksum replaced by
  ``UNAUTHENTICATED``: it fails ``ResultRecord.verify()``, so the runtime treats it as corrupt
  (the task runs again; a cache entry is a miss) and never unpickles it.
- ``ResultSigner.id`` names the key without revealing it (a tag of a constant); the database
  records it so a store opened with the wrong key says so instead of rerunning everything.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Sequence
from hmac import compare_digest
from pathlib import Path
from typing import Any

from podium.errors import StoreError
from podium.model.events import ResultRecord
from podium.store.files import create_private, private_dir

KEY_BYTES = 32
#: The checksum of a stored result whose tag failed: never a sha256, so ``verify()`` fails.
UNAUTHENTICATED = "unauthenticated"


class ResultSigner:
    """Tags results (and cache entries) with one store's key, and checks them when read back."""

    __slots__ = ("_base", "_memo", "id")

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ValueError(f"a store key has {KEY_BYTES} bytes, not {len(key)}")
        self._base = hashlib.blake2b(key=key, digest_size=32)  # copied per tag: no key setup per call
        self._memo: dict[object, bytes] = {}
        h = self._base.copy()
        h.update(b"podium store key id")
        self.id = h.hexdigest()[:16]

    @classmethod
    def ephemeral(cls) -> ResultSigner:
        """A signer with a fresh random key, for a store that lives only in this process."""
        return cls(os.urandom(KEY_BYTES))

    def tag(self, encoding: str, checksum: str) -> bytes:
        """The tag of stored bytes whose sha256 is ``checksum`` (the encoding is length-prefixed,
        so no two pairs share a message). Remembered for the last ``_MEMO`` values: tasks often
        return the same few values (None, True, small numbers), like the runtime's checksums."""
        key: object = checksum if encoding == "pickle" else (encoding, checksum)
        mac = self._memo.get(key)
        if mac is None:
            h = self._base.copy()
            h.update(f"{len(encoding)}:{encoding}{checksum}".encode("utf-8", "surrogatepass"))
            mac = h.digest()
            if len(self._memo) >= _MEMO:
                self._memo.clear()
            self._memo[key] = mac
        return mac

    def record(self, row: Sequence[Any]) -> ResultRecord:
        """A ``ResultRecord`` from ``(task_id, attempt, data, checksum, encoding, tag)``, its
        checksum ``UNAUTHENTICATED`` unless the tag checks."""
        task_id, attempt, data, checksum, encoding, mac = row
        good = mac is not None and compare_digest(bytes(mac), self.tag(encoding, checksum))
        return ResultRecord(task_id, attempt, bytes(data), checksum if good else UNAUTHENTICATED, encoding)


#: Tags remembered per signer.
_MEMO = 4096


def _new_key(path: Path) -> None:
    path.write_bytes(os.urandom(KEY_BYTES))


def load_key(path: Path, create: bool = True) -> tuple[bytes, bool]:
    """The key in ``path`` and whether this call created it. ``StoreError`` with one line saying
    what is wrong if the file is unsafe or not a key (or missing, unless ``create``)."""
    created = False
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        if not create:
            raise StoreError(f"store key {path} does not exist") from None
        try:
            private_dir(path.parent)
            created = create_private(path, _new_key)
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError as e:
            raise StoreError(f"cannot create store key {path}: {e.strerror}") from None
    except OSError as e:  # ELOOP: a symlink; EACCES: not ours to read
        raise StoreError(f"cannot read store key {path}: {e.strerror} (a key must be a plain file)") from None
    try:
        st = os.fstat(fd)
        data = os.read(fd, KEY_BYTES + 1) if stat.S_ISREG(st.st_mode) else b""
    finally:
        os.close(fd)
    if not stat.S_ISREG(st.st_mode):
        raise StoreError(f"store key {path} is not a regular file")
    if st.st_uid != os.geteuid():
        raise StoreError(f"store key {path} belongs to another user (uid {st.st_uid}); refusing to trust it")
    if st.st_mode & 0o077:
        raise StoreError(
            f"store key {path} is open to other users (mode {stat.S_IMODE(st.st_mode):o}): anyone who "
            f"read it can forge results; if you are sure nobody did, run: chmod 600 {path}"
        )
    if len(data) != KEY_BYTES:
        raise StoreError(f"store key {path} is not a Podium key ({len(data)} bytes, expected {KEY_BYTES})")
    return data, created
