"""Private files: how the store creates and keeps its directories (0700) and files (0600).

Invariants:
- Everything the store creates is created with its final mode in the ``open`` / ``mkdir`` call
  (a umask only removes bits, so a permissive umask cannot widen it), never chmod-ed afterwards.
- Files and directories the store finds with wider modes (made by older versions) are narrowed
  if this user owns them; someone else's are left alone (a shared store is the owner's choice).
- A file that must appear whole (a new key, a new database) is written under a temporary name
  in the same directory and hard-linked into place, so a reader never sees it half-written and
  of two processes creating it at once exactly one wins.
"""

from __future__ import annotations

import contextlib
import os
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

FILE_MODE = 0o600
DIR_MODE = 0o700
#: The name of the default store directory: the store narrows it even if it existed before.
STORE_DIR_NAME = ".podium"


def private_dir(path: Path, own: bool = False) -> None:
    """Create ``path`` and its missing parents as 0700 directories. An existing ``.podium``
    directory among them is narrowed to 0700, and so is ``path`` itself if ``own`` (a directory
    only the store uses, such as the journal's)."""
    missing = []
    p = path
    while not p.exists():
        missing.append(p)
        if p.parent == p:
            break
        p = p.parent
    for d in reversed(missing):
        with contextlib.suppress(FileExistsError):
            os.mkdir(d, DIR_MODE)
    if own:
        narrow(path, DIR_MODE)
    for d in (path, *path.parents):
        if d.name == STORE_DIR_NAME:
            narrow(d, DIR_MODE)
            break


def narrow(path: Path, mode: int = FILE_MODE) -> None:
    """Take away group and other permissions from ``path`` if this user owns it."""
    try:
        st = os.stat(path, follow_symlinks=False)
        if st.st_uid == os.geteuid() and st.st_mode & 0o077:
            os.chmod(path, st.st_mode & mode & 0o7777)
    except OSError:
        pass  # gone meanwhile, or not ours to change


def create_private(path: Path, fill: Callable[[Path], None]) -> bool:
    """Create ``path`` whole: ``fill`` writes a fresh 0600 temporary file beside it, which is then
    linked into place. Returns False (and discards ours) if another process created it first."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.new")
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, FILE_MODE))
    try:
        fill(tmp)
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        return True
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to a new 0600 file ``path`` (an existing file is replaced)."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, FILE_MODE)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def warn(message: str) -> None:
    """A warning a person must see (the store has no other channel to the terminal)."""
    sys.stderr.write(f"podium: warning: {message}\n")
    sys.stderr.flush()
