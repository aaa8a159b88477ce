"""Secrets: a spec names them, the user decides which can be read, their values are read only
when a call is built and never written to the event log, results, errors, Gantt pages or
what ``podium show`` prints.

Attacks: a spec reading the orchestrator's environment or files (``${env.AWS_SECRET_...}``,
``{file: ~/.ssh/id_rsa}``) to send them out; a task echoing a secret into its output; an
error message carrying a password in a URL.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
from security_helpers import Server, cli, reply, write

import podium
from podium.errors import SpecError, TaskFailedError
from podium.executors.kinds import run_call
from podium.load import load_workflow
from podium.model import Resources, TaskCall, TaskSpec
from podium.policy import Policy
from podium.registry import Registry
from podium.runtime.inputs import InputError, resolve
from podium.secrets import Secret, Sensitive, redact, remember
from podium.store import open_store

VALUE = "hunter2-sup3r-s3cret"


def everything_recorded(db: Path, run_id: str, gantt: Path | None = None) -> str:
    """The event log, the results and the run record of a run, as text."""
    store = open_store(str(db))
    try:
        events = store.events(run_id)
        results = store.results(run_id)
        record = store.get_run(run_id)
    finally:
        store.close()
    text = repr(events) + repr(record)
    text += "".join(repr(r) + r.data.decode("latin-1") for r in results.values())
    if gantt is not None:
        text += gantt.read_text()
    return text


def test_secret_values_are_never_recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEC_TOKEN", VALUE)
    write(tmp_path / "podium.toml", 'allow_programs = ["sh"]\nallow_env = ["SEC_*"]\n')
    write(
        tmp_path / "s.yaml",
        """
        name: leaky
        secrets: {token: {env: SEC_TOKEN}}
        tasks:
          echo:
            argv: [sh, -c, 'echo "token=$T and ${secrets.token}"; echo "$T" >&2']
            env: {T: "${secrets.token}"}
          fail:
            argv: [sh, -c, 'echo "bad password $1" >&2; exit 3', x, "pw:${secrets.token}"]
            after: [echo]
        """.replace("\n        ", "\n"),
    )
    db, gantt = tmp_path / "p.db", tmp_path / "g.html"
    code, out, err = cli(
        ["run", "s.yaml", "--store", str(db), "--run-id", "r1", "--no-progress", "--gantt", str(gantt)],
        tmp_path,
    )
    assert code == 1, err  # the second task fails on purpose
    recorded = everything_recorded(db, "r1", gantt)
    assert "***" in recorded and "bad password" in recorded  # output and error kept, value masked
    code, shown, _ = cli(["show", "r1", "--store", str(db), "--events"], tmp_path)
    assert code == 0
    for text in (recorded, out, err, shown):
        assert VALUE not in text


def test_a_spec_reads_only_the_variables_the_user_allowed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", VALUE)
    for text in (
        "tasks:\n  t: {argv: [echo, '${env.AWS_SECRET_ACCESS_KEY}']}\n",
        "secrets: {k: {env: AWS_SECRET_ACCESS_KEY}}\ntasks:\n  t: {argv: [echo, '${secrets.k}']}\n",
    ):
        spec = write(tmp_path / "s.yaml", text)
        with pytest.raises(SpecError) as e:
            load_workflow(spec, cwd=tmp_path, allow_programs=["echo"], registry=Registry())
        assert "environment variable 'AWS_SECRET_ACCESS_KEY' is not allowed" in str(e.value)
        assert "--allow-env AWS_SECRET_ACCESS_KEY" in str(e.value)
        wf = load_workflow(
            spec, cwd=tmp_path, allow_programs=["echo"], allow_env=["AWS_*"], registry=Registry()
        ).workflow
        argv1 = wf.tasks["t"].config["argv"][1]
        assert isinstance(argv1, Secret) and argv1.env == "AWS_SECRET_ACCESS_KEY"
        assert VALUE not in repr(wf)  # the workflow holds the reference, not the value


def test_file_secrets_come_only_from_secrets_dir(tmp_path: Path) -> None:
    write(tmp_path / "keys" / "api", VALUE + "\n")
    write(tmp_path / "private", "not for specs")
    (tmp_path / "keys" / "escape").symlink_to(tmp_path / "private")
    spec = "secrets: {k: {file: %s}}\ntasks:\n  t: {argv: [echo, '${secrets.k}']}\n"
    for path, why in (
        ("api", "read only from secrets_dir"),
        ("../private", "not inside secrets_dir"),
        ("/etc/passwd", "not inside secrets_dir"),
        ("escape", "not inside secrets_dir"),
    ):
        if why != "read only from secrets_dir":
            write(tmp_path / "podium.toml", 'secrets_dir = "keys"\n')
        with pytest.raises(SpecError, match=why):
            load_workflow(write(tmp_path / "s.yaml", spec % path), cwd=tmp_path, allow_programs=["echo"])
    wf = load_workflow(
        write(tmp_path / "s.yaml", spec % "api"), cwd=tmp_path, allow_programs=["echo"]
    ).workflow
    got = resolve(wf.tasks["t"].config["argv"][1], {}, {})
    assert got == VALUE and isinstance(got, Sensitive) and repr(got) == "'***'"


def test_a_secret_file_swapped_for_a_link_after_validation_is_not_read(tmp_path: Path) -> None:
    (tmp_path / "keys").mkdir()
    write(tmp_path / "private", VALUE)
    (tmp_path / "keys" / "k").symlink_to(tmp_path / "private")
    secret = Secret("k", file=str(tmp_path / "keys" / "k"), root=str(tmp_path / "keys"))
    with pytest.raises(InputError, match="not inside"):
        resolve(secret, {}, {})


def test_values_are_read_when_the_call_is_built(monkeypatch: pytest.MonkeyPatch) -> None:
    s = Secret("token", env="PODIUM_TEST_LATE")
    with pytest.raises(InputError, match="'PODIUM_TEST_LATE' is not set"):
        resolve(s, {}, {})
    monkeypatch.setenv("PODIUM_TEST_LATE", VALUE)
    got = resolve(podium.Template(("Bearer ", s)), {}, {})
    assert got == f"Bearer {VALUE}" and isinstance(got, Sensitive) and got.secrets == (VALUE,)
    assert pickle.loads(pickle.dumps(got)).secrets == (VALUE,)  # travels to worker processes


def test_python_flows_name_secrets_with_podium_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLOW_TOKEN", VALUE)
    flow = write(
        tmp_path / "secret_flow.py",
        """
