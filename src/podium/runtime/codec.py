"""How task results become bytes in the store and back.

Invariants: every stored result carries the sha256 of its bytes; ``decode`` unpickles only a
record whose checksum matches its bytes and raises ``CorruptResult`` otherwise (the engine then
runs the task again; a cache entry is a miss). Results are pickled (protocol 5) because they are
the user's own values, and unpickling runs code, so nothing written by anyone else may reach
``decode``: a durable store hands back a result only if its tag, made with the store's secret
key, checks (``podium.store.keys``), and otherwise with a checksum that never matches. So a
result planted or altered in the database, even with its sha256 recomputed, fails here.
"""

from __future__ import annotations

import pickle
from typing import Any

from podium.errors import PodiumError
from podium.model.events import ResultRecord, checksum


class CorruptResult(PodiumError):
    """A stored result whose bytes no longer match their checksum, or that the store could not
    authenticate."""


def encode(task_id: str, attempt: int, value: Any) -> ResultRecord:
    data = _dumps(value, 5)
    if len(data) <= _SMALL:  # the sha256 of a few bytes costs more than looking it up
        digest = _small.get(data)
        if digest is None:
            digest = checksum(data)
            if len(_small) < _SMALL_KEEP:
                _small[data] = digest
    else:
        digest = checksum(data)
    return _new(ResultRecord, (task_id, attempt, data, digest, "pickle"))


#: Results pickling to at most this many bytes (None, booleans, small numbers, short strings)
#: have their checksum remembered, up to ``_SMALL_KEEP`` distinct ones.
_SMALL = 32
_SMALL_KEEP = 4096
_small: dict[bytes, str] = {}
_dumps = pickle.dumps
_new = tuple.__new__


def decode(rec: ResultRecord) -> Any:
    if not rec.verify():  # before anything reads the bytes: they may not be ours
        raise CorruptResult(f"result of task {rec.task_id!r} fails its checksum or its authentication")
    if rec.encoding != "pickle":
        raise CorruptResult(f"result of task {rec.task_id!r} has unknown encoding {rec.encoding!r}")
    return pickle.loads(rec.data)
