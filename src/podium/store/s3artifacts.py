"""Artifacts in an S3-compatible bucket (AWS S3, MinIO, moto, ...) through boto3.

``s3://bucket/prefix?endpoint=http://127.0.0.1:9000`` names the bucket, a key prefix and, for a
server other than AWS, its endpoint (``http`` or ``https`` only). Credentials come from the
usual places (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, ``~/.aws``), never from the URL,
so they never reach the event log or a message.

Invariants (the ``artifacts`` ones, for a bucket):
- Objects are named ``<prefix>/objects/<digest>`` (BLAKE3, or sha256 for objects written before
  it: ``hashing``); the digest is computed before the upload, so
  the object is written once under its final key, and S3 makes an upload (multipart or not)
  visible only when it completes: a killed writer leaves no object (at most an unfinished
  multipart upload, which the bucket's lifecycle rule should abort). An object already there
  has the same bytes and is not uploaded again.
- ``get`` reads the object into private memory and checks its size and digest before any byte
  is used. boto3 is imported only here.
- Folders (``podium.Artifact``) are not kept in a bucket yet: a task returning one fails with a
  message saying so.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import SplitResult, urlsplit

from podium.errors import UsageError
from podium.store.hashing import (
    ArtifactError,
    check_algorithm,
    check_digest,
    default_algorithm,
    digest_of,
    hash_chunks,
    slices,
)


class _Reader:
    """The concatenation of ``chunks`` as a file object boto3 can upload (one slice at a time)."""

    def __init__(self, chunks: Sequence[Any]) -> None:
        self._it = slices(chunks)
        self._left = memoryview(b"")

    def read(self, n: int = -1) -> bytes:
        out = []
        want = n if n is not None and n >= 0 else 1 << 62
        while want > 0:
            if not self._left.nbytes:
                nxt = next(self._it, None)
                if nxt is None:
                    break
                self._left = nxt
            piece = self._left[:want]
            out.append(bytes(piece))
            self._left = self._left[piece.nbytes :]
            want -= piece.nbytes
        return b"".join(out)


class S3Artifacts:
    """Content-addressed objects under ``s3://bucket/prefix/objects/``."""

    def __init__(
        self, bucket: str, prefix: str, endpoint: str | None, threshold: int, algorithm: str | None = None
    ) -> None:
        try:
            import boto3
            from botocore.exceptions import BotoCoreError, ClientError
        except ImportError:
            raise UsageError("s3:// artifact stores need boto3: pip install 'podium[s3]'") from None
        self.client = boto3.client("s3", endpoint_url=endpoint)
        self._errors = (BotoCoreError, ClientError, OSError)
        self.bucket, self.prefix, self.threshold = bucket, prefix.strip("/"), threshold
        self.algorithm = check_algorithm(algorithm or default_algorithm())
        self.url = f"s3://{bucket}/{self.prefix}".rstrip("/")

    @classmethod
    def from_url(cls, url: str, parts: SplitResult, query: Mapping[str, str], threshold: int) -> S3Artifacts:
        options = dict(query)
        endpoint = options.pop("endpoint", None)
        url = f"s3://{parts.hostname or ''}{parts.path}"  # never echo credentials or the query
        if options:
            raise UsageError(f"artifact store URL {url!r}: unknown option {sorted(options)[0]!r}")
        if not parts.hostname or parts.username or parts.password or parts.port:
            raise UsageError(f"artifact store URL {url!r}: expected s3://bucket/prefix (no credentials)")
        if endpoint is not None:
            e = urlsplit(endpoint)
            if e.scheme not in ("http", "https") or not e.hostname or e.username or e.password:
                raise UsageError(
                    f"artifact store URL {url!r}: endpoint must be an http(s) URL without credentials"
                )
        return cls(parts.hostname, parts.path, endpoint, threshold)

    def __repr__(self) -> str:
        return f"S3Artifacts({self.url!r})"

    def _key(self, digest: str) -> str:
        return "/".join(p for p in (self.prefix, "objects", check_digest(digest)) if p)

    def where(self, digest: str) -> str:
        return f"s3://{self.bucket}/{self._key(digest)}"

    def _missing(self, err: Exception) -> bool:
        code = str(getattr(err, "response", {}).get("Error", {}).get("Code", ""))
        return code in ("404", "NoSuchKey", "NotFound")

    def exists(self, digest: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(digest))
        except self._errors as e:
            if self._missing(e):
                return False
            raise ArtifactError(f"cannot reach artifact store {self.url!r}: {e}") from None
        return True

    def put(self, chunks: Sequence[Any]) -> tuple[str, int]:
        digest, size = hash_chunks(chunks, self.algorithm)
        if self.exists(digest):
            return digest, size
        try:
            self.client.upload_fileobj(_Reader(chunks), self.bucket, self._key(digest))
        except self._errors as e:
            raise ArtifactError(f"cannot write artifact to {self.url!r}: {e}") from None
        return digest, size

    def get(
        self, digest: str, size: int, head: Callable[[bytes], int], algorithm: str = "sha256"
    ) -> tuple[bytes, memoryview]:
        buf = bytearray(size)
        view = memoryview(buf)
        try:
            obj = self.client.get_object(Bucket=self.bucket, Key=self._key(digest))
            if obj["ContentLength"] != size:
                raise ArtifactError(
                    f"artifact {digest[:12]} has {obj['ContentLength']} bytes, its reference {size}"
                )
            got, body = 0, obj["Body"]
            for piece in body.iter_chunks(8 << 20):
                if got + len(piece) > size:
                    raise ArtifactError(f"artifact {digest[:12]} is longer than its reference")
                view[got : got + len(piece)] = piece
                got += len(piece)
            if got != size:
                raise ArtifactError(f"artifact {digest[:12]} ends early")
        except self._errors as e:
            if self._missing(e):
                raise ArtifactError(f"artifact {digest[:12]} is missing from {self.url!r}") from None
            raise ArtifactError(f"cannot read artifact {digest[:12]}: {e}") from None
        if digest_of(view, algorithm) != digest:
            raise ArtifactError(
                f"artifact {digest[:12]} does not match its {algorithm} (changed in the bucket)"
            )
        n = head(bytes(view[: min(size, 64 << 10)]))
        if not 0 <= n <= size:
            raise ArtifactError(f"artifact {digest[:12]} has a damaged header")
        return bytes(view[:n]), view

    def objects(self) -> Iterator[tuple[str, int, float]]:
        base = "/".join(p for p in (self.prefix, "objects") if p) + "/"
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=base
            ):
                for item in page.get("Contents", ()):
                    yield item["Key"].rsplit("/", 1)[-1], int(item["Size"]), item["LastModified"].timestamp()
        except self._errors as e:
            raise ArtifactError(f"cannot list artifact store {self.url!r}: {e}") from None

    def remove(self, name: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._key(name))
        except self._errors as e:
            raise ArtifactError(f"cannot delete from artifact store {self.url!r}: {e}") from None