import podium

@podium.task
def use(token: str, header: str) -> str:
    assert repr(token) == "'***'"
    return token[:3] + "|" + header[:8]

@podium.flow
def main():
    use(token=podium.secret("FLOW_TOKEN"), header=podium.template("Bearer {}", podium.secret("FLOW_TOKEN")))
""",
    )
    code, out, err = cli(["run", str(flow), "--store", "memory:", "--no-progress"], tmp_path)
    assert code == 0, err
    assert VALUE not in out + err


def test_shell_output_is_masked_in_a_worker_process_too(monkeypatch: pytest.MonkeyPatch) -> None:
    """The value travels in the call as a ``Sensitive`` string: whatever process runs the call
    knows what to mask, even one that never read the secret itself."""
    from podium.executors import ProcessExecutor

    spec = TaskSpec(name="t", kind="shell", config={"argv": ["echo"]})
    call = TaskCall("r", "t", 1, spec, {}, {"argv": ["echo", Sensitive("tok-" + VALUE)]}, Resources())
    reg = Registry()
    reg.grant(Policy(programs=("echo",)))
    ex = ProcessExecutor(registry=reg)
    try:
        out = ex.submit(call).result(timeout=60)
    finally:
        ex.shutdown()
    assert out["stdout"] == "***\n"


def test_http_errors_do_not_carry_secrets() -> None:
    server = Server(lambda h: reply(h, 500, b"upstream said: " + VALUE.encode()))
    try:
        url = Sensitive(f"{server.url}/x?token={VALUE}")
        spec = TaskSpec(name="t", kind="http", config={"url": "x"})
        reg = Registry()
        reg.grant(Policy(hosts=("127.0.0.1",)))
        with pytest.raises(TaskFailedError) as e:
            run_call(TaskCall("r", "t", 1, spec, {}, {"url": url}, Resources()), reg)
        assert "HTTP 500" in e.value.record.message and VALUE not in e.value.record.message
    finally:
        server.close()


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("postgresql://u:pw@db:5432/x", "postgresql://u:***@db:5432/x"),
        ("see https://alice:p%40ss@example.com/path", "see https://alice:***@example.com/path"),
        ("redis://:only-password@cache:6379", "redis://:***@cache:6379"),
        ("GET http://h/x?a=1&token=abc123&b=2", "GET http://h/x?a=1&token=***&b=2"),
        ("no secrets here: http://example.com/a:b", "no secrets here: http://example.com/a:b"),
        (f"value {VALUE} twice {VALUE}", "value *** twice ***"),
        ("Authorization: Bearer eyJhbGciOi.x-y_z", "Authorization: Bearer ***"),
        ("bearer of bad news", "bearer of bad news"),
        ("abc", "abc"),  # too short to be masked
    ],
)
def test_redact(text: str, want: str) -> None:
    remember(VALUE)
    assert redact(text, ["abc"]) == want


def test_redact_is_idempotent_and_masks_longest_first() -> None:
    remember("sekret-long-value")
    remember("sekret")
    once = redact("x sekret-long-value y sekret")
    assert once == "x *** y ***" and redact(once) == once


def test_a_python_task_error_does_not_record_the_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLOW_DB_PASSWORD", VALUE)
    flow = write(
        tmp_path / "failing_flow.py",
        """
import podium

@podium.task
def connect(password: str) -> None:
    raise ConnectionError(f"cannot log in with {password}")

@podium.flow
def main():
    connect(password=podium.secret("FLOW_DB_PASSWORD"))
""",
    )
    db = tmp_path / "p.db"
    code, out, err = cli(["run", str(flow), "--store", str(db), "--run-id", "r1", "--no-progress"], tmp_path)
    assert code == 1 and VALUE not in out + err  # the CLI masks what it prints either way
    assert VALUE not in everything_recorded(db, "r1")


def test_redact_record_masks_message_traceback_and_details() -> None:
    from podium.errors import ErrorRecord
    from podium.secrets import redact_record

    remember(VALUE)
    rec = ErrorRecord("E", f"login {VALUE} failed", f"Traceback: {VALUE}", extra={"url": "http://u:pw@h/"})
    got = redact_record(rec)
    assert VALUE not in repr(got) and got.extra["url"] == "http://u:***@h/"
    assert (got.type, got.retryable, got.kind) == (rec.type, rec.retryable, rec.kind)
    clean = ErrorRecord("E", "nothing secret")
    assert redact_record(clean) is clean  # no copy when there is nothing to mask
