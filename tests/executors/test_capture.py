"""Captured output: every attempt's stdout, stderr and logging land in its own bounded log, in
thread, process and inline executors, never mixed with another task's lines."""

from __future__ import annotations

import io
import logging
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest
from executor_helpers import make_call, wait_until

from podium.errors import TaskFailedError
from podium.executors import ProcessExecutor, ThreadExecutor
from podium.executors.capture import AttemptLog, mask, set_echo
from podium.executors.inline import InlineExecutor
from podium.model.logs import LOG_LIMIT, LogRecord
from podium.policy import Policy
from podium.registry import Registry

CHATTY = textwrap.dedent(
    """
    import logging, os, subprocess, sys, threading, time

    log = logging.getLogger("chatty")
    log.addHandler(logging.StreamHandler())  # to sys.stderr as it is now, before any capture
    log.propagate = False
    BARRIER = threading.Barrier(2, timeout=30)

    def chatter(tag, lines, sync=True):
        for i in range(lines):
            print(f"{tag} line {i}")
            if sync and i % 10 == 0:
                BARRIER.wait()  # both tasks are mid-output at the same moments
            log.warning("%s logged %d", tag, i)
        return tag

    def speak_and_fail():
        print("to stdout")
        print("to stderr", file=sys.stderr)
        log.warning("a warning")
        sys.stdout.flush()
        subprocess.run(["echo", "from a child process"], check=True)
        os.write(1, b"straight to fd 1\\n")
        raise KeyError("acuracy")

    def flood(mib):
        line = "x" * 1023 + "\\n"
        for _ in range(mib * 1024):
            sys.stdout.write(line)
        print("the very end")
        return mib

    def print_then_wait(path):
        print("started", flush=True)
        while not os.path.exists(path):
            time.sleep(0.02)
        print("finished")
        return 1

    def quiet():
        return 7

    def leak(token):
        print(f"using token {token}")
        return 1
    """
)
MODULE = "podium_capture_flow"


@pytest.fixture
def chatty(tmp_path: Path) -> Registry:
    f = tmp_path / "chatty.py"
    f.write_text(CHATTY)
    r = Registry()
    r.load_file(f, MODULE)
    r.grant(Policy(programs=("sh", "echo")))
    return r


def call(fn: str, **kw: Any) -> Any:
    return make_call(f"{MODULE}:{fn}", task_id=kw.pop("task_id", fn), **kw)


def log_of(fut: Any) -> LogRecord | None:
    return (fut.podium_meta or {}).get("log")


def test_two_thread_tasks_printing_at_once_get_their_own_lines(chatty: Registry) -> None:
    ex = ThreadExecutor(registry=chatty)
    try:
        a = ex.submit(call("chatter", task_id="a", tag="A", lines=100))
        b = ex.submit(call("chatter", task_id="b", tag="B", lines=100))
        assert a.result(30) == "A" and b.result(30) == "B"
        for fut, me, other in ((a, "A", "B"), (b, "B", "A")):
            log = log_of(fut)
            assert log is not None and log.task_id == me.lower() and log.cut == 0
            lines = log.text.splitlines()
            printed = [ln for ln in lines if " line " in ln]
            logged = [ln for ln in lines if " logged " in ln]
            assert printed == [f"{me} line {i}" for i in range(100)]
            assert logged == [f"{me} logged {i}" for i in range(100)]
            assert not any(ln.startswith(other) for ln in lines)
            assert {m[1] for m in log.marks} == {"stdout", "stderr"}  # print and logging's stream
    finally:
        ex.shutdown()


@pytest.fixture
def no_echo() -> Any:
    set_echo(False)
    yield
    set_echo(True)


def test_output_of_the_engine_thread_is_not_captured(chatty: Any, capsys: Any, no_echo: None) -> None:
    ex = ThreadExecutor(registry=chatty)
    try:
        fut = ex.submit(call("chatter", task_id="a", tag="A", lines=1))
        ex.submit(call("chatter", task_id="b", tag="B", lines=1)).result(30)
        fut.result(30)
        print("the orchestrator speaks")
    finally:
        ex.shutdown()
    out = capsys.readouterr().out
    assert "the orchestrator speaks" in out and "A line 0" not in out


def test_echo_copies_captured_lines_prefixed_by_their_task(chatty: Any, capsys: Any) -> None:
    fut = InlineExecutor(registry=chatty).submit(call("chatter", task_id="a", tag="A", lines=2, sync=False))
    assert log_of(fut).text.startswith("A line 0\n")  # type: ignore[union-attr]
    out = capsys.readouterr().out
    assert out == "[a] A line 0\n[a] A line 1\n"


def test_a_quiet_task_carries_no_log(chatty: Registry) -> None:
    ex = ThreadExecutor(registry=chatty)
    try:
        fut = ex.submit(call("quiet"))
        assert fut.result(30) == 7 and log_of(fut) is None
    finally:
        ex.shutdown()


def test_a_process_task_log_holds_prints_logging_and_its_children(chatty: Registry) -> None:
    ex = ProcessExecutor(registry=chatty)
    try:
        fut = ex.submit(call("speak_and_fail", isolation="process"))
        exc = fut.exception(60)
        assert isinstance(exc, TaskFailedError) and exc.record.type == "KeyError"
        log = log_of(fut)
        assert log is not None
        for line in ("to stdout", "to stderr", "a warning", "from a child process", "straight to fd 1"):
            assert line in log.text
        assert exc.record.frame.endswith("in speak_and_fail") and "chatty.py:" in exc.record.frame
    finally:
        ex.shutdown()


