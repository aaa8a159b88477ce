"""Artifacts in an S3-compatible bucket: a real S3 server on loopback (moto's server mode, started
and stopped by the fixture), reached over HTTP exactly as a user's bucket would be."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from podium.runtime.codec import ARTIFACT, CorruptResult, decode, encode, reference

from .conftest import podium

# boto3 and NumPy are imported inside the tests, not at collection: the suite's process stays
# small (process workers inherit its peak memory).
if importlib.util.find_spec("boto3") is None:
    pytest.skip("boto3 is in the test extra (podium[s3])", allow_module_level=True)
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "test",
    "AWS_SECRET_ACCESS_KEY": "test",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """A moto S3 server on a free loopback port for this module's tests."""
    exe = shutil.which("moto_server", path=os.path.dirname(sys.executable)) or shutil.which("moto_server")
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("moto_server is missing: install the test extra (moto[server])")
        pytest.skip("moto_server is not installed (pip install 'moto[server]')")
    port = _free_port()
    proc = subprocess.Popen(
        [exe, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(url, timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, "moto_server did not start"
                time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture
def bucket(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> str:
    import boto3

    for k, v in CREDENTIALS.items():
        monkeypatch.setenv(k, v)
    name = "b-" + hashlib.sha256(request.node.nodeid.encode()).hexdigest()[:20]
    boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1").create_bucket(Bucket=name)
    return name


def _open(bucket: str, endpoint: str, threshold: int = 64 << 10):  # type: ignore[no-untyped-def]
    from podium.store.artifact_url import open_artifacts

    return open_artifacts(f"s3://{bucket}/runs?endpoint={endpoint}&threshold={threshold}", "memory:")


def test_put_get_and_collect_in_a_bucket(bucket: str, s3_endpoint: str) -> None:
    import numpy as np

    from podium.store.artifacts import collect

    store = _open(bucket, s3_endpoint)
    arr = np.arange(1 << 16, dtype=np.int64)
    rec = encode("t", 1, arr, store)
    assert rec.encoding == ARTIFACT
    digest, size = reference(rec)[:2]  # type: ignore[index]
    assert store.where(digest) == f"s3://{bucket}/runs/objects/{digest}" and store.exists(digest)
    assert np.array_equal(decode(rec, store), arr)
    assert encode("t", 2, arr, store).data == rec.data  # the same bytes: one object, not uploaded twice
    [(name, n, modified)] = list(store.objects())
    assert (name, n) == (digest, size) and abs(modified - time.time()) < 600
    assert collect(store, {digest}, grace=0) == [] and collect(store, set(), grace=0) == [(digest, size)]
    with pytest.raises(CorruptResult, match="is missing"):
        decode(rec, store)


def test_an_object_changed_in_the_bucket_is_refused(bucket: str, s3_endpoint: str) -> None:
    import boto3
    import numpy as np

    store = _open(bucket, s3_endpoint)
    rec = encode("t", 1, np.zeros(1 << 15), store)
    digest, size = reference(rec)[:2]  # type: ignore[index]
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    client.put_object(Bucket=bucket, Key=f"runs/objects/{digest}", Body=b"\0" * size)
    with pytest.raises(CorruptResult, match="does not match its blake3"):
        decode(rec, store)


def test_an_object_named_by_sha256_before_blake3_is_still_read(bucket: str, s3_endpoint: str) -> None:
    import numpy as np

    from podium.store.s3artifacts import S3Artifacts

    old = S3Artifacts(bucket, "runs", s3_endpoint, 64 << 10, algorithm="sha256")
    arr = np.arange(1 << 15, dtype=np.int64)
    rec = encode("t", 1, arr, old)
    assert json.loads(rec.data).keys() == {"sha256", "size"}  # the reference older versions wrote
    assert np.array_equal(decode(rec, _open(bucket, s3_endpoint)), arr)  # a BLAKE3 store reads it


FLOW = textwrap.dedent(
    """
    import os
    import numpy as np
    import podium

    @podium.task
    def make(n: int):
        with open(os.environ["PODIUM_TEST_LOG"], "a") as f:
            f.write("make\\n")
        return np.full(n, 2.0)

    @podium.task
    def use(a, gate: str) -> float:
        if not os.path.exists(gate):
            raise RuntimeError("gate closed")
        return float(a.sum())

    @podium.flow(name="s3flow")
    def s3flow(gate: str, n: int = 1 << 18):
        use(a=make(n=n), gate=gate)
    """
)


def test_a_run_keeps_its_large_result_in_the_bucket_and_resumes_from_it(
    bucket: str, s3_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "flow.py").write_text(FLOW, encoding="utf-8")
    monkeypatch.setenv("PODIUM_TEST_LOG", str(tmp_path / "calls.log"))
    gate = tmp_path / "gate"
    where = ["--store", str(tmp_path / "s.db"), "--artifacts", f"s3://{bucket}/p?endpoint={s3_endpoint}"]
    first = podium(
        "run", "flow.py:s3flow", "-p", f"gate={gate}", "--run-id", "r1", *where, "--no-progress", cwd=tmp_path
    )
    assert first.returncode == 1, first.stderr
    listing = podium("artifacts", "r1", *where, cwd=tmp_path)
    assert listing.returncode == 0 and f"s3://{bucket}/p/objects/" in listing.stdout, listing.stderr
    assert not (tmp_path / "s.db.podium-artifacts").exists()  # nothing went to the local folder
    gate.touch()
    resumed = podium("resume", "r1", *where, "--no-progress", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert (tmp_path / "calls.log").read_text().split() == ["make"]
