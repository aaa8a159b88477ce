"""The journal's record format on its own: exact round trips, and every damaged byte found."""

from __future__ import annotations

import struct

import pytest

from podium.store import journal_format as jf

RUN = "r1"


def rows(
    *events: tuple[int, str, str | None, str],
) -> list[tuple[str, int, str, str | None, int, float, str]]:
    return [(RUN, seq, typ, tid, 1, 1.7e9 + seq / 7, data) for seq, typ, tid, data in events]


def result(tid: str, data: bytes = b"\x80\x05N.") -> tuple[str, str, int, bytes, str, str, bytes]:
    return (RUN, tid, 2, data, "a" * 64, "pickle", bytes(range(32)))


CASES = {
    "one result (compact)": (rows((2, "TaskSucceeded", "t", '{"duration":0.5}')), [result("t")]),
    "no result": (rows((2, "TaskQueued", "a", "{}"), (3, "TaskStarted", "a", '{"n":"é✓"}')), []),
    "many results": (
        rows((4, "TaskSucceeded", "x", "{}")),
        [result("x"), result("y", b""), result("z", b"\0" * 9)],
    ),
    "a run event": (rows((1, "RunCreated", None, '{"p":[1,2]}'), (2, "TaskQueued", "a", "{}")), []),
    "a task named like a run event's (general)": (
        rows((1, "RunCreated", None, "{}"), (2, "X", "\x01", "{}")),
        [],
    ),
    "a NUL in a task id (general)": (rows((5, "TaskQueued", "a\0b", "{}")), [result("a\0b")]),
    "a lone surrogate": (rows((6, "TaskQueued", "s\ud800", '{"k":"\ud801"}')), []),
    "no events (general)": ([], [result("t")]),
}


@pytest.mark.parametrize("case", CASES)
def test_a_body_decodes_to_exactly_what_was_encoded(case: str) -> None:
    events, results = CASES[case]
    body = jf.encode_body(events, results)
    assert jf.decode_body(RUN, body) == (events, results)
    assert body[0] == (1 if "general" in case else 0)  # the compact form unless it cannot be


def journal(*records: tuple[str, bytes], generation: int = 77) -> bytes:
    out = [jf.file_header(generation)]
    for run_id, body in records:
        out += [jf.record_header(generation, run_id.encode(), body), body]
    return b"".join(out) + bytes(64)


def three() -> bytes:
    bodies = [
        jf.encode_body(rows((2 * i + 2, "TaskSucceeded", f"t{i}", '{"duration":0.25}')), [result(f"t{i}")])
        for i in range(3)
    ]
    return journal(*[(RUN, b) for b in bodies])


def test_every_damaged_byte_of_a_record_is_found_and_its_neighbours_kept() -> None:
    data = three()
    intact = jf.scan(data)
    assert len(intact.records) == 3 and not intact.damaged
    start, end = intact.spans[1]
    for pos in range(start, end):
        for flip in (0x01, 0x80):
            bad = bytearray(data)
            bad[pos] ^= flip
            scan = jf.scan(bytes(bad))
            got = [rows_[0][1] for _, rows_, _ in scan.records]
            assert got == [2, 6], f"byte {pos - start} of the record, flipped by {flip:#x}: {got}"
            assert len(scan.damaged) == 1
            s, e, _ = scan.damaged[0]
            assert s <= pos < e, f"byte {pos - start}: damage {scan.damaged[0]} does not cover it"


def test_a_zero_header_after_the_last_record_is_the_end_quietly() -> None:
    data = three()
    # an append cut short: its body is there, its header (written last) is not
    torn = data.rstrip(b"\0") + bytes(30) + jf.encode_body(rows((8, "TaskQueued", "x", "{}")), []) + bytes(40)
    scan = jf.scan(torn)
    assert len(scan.records) == 3 and not scan.damaged


def test_records_of_an_older_generation_are_not_live() -> None:
    old = journal((RUN, jf.encode_body(rows((2, "TaskQueued", "a", "{}")), [])), generation=5)
    restarted = bytearray(old)
    jf.set_generation(restarted, 6)  # a restart from the top whose zeroing was cut short
    scan = jf.scan(bytes(restarted))
    assert scan.generation == 6 and not scan.records and not scan.damaged


def test_garbage_after_the_last_record_is_damage() -> None:
    data = three()
    end = len(data.rstrip(b"\0"))
    scan = jf.scan(data[:end] + b"not a header" + bytes(40))
    assert len(scan.records) == 3 and scan.damaged == [(end, end + 12, None)]


def test_a_body_claiming_more_than_it_holds_is_refused_cheaply() -> None:
    huge = struct.pack("<BIII", 0, 2**31, 2**31, 0)
    with pytest.raises(jf.RecordError, match="exceed"):
        jf.decode_body(RUN, huge)
    with pytest.raises(jf.RecordError):
        jf.decode_body(RUN, b"\x02whatever")
    with pytest.raises(jf.RecordError, match="malformed"):  # event data must be a JSON object
        jf.decode_body(RUN, jf.encode_body(rows((2, "TaskQueued", "a", "[1]")), []))


def test_deeply_nested_data_in_a_record_is_damage_not_a_crash() -> None:
    deep = '{"a":' * 100_000 + "1" + "}" * 100_000
    with pytest.raises(jf.RecordError):
        jf.decode_body(RUN, jf.encode_body(rows((2, "TaskQueued", "a", deep)), []))
