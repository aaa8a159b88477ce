"""Trees: a file or folder a task wrote and returned as ``podium.Artifact``, kept read-only.

A tree is stored as ``trees/ab/<digest>/<name>`` under a local artifact store, where ``name``
is the returned path's last component and ``digest`` the hash of its manifest: one line per
folder (``d <path>``) and per file (``f <x or -> <size> <file digest> <path>``), sorted, paths
relative to the tree's folder (JSON-quoted). Files are 0400 (0500 if their owner could run
them), folders 0500 once filled: downstream tasks receive the path and read it in place.

Invariants (what a spec or a task can make Podium read):
- ``check_source`` accepts only a path with no ``..`` component, to an existing file or folder
  (not a symlink) of this user whose real path (its folders' symlinks resolved) is strictly
  inside the real working directory or temporary directory, and not inside the store's own
  folders (``.podium``, the artifact store) nor containing them. Anything else is a one-line
  ``ArtifactError`` naming the path.
- Walking a tree never follows a symlink: every entry is opened relative to its folder's file
  descriptor with ``O_NOFOLLOW``, checked by ``fstat`` to be a regular file or folder owned by
  this user; a symlink, device, pipe or socket anywhere in it refuses the whole artifact.
- A tree appears whole: it is filled under ``tmp/`` and renamed into place once its digest is
  known. A folder under the temporary directory on the store's filesystem is moved in (no copy;
  on a refusal it is moved back); anything else is copied, hashed as it is written.
- Reading (``open_tree``) hashes the tree again against its digest before the path is handed
  on, unless the caller has just written it.
"""

from __future__ import annotations

import contextlib
import errno
import json
import mmap
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

from podium.store.files import private_dir
from podium.store.hashing import ArtifactError, check_digest, digest_of, hasher, write_hashing

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
_RESERVED = (".podium",)


def location(root: Path, digest: str) -> Path:
    digest = check_digest(digest)
    return root / "trees" / digest[:2] / digest


def check_name(name: object) -> str:
    """A tree's top name: one path component, never ``.``, ``..`` or empty."""
    if not isinstance(name, str) or name in ("", ".", "..") or "/" in name or "\0" in name:
        raise ArtifactError(f"not an artifact file name: {str(name)[:80]!r}")
    return name


def check_source(source: object, store_root: Path) -> Path:
    """The real path of what a task returned as ``podium.Artifact(source)`` (module docstring)."""
    try:
        raw = os.fspath(source)  # type: ignore[call-overload]
    except TypeError:
        raise ArtifactError(f"podium.Artifact needs a path, got {type(source).__name__}") from None
    if not isinstance(raw, str) or not raw or "\0" in raw:
        raise ArtifactError(f"podium.Artifact needs a path, got {str(raw)[:80]!r}")
    if ".." in Path(raw).parts:
        raise ArtifactError(f"artifact path {raw!r}: '..' is not allowed")
    where = Path(os.path.abspath(raw))
    if where.name in ("", "."):
        raise ArtifactError(f"artifact path {raw!r}: name a file or folder inside the working directory")
    real = Path(os.path.realpath(where.parent)) / where.name  # checked below, not ``where``
    try:
        st = os.lstat(real)
    except OSError as e:
        raise ArtifactError(f"artifact path {raw!r}: {e.strerror or e}") from None
    if stat.S_ISLNK(st.st_mode):
        raise ArtifactError(f"artifact path {raw!r} is a symlink")
    if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)) or st.st_uid != os.geteuid():
        raise ArtifactError(f"artifact path {raw!r} is not a file or folder of this user")
    roots = {Path(os.path.realpath(os.getcwd())), Path(os.path.realpath(tempfile.gettempdir()))}
    if not any(real != r and real.is_relative_to(r) for r in roots):
        raise ArtifactError(
            f"artifact path {raw!r} is outside the working directory and the temporary directory"
        )
    store = Path(os.path.realpath(store_root))
    if any(p in _RESERVED for p in real.parts) or real.is_relative_to(store) or store.is_relative_to(real):
        raise ArtifactError(f"artifact path {raw!r} is or holds Podium's own store")
    return real


def put(root: Path, staging: Path, src: Path, algorithm: str) -> tuple[str, int]:
    """Store ``src`` (checked) as a tree; returns its digest and its files' total size."""
    os.mkdir(staging, 0o700)
    moved = False
    try:
        if src.is_relative_to(os.path.realpath(tempfile.gettempdir())):
            try:
                os.rename(src, staging / src.name)
                moved = True
            except OSError as e:
                if e.errno not in (errno.EXDEV, errno.EACCES, errno.EPERM, errno.EBUSY):
                    raise
        lines: list[str] = []
        dst = os.open(staging, _DIR)
        try:
            if moved:
                size = _visit(dst, src.name, src.name, None, algorithm, lines, seal=True)
            else:
                parent = os.open(src.parent, _DIR)
                try:
                    size = _visit(parent, src.name, src.name, dst, algorithm, lines, seal=True)
                finally:
                    os.close(parent)
        finally:
            os.close(dst)
        digest = _manifest_digest(lines, algorithm)
        final = location(root, digest)
        private_dir(final.parent)
        if final.exists() and not _intact(root, digest, src.name, algorithm):
            remove(final)  # damaged on disk: replaced by the tree just written
        try:
            os.rename(staging, final)
        except OSError as e:
            if e.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
            remove(staging)  # the same tree is there already
        else:
            os.chmod(final, 0o500)
        return digest, size
    except BaseException as e:
        if moved:
            with contextlib.suppress(OSError):
                _unseal(staging / src.name)
                os.rename(staging / src.name, src)  # a refused folder goes back where it was
        remove(staging)
        if isinstance(e, OSError):
            raise ArtifactError(f"cannot store artifact {str(src)!r}: {e}") from None
        raise


