"""Large results through the result codec: what goes to an artifact, what stays inline, zero-copy
reads, and references or objects an attacker altered are never loaded. NumPy is imported inside
the tests, not at collection: the suite's process stays small (process workers inherit its peak
memory)."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
from pathlib import Path
from typing import Any

import pytest

from podium.model.events import ResultRecord
from podium.runtime import artifact_format
from podium.runtime.codec import ARTIFACT, CorruptResult, decode, encode, reference
from podium.store.artifacts import LocalArtifacts


@pytest.fixture
def np() -> Any:
    import numpy

    return numpy


@pytest.fixture
def store(tmp_path: Path) -> LocalArtifacts:
    return LocalArtifacts(tmp_path / "artifacts", threshold=64 << 10)


def test_a_large_array_goes_to_an_artifact_and_comes_back_on_mapped_pages(
    np: Any, store: LocalArtifacts
) -> None:
    arr = np.arange(1 << 20, dtype=np.float64).reshape(1024, 1024)
    rec = encode("t", 1, {"weights": arr, "name": "m"}, store)
    assert rec.encoding == ARTIFACT and len(rec.data) < 200 and rec.verify()
    ref = reference(rec)
    assert ref is not None and ref.algorithm == "blake3" and ref.tree is None
    assert ref.size > arr.nbytes and Path(store.where(ref.digest)).stat().st_size == ref.size
    out = decode(rec, store)
    assert out["name"] == "m" and np.array_equal(out["weights"], arr)
    w = out["weights"]
    assert not w.flags.owndata and w.ctypes.data % 64 == 0  # a view of the mapping, aligned
    w[0, 0] = -1.0  # copy-on-write: the stored object does not change
    assert decode(rec, store)["weights"][0, 0] == 0.0


def test_a_reference_written_with_sha256_before_blake3_is_still_read_and_checked(
    np: Any, tmp_path: Path
) -> None:
    old = LocalArtifacts(tmp_path / "artifacts", threshold=64 << 10, algorithm="sha256")
    arr = np.arange(1 << 16, dtype=np.float64)
    rec = encode("t", 1, arr, old)
    digest = json.loads(rec.data)["sha256"]
    assert json.loads(rec.data) == {"sha256": digest, "size": reference(rec).size}  # type: ignore[union-attr]
    new = LocalArtifacts(tmp_path / "artifacts", threshold=64 << 10)  # names new objects by BLAKE3
    assert new.algorithm == "blake3" and np.array_equal(decode(rec, new), arr)
    path = Path(new.where(digest))
    path.write_bytes(path.read_bytes()[:-1] + b"!")
    with pytest.raises(CorruptResult, match="does not match its sha256"):
        decode(rec, new)


def test_large_bytes_are_stored_as_themselves(store: LocalArtifacts) -> None:
    blob = os.urandom(300 << 10)
    rec = encode("t", 1, blob, store)
    assert rec.encoding == ARTIFACT
    size = reference(rec).size  # type: ignore[union-attr]
    assert size < len(blob) + 256  # a small header and the bytes, no pickle framing
    assert decode(rec, store) == blob


@pytest.mark.parametrize(
    "value", [42, "short", {"a": [1, 2, 3]}, "zeros(10)", bytearray(100), b"x" * 1000], ids=repr
)
def test_small_results_stay_inline_and_equal_a_store_without_artifacts(
    np: Any, store: LocalArtifacts, value: object
) -> None:
    value = np.zeros(10) if value == "zeros(10)" else value
    rec = encode("t", 1, value, store)
    plain = encode("t", 1, value)
    assert rec == plain and rec.encoding == "pickle"
    assert list(store.objects()) == []
    out = decode(rec, store)
    assert np.array_equal(out, value) if isinstance(value, np.ndarray) else out == value


def test_without_an_artifact_store_a_large_result_stays_inline(np: Any, store: LocalArtifacts) -> None:
    rec = encode("t", 1, np.ones(1 << 17))
    assert rec.encoding == "pickle" and len(rec.data) > 1 << 20


def _signed_ref(ref: object) -> ResultRecord:
    """A reference as the store would hand it back if its tag checked (the worst case: the
    attacker also got a row past authentication)."""
    return ResultRecord.of("t", 1, json.dumps(ref).encode(), ARTIFACT)


@pytest.mark.parametrize(
    "ref",
    [
        {"sha256": "../../../../etc/passwd", "size": 10},
        {"sha256": "/etc/passwd", "size": 10},
        {"sha256": "a" * 64, "size": 10, "url": "s3://attacker-bucket/x"},
        {"sha256": "a" * 64, "size": 10, "path": "/tmp/evil"},
        {"sha256": "A" * 64, "size": 10},
        {"sha256": "a" * 64, "size": -1},
        {"sha256": "a" * 64, "size": "10"},
        {"url": "http://169.254.169.254/latest/meta-data/"},
        ["a" * 64, 10],
        {"md5": "a" * 64, "size": 10},
        {"blake3": "a" * 64, "sha256": "b" * 64, "size": 10},
        {"blake3": "a" * 64, "size": 10, "tree": "../../home"},
        {"blake3": "a" * 64, "size": 10, "tree": "/etc"},
        {"blake3": "a" * 64, "size": 10, "tree": ".."},
        {
            "blake3": "a" * 64,
            "size": 10,
            "lineage": {"run": "r", "task": "t", "attempt": 1, "inputs": {"u": "/etc"}},
        },
        {"blake3": "a" * 64, "size": 10, "lineage": "r"},
    ],
    ids=str,
)
def test_a_reference_naming_a_path_url_or_odd_shape_is_refused(store: LocalArtifacts, ref: object) -> None:
    with pytest.raises(CorruptResult, match="malformed artifact reference"):
        decode(_signed_ref(ref), store)


class _Payload:
    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (self.path, "w"))


def test_an_object_rewritten_on_disk_never_runs_its_pickle(
    np: Any, store: LocalArtifacts, tmp_path: Path
) -> None:
    rec = encode("t", 1, np.zeros(1 << 16), store)
    digest, size = reference(rec)[:2]  # type: ignore[index]
    sentinel = tmp_path / "PWNED"
    evil = artifact_format.chunks(artifact_format.PICKLE, pickle.dumps(_Payload(sentinel)), [])
    raw = b"".join(bytes(c) for c in evil)
    Path(store.where(digest)).write_bytes(raw.ljust(size, b"\0"))  # same name, same size
    with pytest.raises(CorruptResult, match="does not match its blake3"):
        decode(rec, store)
    assert not sentinel.exists()


def test_a_missing_object_or_no_artifact_store_is_a_corrupt_result(np: Any, store: LocalArtifacts) -> None:
    rec = encode("t", 1, np.zeros(1 << 16), store)
    with pytest.raises(CorruptResult, match="no artifact store"):
        decode(rec)
    Path(store.where(reference(rec)[0])).unlink()  # type: ignore[index]
    with pytest.raises(CorruptResult, match="is missing"):
        decode(rec, store)


@pytest.mark.parametrize("damage", ["count", "pickle_length", "buffer_length"])
def test_a_damaged_header_is_refused_before_any_slice(damage: str) -> None:
    pickled, bufs = b"\x80\x05N.", [memoryview(b"abc")]
    raw = bytearray(b"".join(bytes(c) for c in artifact_format.chunks(artifact_format.PICKLE, pickled, bufs)))
    if damage == "count":
        raw[12:16] = (1 << 30).to_bytes(4, "little")
        with pytest.raises(ValueError):
            artifact_format.head_size(bytes(raw))
        return
    if damage == "pickle_length":
        raw[16:24] = (1 << 40).to_bytes(8, "little")
        assert artifact_format.head_size(bytes(raw)) > len(raw)  # the store refuses it (n > size)
        return
    raw[24:32] = (1 << 40).to_bytes(8, "little")
    n = artifact_format.head_size(bytes(raw))
    with pytest.raises(ValueError, match="runs past its end"):
        artifact_format.decode(bytes(raw[:n]), memoryview(bytes(raw)))


def test_the_reference_is_authenticated_by_the_records_checksum(np: Any, store: LocalArtifacts) -> None:
    rec = encode("t", 1, np.zeros(1 << 16), store)
    other = hashlib.sha256(b"other").hexdigest()
    forged = rec._replace(data=json.dumps({"sha256": other, "size": 5}).encode())
    with pytest.raises(CorruptResult, match="fails its checksum"):
        decode(forged, store)
