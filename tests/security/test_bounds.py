"""Inputs that are well-formed but unbounded: each is refused at validation with a clear message
(exit 2), or capped at run time and says so, instead of exhausting memory, overflowing a clock
or reaching the user as an "internal error".
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from security_helpers import cli, write

from podium.errors import SpecError, UsageError
from podium.executors.kinds import run_call
from podium.load import load_config, load_workflow, parse_params
from podium.load.cluster import parse_cluster
from podium.load.stg import load_stg
from podium.load.wfcommons import parse_wfcommons
from podium.model import Resources, TaskCall, TaskSpec
from podium.policy import DEFAULT_MAX_FANOUT, Policy
from podium.registry import Registry


# -- captured output ------------------------------------------------------------------------------
def test_shell_output_keeps_its_head_and_tail_and_says_it_was_cut() -> None:
    script = (
        "import sys; sys.stdout.write('A' * 1000 + 'B' * 3_000_000 + 'C' * 1000); sys.stderr.write('e' * 10)"
    )
    spec = TaskSpec(name="t", kind="shell", config={"argv": ["python3", "-c", script]})
    reg = Registry()
    reg.grant(Policy(programs=("python3",), max_output_bytes=64 * 1024))
    out = run_call(TaskCall("r", "t", 1, spec, {}, spec.config, Resources()), reg)
    text = out["stdout"]
    assert text.startswith("A" * 1000) and text.endswith("C" * 1000)
    assert len(text) < 64 * 1024 + 300
    assert (
        "podium cut 2936464 bytes here: the output was 3002000 bytes, over max_output_bytes (65536)" in text
    )
    assert out["stderr"] == "e" * 10  # small output is untouched


def test_the_output_cap_is_a_setting(tmp_path: Path) -> None:
    write(tmp_path / "podium.toml", 'max_output_bytes = "2MiB"\nmax_response_bytes = "1GiB"\n')
    policy = load_config(tmp_path).policy
    assert (policy.max_output_bytes, policy.max_response_bytes) == (2 * 1024**2, 1024**3)
    assert Policy().max_output_bytes == 1024**2


# -- fan-out, cluster size ------------------------------------------------------------------------
def test_max_fanout_is_a_validated_setting(tmp_path: Path) -> None:
    assert Policy().max_fanout == DEFAULT_MAX_FANOUT == 1_000_000
    write(tmp_path / "podium.toml", "max_fanout = 5000\n")
    assert load_config(tmp_path).policy.max_fanout == 5000
    for bad in ("0", "-1", '"many"', "1.5", "true", "10000000000"):
        write(tmp_path / "podium.toml", f"max_fanout = {bad}\n")
        with pytest.raises(SpecError, match="max_fanout: expected a whole number from 1"):
            load_config(tmp_path)
    write(tmp_path / "podium.toml", "max_fanout = 7\n")
    write(tmp_path / "s.yaml", "tasks:\n  t: {argv: ['true']}\n")
    reg = Registry()
    load_workflow(tmp_path / "s.yaml", cwd=tmp_path, allow_programs=["true"], registry=reg)
    assert reg.policy.max_fanout == 7  # what the run loop reads


FAN_OUT = """
import pathlib
import podium

@podium.task
def make(n: int) -> list[int]:
    return list(range(n))

@podium.task
def work(x: int, mark: str) -> int:
    if x == 0:
        pathlib.Path(mark).touch()  # the fan-out is running
    return x + 1

@podium.flow
def main(n: int, mark: str = "started"):
    work(x=podium.each(make(n=n)), mark=mark)