def open_tree(root: Path, digest: str, name: str, algorithm: str, verify: bool = True) -> Path:
    """The path of tree ``digest``'s top entry, after hashing the tree against its digest."""
    base = location(root, digest)
    top = base / check_name(name)
    if not verify:
        return top
    try:
        fd = os.open(base, _DIR)
    except FileNotFoundError:
        raise ArtifactError(f"artifact {digest[:12]} is missing from {str(root)!r}") from None
    except OSError as e:
        raise ArtifactError(f"cannot read artifact {digest[:12]}: {e}") from None
    lines: list[str] = []
    try:
        if os.listdir(fd) != [name]:
            raise ArtifactError(f"artifact {digest[:12]} holds other entries than {name!r}")
        _visit(fd, name, name, None, algorithm, lines, seal=False)
    except OSError as e:
        raise ArtifactError(f"cannot read artifact {digest[:12]}: {e}") from None
    finally:
        os.close(fd)
    if _manifest_digest(lines, algorithm) != digest:
        raise ArtifactError(f"artifact {digest[:12]} does not match its {algorithm} (changed on disk)")
    return top


def _intact(root: Path, digest: str, name: str, algorithm: str) -> bool:
    try:
        open_tree(root, digest, name, algorithm)
    except ArtifactError:
        return False
    return True


def _manifest_digest(lines: list[str], algorithm: str) -> str:
    h = hasher(algorithm)
    h.update(("podium-tree 1\n" + "".join(sorted(lines))).encode())
    return h.hexdigest()


def _visit(
    dirfd: int, name: str, rel: str, dst: int | None, algorithm: str, lines: list[str], seal: bool
) -> int:
    """Hash entry ``name`` of folder ``dirfd`` (and copy it into folder ``dst``), appending its
    manifest lines; ``seal``: make what is stored read-only. Returns its files' total size."""
    if name in _RESERVED:
        raise ArtifactError(f"artifact entry {rel!r} is Podium's own store")
    st = os.stat(name, dir_fd=dirfd, follow_symlinks=False)
    quoted = json.dumps(rel)
    if stat.S_ISDIR(st.st_mode):
        fd = os.open(name, _DIR, dir_fd=dirfd)
        out = None
        try:
            _own(os.fstat(fd), rel, stat.S_ISDIR)
            if dst is not None:
                os.mkdir(name, 0o700, dir_fd=dst)
                out = os.open(name, _DIR, dir_fd=dst)
            lines.append(f"d {quoted}\n")
            size = sum(
                _visit(fd, child, f"{rel}/{child}", out, algorithm, lines, seal)
                for child in sorted(os.listdir(fd))
            )
            if seal:
                os.fchmod(out if out is not None else fd, 0o500)
            return size
        finally:
            os.close(fd)
            if out is not None:
                os.close(out)
    if not stat.S_ISREG(st.st_mode):
        kind = "a symlink" if stat.S_ISLNK(st.st_mode) else "not a regular file or folder"
        raise ArtifactError(
            f"artifact entry {rel!r} is {kind}: a folder artifact holds files and folders only"
        )
    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=dirfd)
    try:
        fst = _own(os.fstat(fd), rel, stat.S_ISREG)
        mode = 0o500 if fst.st_mode & stat.S_IXUSR else 0o400
        with contextlib.ExitStack() as stack:
            data = (
                stack.enter_context(mmap.mmap(fd, fst.st_size, access=mmap.ACCESS_READ))
                if fst.st_size
                else b""
            )
            if dst is None:
                digest = digest_of(data, algorithm)
                if seal:
                    os.fchmod(fd, mode)
            else:
                out = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode, dir_fd=dst)
                try:
                    digest, _ = write_hashing(out, [data], algorithm)
                finally:
                    os.close(out)
        lines.append(f"f {'x' if mode & stat.S_IXUSR else '-'} {fst.st_size} {digest} {quoted}\n")
        return fst.st_size
    finally:
        os.close(fd)


def _own(st: os.stat_result, rel: str, kind: object) -> os.stat_result:
    if not kind(st.st_mode) or st.st_uid != os.geteuid():  # type: ignore[operator]
        raise ArtifactError(f"artifact entry {rel!r} changed while read, or is not this user's")
    return st


def listing(base: Path, prefix: str, nested: bool = True) -> Iterator[tuple[str, int, float]]:
    """``(prefix + name, size, modified)`` of the trees (``nested``: ``base/ab/<digest>``) or the
    entries directly in ``base``."""
    if not base.is_dir():
        return
    for p in base.glob("??/*") if nested else base.iterdir():
        with contextlib.suppress(FileNotFoundError):
            st = p.lstat()
            size = st.st_size
            if stat.S_ISDIR(st.st_mode):
                size = sum(f.lstat().st_size for f in p.rglob("*") if f.is_file() and not f.is_symlink())
            yield prefix + p.name, size, st.st_mtime


def _unseal(path: Path) -> None:
    """Make ``path`` (a folder this store sealed) writable again, without following symlinks."""
    if path.is_symlink() or not path.is_dir():
        return
    os.chmod(path, 0o700)
    for top, dirs, _files in os.walk(path):
        for d in dirs:
            p = os.path.join(top, d)
            if not os.path.islink(p):
                os.chmod(p, 0o700)


def remove(path: Path) -> None:
    """Delete a file, or a folder and everything in it (sealed folders are unsealed first)."""
    try:
        st = path.lstat()
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(st.st_mode):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        return
    _unseal(path)
    shutil.rmtree(path, ignore_errors=True)