def test_an_attempt_keeps_the_last_mebibyte_and_says_what_was_cut(chatty: Registry) -> None:
    ex = ProcessExecutor(registry=chatty)
    try:
        fut = ex.submit(call("flood", isolation="process", mib=3))
        assert fut.result(120) == 3
        log = log_of(fut)
        assert log is not None
        assert len(log.text.encode()) <= LOG_LIMIT and log.text.endswith("the very end\n")
        assert log.cut == 3 * 1024 * 1024 + len("the very end\n") - len(log.text.encode())
        assert log.shown().startswith(f"[... {log.cut} earlier bytes")
    finally:
        ex.shutdown()


def test_a_running_process_attempt_shows_its_output_live(chatty: Registry, tmp_path: Path) -> None:
    ex = ProcessExecutor(registry=chatty)
    go = tmp_path / "go"
    try:
        fut = ex.submit(call("print_then_wait", isolation="process", path=str(go)))
        seen: list[LogRecord] = []
        assert wait_until(lambda: bool(seen.extend(ex.live_logs()) or "started\n" in [r.text for r in seen]))
        assert {r.task_id for r in seen} == {"print_then_wait"}
        assert ex.live_logs() == []  # nothing new since
        go.write_text("")
        assert fut.result(60) == 1
        assert log_of(fut).text == "started\nfinished\n"  # type: ignore[union-attr]
        assert ex.live_logs() == []
    finally:
        ex.shutdown()


def test_shell_output_and_a_timeout_leave_a_log_in_a_thread(chatty: Registry, tmp_path: Path) -> None:
    ex = ThreadExecutor(registry=chatty)
    go = tmp_path / "never"
    try:
        sh = ex.submit(
            make_call(kind="shell", task_id="sh", config={"argv": ["sh", "-c", "echo out; echo err >&2"]})
        )
        assert sh.result(30)["returncode"] == 0
        assert log_of(sh).text == "out\nerr\n"  # type: ignore[union-attr]
        slow = ex.submit(call("print_then_wait", timeout=0.5, path=str(go)))
        exc = slow.exception(30)
        assert isinstance(exc, TaskFailedError) and exc.record.kind == "timeout"
        assert log_of(slow).text == "started\n"  # type: ignore[union-attr]
    finally:
        go.write_text("")
        ex.shutdown()


def test_handlers_set_up_before_the_executor_are_routed(chatty: Registry) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("FMT %(levelname)s %(message)s"))
    lg = logging.getLogger("chatty")
    lg.addHandler(handler)
    try:
        fut = InlineExecutor(registry=chatty).submit(call("chatter", tag="A", lines=1, sync=False))
        assert "FMT WARNING A logged 0" in log_of(fut).text  # type: ignore[union-attr]
    finally:
        lg.removeHandler(handler)


def test_inline_failure_carries_its_log_and_frame(chatty: Registry) -> None:
    fut = InlineExecutor(registry=chatty).submit(call("speak_and_fail"))
    exc = fut.exception(0)
    assert isinstance(exc, TaskFailedError) and "acuracy" in exc.record.message
    assert "to stdout\n" in log_of(fut).text  # type: ignore[union-attr]
    assert exc.record.frame.startswith(str(Path(exc.record.frame.split(":")[0]))) and "speak_and_fail" in (
        exc.record.frame
    )


def test_secrets_and_url_passwords_are_masked() -> None:
    log = AttemptLog("t", 1, secrets=["hunter22", "ab"])
    log.write("stdout", "token hunter22 and ab; db postgresql://u:pw123@host/db\n")
    text = log.record().text
    assert "hunter22" not in text and "pw123" not in text and " ab;" in text  # short values stay
    assert mask("x://a:b@c", ()) == "x://a:***@c"


def test_the_bound_cuts_a_chunk_in_the_middle() -> None:
    log = AttemptLog("t", 1, limit=10)
    log.write("stdout", "0123456789abcdef")
    rec = log.record()
    assert rec.text == "6789abcdef" and rec.cut == 6


def test_routers_do_not_capture_threads_without_a_task(capsys: Any) -> None:
    from podium.executors.capture import begin, end, install

    install()
    done = threading.Event()

    def other() -> None:
        print("from another thread")
        done.set()

    begin(make_call("x"))
    try:
        t = threading.Thread(target=other)
        t.start()
        t.join()
        print("mine")
    finally:
        log = end()
    assert log is not None and log.record().text == "mine\n"
    assert "from another thread" in capsys.readouterr().out


class _Display(io.StringIO):
    """Stands for a terminal display (rich's live view) wrapping sys.stdout/stderr."""


def test_handlers_on_the_real_stderr_are_routed_under_a_display(chatty: Registry, monkeypatch: Any) -> None:
    handler = logging.StreamHandler(sys.__stderr__)
    lg = logging.getLogger("chatty")
    lg.addHandler(handler)
    monkeypatch.setattr(sys, "stdout", _Display())
    monkeypatch.setattr(sys, "stderr", _Display())
    try:
        fut = InlineExecutor(registry=chatty).submit(call("chatter", tag="A", lines=1, sync=False))
        assert handler.stream is not sys.__stderr__
        assert "A logged 0\n" in log_of(fut).text  # type: ignore[union-attr]
    finally:
        lg.removeHandler(handler)


def test_a_secret_argument_is_masked_in_a_worker_process_log(chatty: Registry) -> None:
    from podium.secrets import Sensitive

    ex = ProcessExecutor(registry=chatty)
    try:  # the worker process never revealed it: the call's Sensitive argument names it
        fut = ex.submit(call("leak", isolation="process", token=Sensitive("tok-0123456789")))
        assert fut.result(60) == 1
        assert log_of(fut).text == "using token ***\n"  # type: ignore[union-attr]
    finally:
        ex.shutdown()
