"""Writer processes for the concurrency and crash tests, run as ``python workers.py MODE ...``.

``contend URL RUN WRITER BATCH N GO_FILE``: prints "ready", waits until GO_FILE exists, then
appends seqs 1..N in batches of BATCH (each batch with one result), printing one JSON line per
committed batch and skipping batches that conflict. ``crash URL RUN BATCH``: appends batches
forever, printing each committed batch number, until it is killed.
"""

from __future__ import annotations

import json
import os
import random
import sys
import time

from podium.errors import ConflictError
from podium.model.events import TASK_SUCCEEDED, Event, ResultRecord
from podium.store import open_store


def batch_events(first: int, size: int, writer: str) -> list[Event]:
    return [
        Event(s, TASK_SUCCEEDED, f"t{s}", 1, float(s), {"writer": writer}) for s in range(first, first + size)
    ]


def contend(url: str, run_id: str, writer: str, size: int, n: int, go_file: str) -> None:
    store = open_store(url)
    rng = random.Random(writer)
    print("ready", flush=True)
    while not os.path.exists(go_file):
        time.sleep(0.001)
    for first in range(1, n + 1, size):
        count = min(size, n + 1 - first)
        result = ResultRecord.of(f"batch{first}", 1, writer.encode())
        try:
            store.append(run_id, batch_events(first, count, writer), [result])
        except ConflictError:
            continue  # lost these seqs: hurry on, so the writers keep overtaking each other
        print(json.dumps({"first": first, "count": count}), flush=True)
        time.sleep(rng.uniform(0, 0.002))
    store.close()


def crash(url: str, run_id: str, size: int) -> None:
    store = open_store(url)
    k = 0
    while True:
        first = 2 + k * size  # seq 1 is the RunCreated event
        blob = bytes([k % 256]) * 3000  # results big enough to span pages
        store.append(run_id, batch_events(first, size, "w"), [ResultRecord.of(f"b{k}", 1, blob)])
        print(k, flush=True)
        k += 1


if __name__ == "__main__":
    mode, *args = sys.argv[1:]
    if mode == "contend":
        contend(args[0], args[1], args[2], int(args[3]), int(args[4]), args[5])
    elif mode == "crash":
        crash(args[0], args[1], int(args[2]))
    else:
        sys.exit(f"unknown mode {mode!r}")
