"""A spec's ``secrets:`` section, and what a spec may read as a secret.

```yaml
secrets:
  db_password: {env: DB_PASSWORD}     # an environment variable
  api_token: {file: api_token}        # a file in secrets_dir
tasks:
  load: {kind: shell, argv: [psql, ...], env: {PGPASSWORD: "${secrets.db_password}"}}
```

A spec names secrets; the user decides which can be read: environment variables listed in
``allow_env`` (``--allow-env``) and files inside ``secrets_dir`` (both in ``podium.toml``).
``${env.NAME}`` reads the variable NAME under the same rule. Values are read only when a
task's call is built, never at validation.

Invariants: pure apart from resolving paths (no value is read here); every problem is
``(path inside the section, message)`` saying how to allow what was refused.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from podium.load.config import Config
from podium.secrets import Secret

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")
Found = list[tuple[tuple[str | int, ...], str]]


def read_secrets(value: Any, config: Config) -> tuple[dict[str, Secret], Found]:
    """The declared secrets by name, and the problems of the section."""
    out: dict[str, Secret] = {}
    found: Found = []
    if not isinstance(value, Mapping):
        return out, [((), "expected a mapping of secret name to {env: VARIABLE} or {file: PATH}")]
    for name, decl in value.items():
        if not isinstance(name, str) or not _NAME.match(name):
            found.append(((name,), "a secret name is letters, digits, '_' and '-'"))
            continue
        if not isinstance(decl, Mapping) or len(decl) != 1 or next(iter(decl)) not in ("env", "file"):
            found.append(((name,), "expected {env: VARIABLE} or {file: PATH}"))
            continue
        ((kind, source),) = decl.items()
        if not isinstance(source, str) or not source or "\x00" in source:
            found.append(((name, kind), "expected a non-empty string"))
            continue
        secret = Secret(name, env=source) if kind == "env" else _file_secret(name, source, config)
        msg = check_secret(secret, config)
        if msg is not None:
            found.append(((name, kind), msg))
        out[name] = secret
    return out, found


def _file_secret(name: str, source: str, config: Config) -> Secret:
    root = config.secrets_dir
    base = Path(root) if root else Path(config.root or os.getcwd())
    return Secret(name, file=os.path.realpath(base / source), root=root)


def check_secret(secret: Secret, config: Config) -> str | None:
    """Why a spec may not read ``secret``, or None."""
    if secret.env is not None:
        if not config.policy.env_allowed(secret.env):
            return (
                f"environment variable {secret.env!r} is not allowed: allow it with "
                f"--allow-env {secret.env} or allow_env in podium.toml"
            )
        return None
    if secret.root is None:
        return "file secrets are read only from secrets_dir: set secrets_dir in podium.toml"
    root = os.path.realpath(secret.root)
    if os.path.commonpath([root, secret.file or ""]) != root:
        return f"the file is not inside secrets_dir ({root})"
    return None
