"""``podium.Artifact(path)``: a file or folder a task wrote, returned to be kept as an artifact.

A task returns ``Artifact("model")`` instead of the model's bytes; on commit Podium stores that
file or folder in the artifact store (moved in from the temporary directory, else copied),
hashes it, and every downstream task receives a ``pathlib.Path`` to its read-only stored copy.
Which paths are accepted (no ``..``, no symlinks, only this user's files under the working or
temporary directory) is decided by the store (``podium.store.trees``).

Invariant: an ``Artifact`` is only a path; it is never itself stored or passed downstream.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Artifact:
    """A file or folder a task wrote, to be kept as an artifact (see the module docstring)."""

    path: str

    def __init__(self, path: str | os.PathLike[str]) -> None:
        object.__setattr__(self, "path", os.fspath(path))
