"""Artifacts in an S3-compatible bucket (AWS S3, MinIO, moto, ...) through ``s3fs``.

``s3://bucket/prefix?endpoint=http://127.0.0.1:9000`` names the bucket, a key prefix and, for a
server other than AWS, its endpoint (``http`` or ``https`` only). Credentials come from the
usual places (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, ``~/.aws``), never from the URL,
so they never reach the event log or a message.

Invariants (the ``artifacts`` ones, for a bucket):
- Objects are named ``<prefix>/objects/<sha256>``; the digest is computed before the upload, so
  the object is written once under its final key, and S3 makes an upload (multipart or not)
  visible only when it completes: a killed writer leaves no object (at most an unfinished
  multipart upload, which the bucket's lifecycle rule should abort). An object already there
  has the same bytes and is not uploaded again.
- ``get`` reads the object into private memory and checks its size and sha256 before any byte
  is used. s3fs is imported only here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import SplitResult, urlsplit

from podium.errors import UsageError
from podium.store.artifacts import ArtifactError, check_digest, hash_chunks, slices


class S3Artifacts:
    """Content-addressed objects under ``s3://bucket/prefix/objects/``."""

    def __init__(self, bucket: str, prefix: str, endpoint: str | None, threshold: int) -> None:
        try:
            import s3fs
        except ImportError:
            raise UsageError("s3:// artifact stores need s3fs: pip install 'podium[s3]'") from None
        kwargs: dict[str, Any] = {}
        if endpoint:
            kwargs["client_kwargs"] = {"endpoint_url": endpoint}
        self.fs = s3fs.S3FileSystem(skip_instance_cache=True, use_listings_cache=False, **kwargs)
        self.bucket, self.prefix, self.threshold = bucket, prefix.strip("/"), threshold
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
        return "/".join(p for p in (self.bucket, self.prefix, "objects", check_digest(digest)) if p)

    def where(self, digest: str) -> str:
        return "s3://" + self._key(digest)

    def put(self, chunks: Sequence[Any]) -> tuple[str, int]:
        digest, size = hash_chunks(chunks)
        key = self._key(digest)
        try:
            if self.fs.exists(key):
                return digest, size
            with self.fs.open(key, "wb") as f:
                for s in slices(chunks):
                    f.write(s)
        except (OSError, ValueError) as e:
            raise ArtifactError(f"cannot write artifact to {self.url!r}: {e}") from None
        return digest, size

    def get(self, digest: str, size: int, head: Callable[[bytes], int]) -> tuple[bytes, memoryview]:
        key = self._key(digest)
        buf = bytearray(size)
        view = memoryview(buf)
        try:
            with self.fs.open(key, "rb") as f:
                if f.size != size:
                    raise ArtifactError(f"artifact {digest[:12]} has {f.size} bytes, its reference {size}")
                got = 0
                while got < size:
                    n = f.readinto(view[got:])
                    if not n:
                        raise ArtifactError(f"artifact {digest[:12]} ends early")
                    got += n
        except FileNotFoundError:
            raise ArtifactError(f"artifact {digest[:12]} is missing from {self.url!r}") from None
        except OSError as e:
            raise ArtifactError(f"cannot read artifact {digest[:12]}: {e}") from None
        if hashlib.sha256(view).hexdigest() != digest:
            raise ArtifactError(f"artifact {digest[:12]} does not match its sha256 (changed in the bucket)")
        n = head(bytes(view[: min(size, 64 << 10)]))
        if not 0 <= n <= size:
            raise ArtifactError(f"artifact {digest[:12]} has a damaged header")
        return bytes(view[:n]), view

    def exists(self, digest: str) -> bool:
        return bool(self.fs.exists(self._key(digest)))

    def delete(self, digest: str) -> None:
        try:
            self.fs.rm_file(self._key(digest))
        except FileNotFoundError:
            pass

    def objects(self) -> Iterator[tuple[str, int, float]]:
        base = "/".join(p for p in (self.bucket, self.prefix, "objects") if p)
        try:
            found = self.fs.find(base, detail=True)
        except FileNotFoundError:
            return
        for path, info in found.items():
            name = path.rsplit("/", 1)[-1]
            modified = info.get("LastModified")
            yield name, int(info.get("size") or 0), modified.timestamp() if modified is not None else 0.0

    def remove(self, name: str) -> None:
        self.delete(name)
