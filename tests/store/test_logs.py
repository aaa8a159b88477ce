"""Task logs in every backend (memory, SQLite, SQLite behind its journal, PostgreSQL): one record
per attempt, replaced as it grows, bounded, read by byte ranges, listed in writing order."""

from __future__ import annotations

from podium.model.events import RUN_CREATED, Event, RunRecord
from podium.model.logs import LOG_LIMIT, LogRecord
from podium.types import Store

from .conftest import Opener


def started(store: Store, run_id: str = "r1") -> Store:
    store.create_run(RunRecord(run_id, "wf", "running", 1.0, 1.0), [Event(1, RUN_CREATED, None, 0, 1.0, {})])
    return store


def rec(task: str, attempt: int, text: str, cut: int = 0, ts: float = 10.0) -> LogRecord:
    return LogRecord(task, attempt, text, cut, ((0, "stdout", ts),))


def test_a_log_is_written_replaced_and_read_back(open_same: Opener) -> None:
    store = started(open_same())
    store.logs.write("r1", [rec("a", 1, "first line\n")])
    store.logs.write("r1", [rec("a", 1, "first line\nsecond line\n"), rec("b", 1, "b says ü\n", ts=5.0)])
    again = open_same()  # another object on the same database sees the same
    for s in (store, again):
        assert s.logs.get("r1", "a", 1) == rec("a", 1, "first line\nsecond line\n")
        assert s.logs.read("r1", "b", 1) == ("b says ü\n", len("b says ü\n".encode()))
        assert s.logs.index("r1") == [("b", 1, 10), ("a", 1, 23)]  # oldest first write first
    assert store.logs.get("r1", "a", 2) is None and store.logs.get("r2", "a") is None
    assert store.logs.read("r1", "zzz") == ("", 0)


def test_the_latest_attempt_is_read_when_none_is_named(store: Store) -> None:
    started(store).logs.write("r1", [rec("a", 1, "one\n"), rec("a", 3, "three\n"), rec("a", 2, "two\n")])
    assert store.logs.get("r1", "a").text == "three\n"  # type: ignore[union-attr]
    assert store.logs.read("r1", "a", None, tail=3) == ("ee\n", 6)


def test_byte_ranges_and_tails_of_the_shown_log(store: Store) -> None:
    started(store).logs.write("r1", [rec("a", 1, "0123456789", cut=5)])
    shown = store.logs.get("r1", "a", 1).shown()  # type: ignore[union-attr]
    assert shown.startswith("[... 5 earlier bytes of output were cut") and shown.endswith("\n0123456789")
    size = len(shown.encode())
    assert store.logs.read("r1", "a", 1, offset=size - 4, limit=2) == ("67", size)
    assert store.logs.read("r1", "a", 1, tail=4) == ("6789", size)
    assert store.logs.read("r1", "a", 1, offset=size + 10) == ("", size)


def test_a_record_over_the_bound_keeps_its_end_and_counts_the_cut(store: Store) -> None:
    big = "x" * LOG_LIMIT + "the end\n"
    started(store).logs.write("r1", [LogRecord("a", 1, big, 7, ())])
    log = store.logs.get("r1", "a", 1)
    assert log is not None and log.text.endswith("the end\n") and len(log.text.encode()) == LOG_LIMIT
    assert log.cut == 7 + len("the end\n")


def test_nul_characters_and_odd_text_survive_every_backend(store: Store) -> None:
    started(store).logs.write("r1", [rec("a", 1, "a\x00b \U0001f600 'quote' ; DROP TABLE logs; --\n")])
    assert store.logs.get("r1", "a", 1).text == "a\ufffdb \U0001f600 'quote' ; DROP TABLE logs; --\n"  # type: ignore[union-attr]
    assert store.logs.index("r1") == [
        ("a", 1, len("a\ufffdb \U0001f600 'quote' ; DROP TABLE logs; --\n".encode()))
    ]


def test_url_passwords_and_revealed_secrets_never_reach_the_store(store: Store) -> None:
    from podium.secrets import remember

    remember("revealed-Value-42")
    started(store).logs.write("r1", [rec("a", 1, "db postgresql://u:pw123@host/x; key revealed-Value-42\n")])
    assert store.logs.get("r1", "a", 1).text == "db postgresql://u:***@host/x; key ***\n"  # type: ignore[union-attr]
