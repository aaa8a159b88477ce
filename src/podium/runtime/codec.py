"""How task results become bytes in the store and back.

Invariants: every stored result carries the sha256 of its bytes; ``decode`` refuses bytes
whose checksum does not match (``CorruptResult``) instead of passing bad data on. Results are
pickled (protocol 5) because they come from the user's own tasks and are read back only by the
same user's runs; nothing from outside is ever unpickled.
"""

from __future__ import annotations

import pickle
from typing import Any

from podium.errors import PodiumError
from podium.model.events import ResultRecord


class CorruptResult(PodiumError):
    """A stored result whose bytes no longer match their checksum."""


def encode(task_id: str, attempt: int, value: Any) -> ResultRecord:
    return ResultRecord.of(task_id, attempt, pickle.dumps(value, protocol=5))


def decode(rec: ResultRecord) -> Any:
    if not rec.verify():
        raise CorruptResult(f"result of task {rec.task_id!r} fails its checksum")
    if rec.encoding != "pickle":
        raise CorruptResult(f"result of task {rec.task_id!r} has unknown encoding {rec.encoding!r}")
    return pickle.loads(rec.data)