"""


def _podium(*args: str, cwd: Path) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "podium", *args]
    return subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _status(db: Path, run_id: str) -> str:
    from podium.store import open_store

    store = open_store(str(db))
    try:
        return store.get_run(run_id).status
    finally:
        store.close()


def test_a_map_past_max_fanout_fails_saying_so_and_runs_no_item(tmp_path: Path) -> None:
    write(tmp_path / "podium.toml", "max_fanout = 7\n")
    write(tmp_path / "fan.py", FAN_OUT)
    args = ["run", "fan.py", "-p", "n=8", "--store", "s.db", "--run-id", "r", "--no-progress"]
    out, err = _podium(*args, cwd=tmp_path).communicate(timeout=120)
    assert "map over 'x' has 8 items, more than max_fanout (7)" in out + err
    assert not (tmp_path / "started").exists()  # no item ran
    assert _status(tmp_path / "s.db", "r") == "failed"
    ok = _podium(*args[:3], "n=7", "--store", "s.db", "--run-id", "r2", "--no-progress", cwd=tmp_path)
    ok.communicate(timeout=120)
    assert ok.returncode == 0 and (tmp_path / "started").exists()  # at the limit: runs


def test_sigterm_stops_a_million_item_fan_out_promptly_and_records_it_cancelled(tmp_path: Path) -> None:
    """A real process, a real signal, in the middle of queueing a million items."""
    write(tmp_path / "fan.py", FAN_OUT)
    proc = _podium(
        "run",
        "fan.py",
        "-p",
        "n=1000000",
        "--store",
        "s.db",
        "--run-id",
        "big",
        "--no-progress",
        cwd=tmp_path,
    )
    deadline = time.monotonic() + 120
    while not (tmp_path / "started").exists():
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.02)
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    took = time.monotonic() - sent
    assert proc.returncode == 130, err
    assert "run big cancelled; continue it with: podium resume big" in err
    # about a second on a quiet machine (it took 45 s when every item was queued and cancelled
    # one by one); the margin is for a loaded CI machine
    assert took < 5.0, f"the run took {took:.1f} s to stop"
    assert _status(tmp_path / "s.db", "big") == "cancelled"


def test_cluster_count_is_bounded() -> None:
    doc = {"nodes": [{"name": "n", "capacity": {"cpu": 1}, "count": 10**9}]}
    with pytest.raises(SpecError, match=r"nodes\[0\]\.count: count must be an integer from 1 to 10000"):
        parse_cluster(doc)
    many = {"nodes": [{"name": f"n{i}", "capacity": {"cpu": 1}, "count": 6000} for i in range(2)]}
    with pytest.raises(SpecError, match="12000 nodes, over the limit of 10000"):
        parse_cluster(many)


# -- numbers that overflow later ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("timeout: 1e300", "timeout: at most 365 days"),
        ("expected_duration: 1e300", "expected_duration: at most 365 days"),
        ("timeout: 99999999d", "timeout: at most 365 days"),
        ("retries: {attempts: 3, delay: 1e300}", "delay: at most 365 days"),
        ("retries: {attempts: 400, backoff: 10}", "backoff 10 to the power of 398 overflows"),
        ("retries: {attempts: 100000}", "attempts: at most 1000"),
    ],
)
def test_durations_and_retries_that_would_overflow_are_refused(
    tmp_path: Path, setting: str, message: str
) -> None:
    spec = write(tmp_path / "s.yaml", f"tasks:\n  t:\n    argv: ['true']\n    {setting}\n")
    with pytest.raises(SpecError, match=message):
        load_workflow(spec, cwd=tmp_path, allow_programs=["true"], registry=Registry())


def test_objective_deadline_is_bounded(tmp_path: Path) -> None:
    spec = write(tmp_path / "s.yaml", "objective: {deadline: 1e300}\ntasks:\n  t: {argv: ['true']}\n")
    with pytest.raises(SpecError, match="deadline: at most 365 days"):
        load_workflow(spec, cwd=tmp_path, allow_programs=["true"], registry=Registry())


@pytest.mark.parametrize(
    "args",
    [
        ["--alpha", "nan"],
        ["--beta", "inf"],
        ["--alpha", "-inf"],
        ["--budget", "nan"],
        ["--time-limit", "nan"],
        ["--time-limit", "1e300"],
        ["--deadline", "1e300"],
    ],
)
def test_plan_refuses_numbers_that_are_not_finite(tmp_path: Path, args: list[str]) -> None:
    write(tmp_path / "g.stg", "1\n0 0 0\n1 5 1 0\n2 0 1 1\n")
    code, out, err = cli(["plan", "g.stg", *args], tmp_path)
    assert code == 2 and err.startswith("error: ") and out == "", err
    assert "internal error" not in err


@pytest.mark.parametrize("args", [["--plan-time", "inf"], ["--oom-growth", "nan"], ["--oom-growth", "inf"]])
def test_run_refuses_numbers_that_are_not_finite(tmp_path: Path, args: list[str]) -> None:
    write(tmp_path / "s.yaml", "tasks:\n  t: {argv: ['true']}\n")
    code, _out, err = cli(["run", "s.yaml", "--store", "memory:", "--allow-program", "true", *args], tmp_path)
    assert code == 2 and "finite" in err, err


# -- other files and arguments --------------------------------------------------------------------
def test_a_binary_stg_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.stg"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(SpecError, match="not UTF-8 text"):
        load_stg(path)
    code, _out, err = cli(["plan", "bad.stg"], tmp_path)
    assert code == 2 and "internal error" not in err


def test_wfcommons_numbers_that_overflow_are_clear_errors() -> None:
    doc = {"workflow": {"tasks": [{"id": "a", "runtime": 1, "memory": 1e308}]}}
    with pytest.raises(SpecError, match="memory"):
        parse_wfcommons(doc)


def test_deeply_nested_param_json_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="nested too deeply"):
        parse_params(["x=" + "[" * 100_000 + "]" * 100_000])
    assert parse_params(["x=[[1]]"]) == {"x": [[1]]}
