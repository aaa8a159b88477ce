"""Every task kind (python, http, shell) succeeds and fails with the right ErrorRecord, in a
thread and in a worker process."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import pytest
from executor_helpers import make_call

from podium.errors import TaskFailedError
from podium.executors import ProcessExecutor, ThreadExecutor
from podium.policy import Policy
from podium.registry import Registry
from podium.types import Executor

#: What these tests' calls use: the programs below and the test HTTP server on loopback.
GRANTED = Policy(programs=("printenv", "pwd", "sh", "podium-no-such-command"), hosts=("127.0.0.1",))


@pytest.fixture
def registry(flow_file: Path) -> Registry:
    """The flow module of these tests, and the programs and hosts their calls use."""
    from executor_helpers import FLOW_MODULE

    r = Registry()
    r.load_file(flow_file, FLOW_MODULE)
    r.grant(GRANTED)
    return r


@pytest.fixture(params=["thread", "process"])
def executor(request: pytest.FixtureRequest, registry: Registry) -> Any:
    ex = (
        ThreadExecutor(registry=registry) if request.param == "thread" else ProcessExecutor(registry=registry)
    )
    assert isinstance(ex, Executor)
    yield ex
    ex.shutdown()


def failed(ex: Any, call: Any) -> TaskFailedError:
    fut = ex.submit(call)
    exc = fut.exception(timeout=60)
    assert isinstance(exc, TaskFailedError), f"expected a failure, got result {fut.result()!r}"
    return exc


# --------------------------------------------------------------------------- python


def test_python_task_returns_its_result(executor: Any) -> None:
    assert executor.submit(make_call("add", a=2, b=3)).result(timeout=60) == 5


def test_python_task_exception_is_a_user_error_record(executor: Any) -> None:
    rec = failed(executor, make_call("boom", x=7)).record
    assert (rec.kind, rec.type, rec.message) == ("user", "ValueError", "bad x=7")
    assert "raise ValueError" in rec.traceback and rec.retryable


def test_unknown_function_fails_without_retry(executor: Any) -> None:
    rec = failed(executor, make_call("no_such_function")).record
    assert rec.kind == "user" and not rec.retryable
    assert "no_such_function" in rec.message


def test_module_not_allowed_is_refused(executor: Any) -> None:
    rec = failed(executor, make_call("os:getcwd")).record
    assert not rec.retryable and "not allowed" in rec.message


def test_frozen_kwargs_reach_the_task(executor: Any) -> None:
    from podium.model.task import freeze

    out = executor.submit(make_call("echo", nested=freeze({"a": [1, 2]}))).result(timeout=60)
    assert dict(out["nested"]) == {"a": (1, 2)}


# --------------------------------------------------------------------------- http


def test_http_get_returns_parsed_json(executor: Any, http_url: str) -> None:
    call = make_call(kind="http", config={"url": f"{http_url}/json", "headers": {"X-Token": "t0k"}})
    assert executor.submit(call).result(timeout=60) == {"method": "GET", "body": None, "auth": "t0k"}


def test_http_post_sends_frozen_json_body(executor: Any, http_url: str) -> None:
    body = {"rows": [1, 2, {"k": "v"}], "name": "x"}
    call = make_call(kind="http", config={"method": "post", "url": f"{http_url}/json", "json": body})
    out = executor.submit(call).result(timeout=60)
    assert out["method"] == "POST" and out["body"] == body


def test_http_text_response_is_returned_as_text(executor: Any, http_url: str) -> None:
    call = make_call(kind="http", config={"url": f"{http_url}/text"})
    assert executor.submit(call).result(timeout=60) == "hello"


def test_http_5xx_is_retryable_and_names_method_url_status(executor: Any, http_url: str) -> None:
    url = f"{http_url}/status/503"
    rec = failed(executor, make_call(kind="http", config={"url": url})).record
    assert rec.kind == "user" and rec.retryable
    assert "GET" in rec.message and url in rec.message and "503" in rec.message


def test_http_4xx_is_not_retryable(executor: Any, http_url: str) -> None:
    url = f"{http_url}/status/404"
    rec = failed(executor, make_call(kind="http", config={"method": "POST", "url": url, "json": {}})).record
    assert not rec.retryable and "POST" in rec.message and url in rec.message and "404" in rec.message


def test_http_connection_refused_is_retryable(executor: Any) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    url = f"http://127.0.0.1:{port}/x"
    rec = failed(executor, make_call(kind="http", config={"url": url})).record
    assert rec.retryable and rec.type == "ConnectionError" and url in rec.message


def test_http_timeout_is_a_timeout(http_url: str, registry: Registry) -> None:
    from podium.executors.kinds import run_call

    with pytest.raises(TaskFailedError) as ei:
        run_call(make_call(kind="http", timeout=0.3, config={"url": f"{http_url}/slow"}), registry)
    assert ei.value.record.kind == "timeout" and "/slow" in ei.value.record.message


# --------------------------------------------------------------------------- shell


def test_shell_returns_output_with_env_and_cwd(executor: Any, tmp_path: Path) -> None:
    call = make_call(kind="shell", config={"argv": ["printenv", "PODIUM_X"], "env": {"PODIUM_X": "42"}})
    assert executor.submit(call).result(timeout=60) == {"returncode": 0, "stdout": "42\n", "stderr": ""}
    out = executor.submit(make_call(kind="shell", config={"argv": ["pwd"], "cwd": str(tmp_path)})).result(60)
    assert out["stdout"].strip() == str(tmp_path)


def test_shell_env_is_merged_over_the_environment(executor: Any) -> None:
    call = make_call(kind="shell", config={"argv": ["printenv", "PATH"], "env": {"OTHER": "1"}})
    assert executor.submit(call).result(timeout=60)["stdout"].strip() == os.environ["PATH"]


def test_shell_nonzero_exit_names_command_code_and_stderr(executor: Any) -> None:
    argv = ["sh", "-c", "echo first >&2; echo last words >&2; exit 3"]
    rec = failed(executor, make_call(kind="shell", config={"argv": argv})).record
    assert rec.kind == "user" and "'sh'" in rec.message and "code 3" in rec.message
    assert "last words" in rec.message


def test_shell_refuses_a_command_string(executor: Any) -> None:
    rec = failed(executor, make_call(kind="shell", config={"argv": "echo hi; rm -rf /"})).record
    assert not rec.retryable and "argv" in rec.message and "list" in rec.message


def test_shell_missing_command_is_not_retryable(executor: Any) -> None:
    rec = failed(executor, make_call(kind="shell", config={"argv": ["podium-no-such-command"]})).record
    assert not rec.retryable and "podium-no-such-command" in rec.message
