"""PostgreSQL specifics: a dropped connection fails one call (retryable) and the next works."""

from __future__ import annotations

import pytest

from podium.errors import StoreError
from podium.model.events import TASK_STARTED, Event, RunRecord
from podium.store.postgres import PostgresStore

psycopg = pytest.importorskip("psycopg")
pytestmark = pytest.mark.postgres


def test_store_reconnects_after_its_connection_is_killed(pg_url: str) -> None:
    store = PostgresStore(pg_url)
    try:
        store.create_run(RunRecord("r1", "wf", "running", 1.0, 1.0), [])
        pid = store._conn.info.backend_pid
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        with pytest.raises(StoreError) as info:
            store.append("r1", [Event(1, TASK_STARTED, "a")])
        assert info.value.retryable
        store.append("r1", [Event(1, TASK_STARTED, "a")])  # the retry reconnects and commits
        assert [e.seq for e in store.events("r1")] == [1]
    finally:
        store.close()


def test_no_connection_idles_in_a_transaction(pg_url: str) -> None:
    store = PostgresStore(pg_url)
    try:
        store.create_run(RunRecord("r1", "wf", "running", 1.0, 1.0), [])
        store.events("r1")
        store.cancel_requested("r1")
        with psycopg.connect(pg_url, autocommit=True) as admin:
            state = admin.execute(
                "SELECT state FROM pg_stat_activity WHERE pid = %s", (store._conn.info.backend_pid,)
            ).fetchone()
        assert state == ("idle",)
    finally:
        store.close()
