"""Secrets: values a spec names but never holds, and masking them in whatever is recorded.

- ``Secret(name, env=..., file=...)`` is a reference inside a ``TaskSpec`` (from
  ``${secrets.NAME}``, ``${env.NAME}`` or ``podium.secret("NAME")``); ``reveal`` reads its
  value, and only the code that builds a call does so, just before the call runs.
- A revealed value is a ``Sensitive`` string: it behaves as the text, its ``repr`` is masked,
  and it carries the secret strings inside it (a template may embed one), so whichever
  process runs the call can mask them in what the call sends back.
- ``redact(text)`` masks every secret value this process has revealed (``remember``), the
  ones given, passwords in URLs (``postgresql://u:pw@h`` -> ``postgresql://u:***@h``),
  ``token=``/``password=`` query values and ``Bearer`` tokens. Apply it to anything that
  leaves a task: captured output, error messages and tracebacks, log lines, messages printed
  to a terminal.
- ``redact_value(value)`` is the same for a JSON-like value: every string through ``redact``,
  and the value of every key that names a secret (password, token, api key, ...) masked; what
  the read model (``podium show --json``, the API, the server) shows of params, errors, events.

Invariants: a secret's value is never part of a ``Secret``, a ``TaskSpec``, a ``repr`` or
what ``redact`` returns; values shorter than ``MIN_MASKED`` characters are not masked (masking
them would garble every output and they protect nothing). This module imports only errors.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from podium.errors import ErrorRecord, PodiumError

MASK = "***"
MIN_MASKED = 4
#: Largest secret file read (a secret is a token or a key, not a data set).
MAX_SECRET_BYTES = 1024 * 1024
_KNOWN: set[str] = set()
_KNOWN_LIMIT = 10_000
_LOCK = threading.Lock()
_URL_PASSWORD = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.\-]*://[^:/?#@\s]*):(?P<pw>[^@/?#\s]+)@")
_BEARER = re.compile(r"(?i)\b(?P<head>bearer\s+)[A-Za-z0-9._~+/=-]{8,}")
_SECRET_KEY = re.compile(
    r"(pass(word|wd|phrase)?|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|credential|"
    r"authorization|cookie|session)",
    re.IGNORECASE,
)
_QUERY_SECRET = re.compile(
    r"(?P<head>[?&;](?:password|passwd|pwd|token|access_token|api_key|apikey|secret|signature|sig)=)"
    r"[^&;#\s]+",
    re.IGNORECASE,
)


class SecretError(PodiumError):
    """A secret could not be read (variable not set, file missing or outside its folder)."""

    exit_code = 2
    http_status = 422


@dataclass(frozen=True, slots=True)
class Secret:
    """A reference to a secret value: environment variable ``env`` or the file ``file``
    (which must stay inside folder ``root`` when one is given). ``name`` is how specs call it."""

    name: str
    env: str | None = None
    file: str | None = None
    root: str | None = None

    def __repr__(self) -> str:
        source = f"env={self.env!r}" if self.env else f"file={self.file!r}"
        return f"Secret({self.name!r}, {source})"


class Sensitive(str):
    """A string holding secret values: the text itself, ``secrets`` the values inside it."""

    secrets: tuple[str, ...]

    def __new__(cls, text: str, secrets: Iterable[str] | None = None) -> Sensitive:
        obj = super().__new__(cls, text)
        obj.secrets = tuple(secrets) if secrets is not None else (str(text),)
        return obj

    def __repr__(self) -> str:
        return repr(MASK)

    def __reduce__(self) -> tuple[Any, ...]:
        return (Sensitive, (str(self), self.secrets))


def reveal(secret: Secret) -> Sensitive:
    """The value of ``secret``, remembered for ``redact``. ``SecretError`` if it cannot be read."""
    if secret.env is not None:
        value = os.environ.get(secret.env)
        if value is None:
            raise SecretError(f"secret {secret.name!r}: environment variable {secret.env!r} is not set")
    elif secret.file is not None:
        value = _read_file(secret)
    else:
        raise SecretError(f"secret {secret.name!r} has no source (env or file)")
    remember(value)
    return Sensitive(value)


def _read_file(secret: Secret) -> str:
    path = os.path.realpath(secret.file or "")
    if secret.root is not None:
        root = os.path.realpath(secret.root)
        if os.path.commonpath([root, path]) != root:
            raise SecretError(f"secret {secret.name!r}: its file is not inside {root}")
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_SECRET_BYTES + 1)
    except OSError as e:
        raise SecretError(f"secret {secret.name!r}: cannot read {secret.file}: {e.strerror}") from None
    if len(data) > MAX_SECRET_BYTES:
        raise SecretError(f"secret {secret.name!r}: {secret.file} is larger than {MAX_SECRET_BYTES} bytes")
    text = data.decode("utf-8", errors="replace")
    return text[:-2] if text.endswith("\r\n") else text[:-1] if text.endswith("\n") else text


def remember(value: str) -> None:
    """Mask ``value`` in everything this process redacts from now on."""
    if len(value) >= MIN_MASKED:
        with _LOCK:
            if len(_KNOWN) >= _KNOWN_LIMIT:
                _KNOWN.clear()
            _KNOWN.add(str(value))


def secrets_in(value: Any) -> set[str]:
    """The secret strings inside a structure of mappings, lists and ``Sensitive`` strings."""
    return set(_walk(value))


def _walk(value: Any) -> Iterator[str]:
    if isinstance(value, Sensitive):
        yield from value.secrets
    elif isinstance(value, Mapping):
        for k, v in value.items():
            yield from _walk(k)
            yield from _walk(v)
    elif isinstance(value, list | tuple | set | frozenset):
        for v in value:
            yield from _walk(v)


def redact(text: str, extra: Iterable[str] = ()) -> str:
    """``text`` with known secret values, the ``extra`` ones, URL passwords, secret query
    values and bearer tokens replaced by ``***``."""
    if not text:
        return text
    with _LOCK:
        values = set(_KNOWN)
    values.update(str(v) for v in extra)
    for v in sorted((v for v in values if len(v) >= MIN_MASKED), key=len, reverse=True):
        if v in text:
            text = text.replace(v, MASK)
    if "://" in text:
        text = _URL_PASSWORD.sub(lambda m: f"{m.group('head')}:{MASK}@", text)
    if "=" in text:
        text = _QUERY_SECRET.sub(lambda m: f"{m.group('head')}{MASK}", text)
    if "earer" in text or "EARER" in text:
        text = _BEARER.sub(lambda m: f"{m.group('head')}{MASK}", text)
    return str(text)


def redact_value(value: Any, depth: int = 0) -> Any:
    """A copy of a JSON-like ``value`` with secrets replaced by ``***``: strings through
    ``redact``, and the value of every key naming a secret (password, token, ...) masked."""
    if isinstance(value, str):
        return redact(value)
    if depth > 32:
        return "..."
    if isinstance(value, dict):
        return {
            k: (
                MASK
                if isinstance(k, str) and _SECRET_KEY.search(k) and v not in (None, "")
                else redact_value(v, depth + 1)
            )
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact_value(v, depth + 1) for v in value]
    return value


def redact_record(record: ErrorRecord, extra: Iterable[str] = ()) -> ErrorRecord:
    """``record`` with its message, traceback and text details redacted (what a run loop
    applies before an error record is emitted: the orchestrator has revealed, and so knows,
    every secret of its run, whichever process or node the record came from)."""
    values = tuple(extra)
    message, traceback = redact(record.message, values), redact(record.traceback, values)
    details = {k: redact(v, values) if isinstance(v, str) else v for k, v in record.extra.items()}
    if (message, traceback, details) == (record.message, record.traceback, record.extra):
        return record
    return ErrorRecord(record.type, message, traceback, record.retryable, record.kind, details)
