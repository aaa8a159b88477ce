"""The local artifact store: objects named by their hash (BLAKE3; sha256 still read), private
files, whole or absent, checked before use; names an attacker could plant (paths, URLs) refused;
garbage collection."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from podium.errors import UsageError
from podium.store.artifact_url import open_artifacts
from podium.store.artifacts import ArtifactError, LocalArtifacts, check_digest, collect


def _whole(first: bytes) -> int:
    return 0  # no private head: the whole object is the mapped part


@pytest.mark.parametrize("algorithm", ["blake3", "sha256"])
def test_an_object_is_named_by_its_hash_and_read_back_checked(tmp_path: Path, algorithm: str) -> None:
    import blake3

    store = LocalArtifacts(tmp_path / "a", algorithm=algorithm)
    data = [b"header", memoryview(bytearray(b"x" * 100_000)), b""]
    digest, size = store.put(data)
    raw = b"header" + b"x" * 100_000
    expected = blake3.blake3(raw) if algorithm == "blake3" else hashlib.sha256(raw)
    assert (digest, size) == (expected.hexdigest(), len(raw))
    assert Path(store.where(digest)).read_bytes() == raw
    head, whole = store.get(digest, size, lambda first: 6, algorithm)
    assert head == b"header" and bytes(whole) == raw
    assert store.exists(digest) and [o[:2] for o in store.objects()] == [(digest, size)]


def test_files_are_private_under_a_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        store = LocalArtifacts(tmp_path / "a")
        digest, _ = store.put([b"v" * 10])
    finally:
        os.umask(old)
    obj = Path(store.where(digest))
    assert obj.stat().st_mode & 0o777 == 0o600
    for d in (obj.parent, obj.parent.parent, tmp_path / "a" / "tmp"):
        assert d.stat().st_mode & 0o777 == 0o700, d


@pytest.mark.parametrize("change", ["bytes", "size", "missing"])
def test_a_changed_or_missing_object_is_refused_never_read(tmp_path: Path, change: str) -> None:
    store = LocalArtifacts(tmp_path / "a")
    digest, size = store.put([b"model weights " * 1000])
    obj = Path(store.where(digest))
    if change == "bytes":
        obj.write_bytes(b"MODEL WEIGHTS " + obj.read_bytes()[14:])
        match = "does not match its blake3"
    elif change == "size":
        obj.write_bytes(obj.read_bytes() + b"!")
        match = "bytes, its reference"
    else:
        obj.unlink()
        match = "is missing"
    with pytest.raises(ArtifactError, match=match):
        store.get(digest, size, _whole, "blake3")


@pytest.mark.parametrize(
    "name",
    [
        "../../../../etc/passwd",
        "/etc/passwd",
        "s3://other-bucket/key",
        "file:///etc/shadow",
        "A" * 64,  # not lowercase
        "a" * 63,
        "a" * 64 + "/../x",
        "",
        None,
    ],
)
def test_only_a_sha256_names_an_object(tmp_path: Path, name: object) -> None:
    store = LocalArtifacts(tmp_path / "a")
    with pytest.raises(ArtifactError, match="not an artifact name"):
        check_digest(name)
    with pytest.raises(ArtifactError, match="not an artifact name"):
        store.get(name, 10, _whole)  # type: ignore[arg-type]
    with pytest.raises(ArtifactError, match="not an artifact name"):
        store.remove(str(name))
    for evil in ("tmp/../../x", "tmp/", "tmp/.."):
        with pytest.raises(ArtifactError, match="not an artifact name"):
            store.remove(evil)


def test_a_symlink_planted_under_an_objects_name_is_not_followed(tmp_path: Path) -> None:
    store = LocalArtifacts(tmp_path / "a")
    secret = tmp_path / "secret"
    secret.write_bytes(b"private key")
    digest = hashlib.sha256(b"private key").hexdigest()
    obj = Path(store.where(digest))
    obj.parent.mkdir(parents=True)
    obj.symlink_to(secret)
    with pytest.raises(ArtifactError):
        store.get(digest, len(b"private key"), _whole)


def test_a_writer_killed_mid_write_leaves_no_object_and_gc_removes_its_temporary(tmp_path: Path) -> None:
    root = tmp_path / "a"
    code = textwrap.dedent(
        """
        import sys, time
        from podium.store.artifacts import LocalArtifacts

        class Slow(list):  # a sequence whose second chunk takes forever
            def __iter__(self):
                yield b"start" * 1000
                print("writing", flush=True)
                time.sleep(60)
                yield b"end"

        LocalArtifacts(sys.argv[1]).put(Slow())
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(root)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "writing"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stdout.close()
    store = LocalArtifacts(root)
    left = list(store.objects())
    assert [n for n, _, _ in left if not n.startswith("tmp/")] == []  # no object under any name
    assert len(left) == 1 and left[0][1] == 5000  # only the temporary, with what was written
    assert collect(store, set(), grace=3600) == []  # young: maybe a live writer's
    assert collect(store, set(), grace=3600, now=time.time() + 7200) == [(left[0][0], 5000)]
    assert list(store.objects()) == []


def test_collect_keeps_referenced_and_young_objects(tmp_path: Path) -> None:
    store = LocalArtifacts(tmp_path / "a")
    kept, _ = store.put([b"kept"])
    young, _ = store.put([b"young"])
    old, _ = store.put([b"old"])
    past = time.time() - 7200
    for d in (kept, old):
        os.utime(store.where(d), (past, past))
    assert collect(store, {kept}, grace=3600, dry_run=True) == [(old, 3)]
    assert store.exists(old)
    assert collect(store, {kept}, grace=3600) == [(old, 3)]
    assert store.exists(kept) and store.exists(young) and not store.exists(old)


def test_artifact_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PODIUM_ARTIFACTS", raising=False)
    db = tmp_path / "p.db"
    beside = open_artifacts(None, str(db))
    assert isinstance(beside, LocalArtifacts) and beside.root == Path(f"{db}.podium-artifacts")
    assert open_artifacts(None, f"sqlite:///{db}?journal=off").root == Path(f"{db}.podium-artifacts")  # type: ignore[union-attr]
    assert open_artifacts(None, "memory:") is None
    assert open_artifacts(None, "postgresql://u@h/db") is None  # results stay inline unless asked
    folder = open_artifacts(f"file://{tmp_path}/x?threshold=10", str(db))
    assert isinstance(folder, LocalArtifacts) and folder.root == tmp_path / "x" and folder.threshold == 10
    monkeypatch.setenv("PODIUM_ARTIFACTS", str(tmp_path / "env"))
    assert open_artifacts(None, "memory:").root == tmp_path / "env"  # type: ignore[union-attr]
    for bad, match in [
        ("ftp://h/x", "unsupported artifact store URL"),
        ("file://evil.example/x", "names no host"),
        (f"{tmp_path}/x?threshold=-1", "whole number"),
        (f"file://{tmp_path}/x?colour=red", "unknown option"),
        ("s3://user:secret@bucket/p", "no credentials"),
        ("s3://bucket/p?endpoint=file:///etc/passwd", "endpoint must be an http"),
        ("s3://bucket/p?endpoint=http://u:p@127.0.0.1:9/", "endpoint must be an http"),
    ]:
        with pytest.raises(UsageError, match=match) as info:
            open_artifacts(bad, str(db))
        assert "secret" not in str(info.value)
