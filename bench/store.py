"""Store append cost: microseconds per event for batches of 1, 10 and 100 events.

The engine appends one small batch (1-50 events) per loop iteration, so this is its store
overhead. Runs the default store (SQLite behind its journal) and ``SqliteStore`` alone
(``synchronous=NORMAL`` and ``FULL``) in a temp dir, and PostgreSQL too when ``DATABASE_URL`` is
set (a fresh database is created and dropped). For reference it also times bare ``sqlite3``
``executemany`` + commit of the same precomputed rows on the same schema: the ratio store/bare
is the cost of the store layer itself. Events are built before timing starts.

Run: ``python bench/store.py [--events N] [--repeat R]``. Prints the best of R measurements
per figure (the machine may be busy); asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from podium.model.events import TASK_STARTED, TASK_SUCCEEDED, Event, ResultRecord, RunRecord
from podium.store import SqliteStore, open_store
from podium.store.codec import event_rows, history_rows
from podium.store.migrations import apply_sqlite
from podium.types import Store

BATCHES = (1, 10, 100)


def make_batches(size: int, total: int, with_results: bool) -> list[tuple[list[Event], list[ResultRecord]]]:
    """Alternating TaskStarted / TaskSucceeded events, seqs 2.., optionally a result per success."""
    out: list[tuple[list[Event], list[ResultRecord]]] = []
    seq = 2
    for _ in range(max(total // size, 1)):
        events: list[Event] = []
        results: list[ResultRecord] = []
        for _ in range(size):
            task = f"train[{seq}]"
            if seq % 2:
                data = {"duration": 1.25, "max_rss": 123456789, "node": "local"}
                events.append(Event(seq, TASK_SUCCEEDED, task, 1, 1.7e9 + seq, data))
                if with_results:
                    results.append(ResultRecord.of(task, 1, os.urandom(200)))
            else:
                events.append(Event(seq, TASK_STARTED, task, 1, 1.7e9 + seq, {"node": "local", "pid": 4242}))
            seq += 1
        out.append((events, results))
    return out


def time_store(open_: Callable[[], Store], size: int, total: int, with_results: bool) -> float:
    """Microseconds per event appending ``total`` events in batches of ``size`` to a new run."""
    store = open_()
    run_id = uuid.uuid4().hex
    store.create_run(RunRecord(run_id, "bench", "running", 0.0, 0.0), [])
    batches = make_batches(size, total, with_results)
    t0 = time.perf_counter()
    for events, results in batches:
        store.append(run_id, events, results)
    elapsed = time.perf_counter() - t0
    store.close()
    return elapsed / (len(batches) * size) * 1e6


def time_bare_sqlite(path: Path, size: int, total: int) -> float:
    """The floor: the same event and history rows, precomputed, through plain sqlite3 on the same
    schema, one transaction per batch. store/bare is the cost of the store layer's own work."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    apply_sqlite(conn)
    run_id = uuid.uuid4().hex
    batches = make_batches(size, total, False)
    rows = [(event_rows(run_id, events), history_rows("bench", run_id, events)) for events, _ in batches]
    t0 = time.perf_counter()
    for ev_rows, hist_rows in rows:
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?)", ev_rows)
        conn.executemany("INSERT INTO history VALUES (?, ?, ?, ?, ?, ?, ?)", hist_rows)
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - t0
    conn.close()
    return elapsed / (len(rows) * size) * 1e6


def report(
    name: str, open_: Callable[[], Store], total: int, repeat: int, bare: dict[int, float] | None = None
) -> None:
    for with_results in (False, True):
        label = f"{name}{' +results' if with_results else ''}"
        cells = []
        for size in BATCHES:
            n = total if size > 1 else total // 4
            us = min(time_store(open_, size, n, with_results) for _ in range(repeat))
            cell = f"batch {size:>3}: {us:7.1f} us/event"
            if bare and not with_results:
                cell += f" ({us / bare[size]:.2f}x bare)"
            cells.append(cell)
        print(f"{label:<28} " + " | ".join(cells))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=10_000, help="events per measurement (default 10000)")
    ap.add_argument("--repeat", type=int, default=3, help="measurements per figure; the best is shown")
    args = ap.parse_args()
    rep = args.repeat
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        bare = {
            size: min(time_bare_sqlite(d / "bare.db", size, args.events) for _ in range(rep))
            for size in BATCHES
        }
        print(
            f"{'bare sqlite3 (reference)':<28} "
            + " | ".join(f"batch {s:>3}: {bare[s]:7.1f} us/event" for s in BATCHES)
        )
        report("journaled (default)", lambda: open_store(str(d / "journal.db")), args.events, rep, bare)
        report("SqliteStore NORMAL", lambda: SqliteStore(d / "normal.db"), args.events, rep, bare)
        report(
            "SqliteStore FULL", lambda: SqliteStore(d / "full.db", synchronous="FULL"), args.events // 4, rep
        )
    url = os.environ.get("DATABASE_URL", "").strip()
    if not url:
        print("PostgresStore: skipped (set DATABASE_URL to measure)")
        return
    import psycopg

    from podium.store.postgres import PostgresStore

    name = f"podium_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        db_url = urlunsplit(urlsplit(url)._replace(path=f"/{name}"))
        report("PostgresStore", lambda: PostgresStore(db_url), args.events // 2, rep)
    finally:
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
