"""Which artifact store a URL names: ``open_artifacts`` (the one way the edges pick one).

Invariants: a folder path or ``file:///folder`` is a ``LocalArtifacts``; ``s3://bucket/prefix``
an ``S3Artifacts`` (boto3 is imported only then); nothing given means ``$PODIUM_ARTIFACTS``, else
the folder beside a SQLite store (``<database>.podium-artifacts``), else none (memory and
PostgreSQL stores keep every result inline unless told where artifacts go). Anything else is a
one-line ``UsageError`` that never echoes credentials.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, unquote, urlsplit

from podium.errors import UsageError
from podium.store.artifacts import DEFAULT_THRESHOLD, LocalArtifacts

if TYPE_CHECKING:
    from podium.types import ArtifactStore

#: The artifact folder of a SQLite database ``X`` is ``X`` + this.
ARTIFACTS_SUFFIX = ".podium-artifacts"
#: Environment variable naming the artifact store when ``--artifacts`` is not given.
ARTIFACTS_ENV = "PODIUM_ARTIFACTS"
_HINT = "use a folder path, file:///absolute/folder or s3://bucket/prefix"


def open_artifacts(url: str | None, store_url: str) -> ArtifactStore | None:
    """The artifact store named by ``url`` (else ``$PODIUM_ARTIFACTS``, else the folder beside a
    SQLite store; none for memory and PostgreSQL stores: their results stay inline). ``url`` is
    a folder path, ``file:///folder`` or ``s3://bucket/prefix``, with an optional
    ``?threshold=BYTES``. Anything else is a one-line ``UsageError``."""
    url = (url or os.environ.get(ARTIFACTS_ENV, "")).strip()
    if not url:
        return _beside(store_url)
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    threshold = _threshold(query.pop("threshold", None), url)
    if parts.scheme == "s3":
        from podium.store.s3artifacts import S3Artifacts  # boto3 only when an s3:// URL is used

        return S3Artifacts.from_url(url, parts, query, threshold)
    if query:
        raise UsageError(f"artifact store URL {url!r}: unknown option {sorted(query)[0]!r}")
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise UsageError(f"artifact store URL {url!r}: a file URL names no host; {_HINT}")
        return LocalArtifacts(unquote(parts.path), threshold)
    if parts.scheme and len(parts.scheme) > 1:  # "C:" of a Windows path is not a scheme
        raise UsageError(f"unsupported artifact store URL {url!r}: {_HINT}")
    return LocalArtifacts(url.partition("?")[0], threshold)


def _beside(store_url: str) -> ArtifactStore | None:
    # the database path as ``open_store`` reads it
    parts = urlsplit(store_url)
    if parts.scheme == "sqlite":
        path = parts.path[1:] if parts.path.startswith("/") else parts.path
    elif "://" in store_url or store_url.startswith("memory:"):
        return None
    else:
        path = store_url
    if not path or path == ":memory:" or path.startswith("file:"):
        return None
    return LocalArtifacts(path + ARTIFACTS_SUFFIX)


def _threshold(value: str | None, url: str) -> int:
    if value is None:
        return DEFAULT_THRESHOLD
    try:
        n = int(value)
        if n < 0:
            raise ValueError
    except ValueError:
        raise UsageError(f"artifact store URL {url!r}: threshold must be a whole number of bytes") from None
    return n
