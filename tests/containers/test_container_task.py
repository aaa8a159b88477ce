"""One container attempt against a real Podman: the result contract, inputs, limits, timeouts,
network, output capture, secrets and orphans."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from container_helpers import IMAGE, container_call, leftovers, sh

from podium.errors import OOM, TIMEOUT, USER_ERROR, WORKER_LOST, TaskFailedError
from podium.executors import container
from podium.executors import container_files as files
from podium.executors.container_runtime import (
    LABEL_OWNER,
    LABEL_RUN,
    ContainerSpec,
    Runtime,
    owner,
)
from podium.executors.thread import ThreadExecutor
from podium.model.task import Grant
from podium.registry import Registry

pytestmark = pytest.mark.usefixtures("podman")

MiB = 1024**2


def fail(call: object) -> TaskFailedError:
    with pytest.raises(TaskFailedError) as info:
        container.run(call)  # type: ignore[arg-type]
    return info.value


# -- the result contract ------------------------------------------------------------------------
def test_result_is_the_json_the_container_writes_from_its_read_only_inputs(podman: Runtime) -> None:
    script = (
        "if echo x > /podium/in/data.json 2>/dev/null; then w=yes; else w=no; fi; "
        'printf \'{"data": %s, "n": %s, "writable": "%s", "env": "%s"}\' '
        '"$(cat $PODIUM_IN/data.json)" "$(cat /podium/in/n.json)" "$w" "$PODIUM_TASK_ID" '
        "> $PODIUM_OUT/result.json"
    )
    call = container_call(sh(script), inputs={"data": {"a": [1, 2], "b": "x"}, "n": 3})
    out = container.run(call)
    assert out.result == {"data": {"a": [1, 2], "b": "x"}, "n": 3, "writable": "no", "env": "c"}
    assert leftovers(podman, call.run_id) == []


def test_no_result_file_means_none_and_output_is_kept(podman: Runtime) -> None:
    out = container.run(container_call(sh("echo out; echo err >&2")))
    assert out.result is None
    assert (out.stdout, out.stderr) == ("out\n", "err\n")


def test_invalid_json_fails_clearly_and_is_not_retried(podman: Runtime) -> None:
    err = fail(container_call(sh("echo '{not json' > /podium/out/result.json")))
    assert err.record.type == "ResultError" and err.record.kind == USER_ERROR
    assert not err.record.retryable
    assert "/podium/out/result.json is not valid JSON" in err.record.message
    assert "\n" not in err.record.message


def test_a_result_linked_to_a_host_file_is_refused(podman: Runtime, tmp_path: Path) -> None:
    """An image cannot make Podium read a host file by planting a link as its result."""
    secret = tmp_path / "host-secret.json"
    secret.write_text('{"host": "secret"}')
    err = fail(container_call(sh(f"ln -s {secret} /podium/out/result.json")))
    assert err.record.type == "ResultError"
    assert "secret" not in json.dumps(err.record.to_dict()).replace(str(secret), "")


def test_non_zero_exit_fails_with_code_and_output_tails(podman: Runtime) -> None:
    err = fail(container_call(sh("echo progress; echo 'bad thing happened' >&2; exit 3")))
    rec = err.record
    assert (rec.kind, rec.type, rec.retryable) == (USER_ERROR, "ContainerFailed", True)
    assert rec.extra["exit_code"] == 3
    assert "exited with code 3" in rec.message and "bad thing happened" in rec.message
    assert rec.extra["stdout"] == "progress\n" and rec.extra["stderr"] == "bad thing happened\n"


def test_output_keeps_only_the_last_mib_and_says_it_was_cut(podman: Runtime) -> None:
    out = container.run(container_call(sh("head -c 3000000 /dev/zero | tr '\\0' x; echo; echo END")))
    head, _, body = out.stdout.partition("\n")
    assert head.startswith("[") and "earlier bytes of output cut" in head
    assert int(head[1:].split()[0]) == 3_000_005 - container.LOG_TAIL_BYTES
    assert len(body.encode()) == container.LOG_TAIL_BYTES and body.endswith("END\n")


# -- secrets --------------------------------------------------------------------------------------
def test_env_values_reach_the_container_but_never_messages_nor_the_command_line(podman: Runtime) -> None:
    token = "s3cr3t-Value-123"
    call = container_call(
        sh('echo "token=$TOKEN"; echo "auth failed for $TOKEN" >&2; exit 1'),
        env={"TOKEN": token, "MODE": "a b=c"},
    )
    err = fail(call)
    dumped = json.dumps(err.record.to_dict())
    assert token not in dumped and token not in str(err)
    assert err.record.extra["stdout"] == "token=***\n"
    assert "auth failed for ***" in err.record.message
    spec = ContainerSpec(image=IMAGE, name="x", env_file="/tmp/env")
    assert token not in " ".join(podman.run_argv(spec))
    ok = container.run(container_call(sh('printf "\\"%s\\"" "$MODE" > /podium/out/result.json'),
                                      env={"MODE": "a b=c"}))  # fmt: skip
    assert ok.result == "a b=c"


def test_gpus_and_thread_counts_reach_the_container(podman: Runtime) -> None:
    """The node's devices for the container runtime's GPU hook, numbered from 0 inside; thread
    counts from the cpu request unless the task's env sets them."""
    script = 'printf \'"%s %s %s %s %s"\' "$NVIDIA_VISIBLE_DEVICES" "$CUDA_VISIBLE_DEVICES" '
    script += '"$PODIUM_GPUS" "$OMP_NUM_THREADS" "$MKL_NUM_THREADS" > /podium/out/result.json'
    call = container_call(sh(script), cpu=2, env={"MKL_NUM_THREADS": "5"})
    call = call._replace(grants=(Grant("local", {"cpu": 2.0, "gpu": 2.0}, (2, 3)),))
    assert container.run(call).result == "2,3 0,1 2,3 2 5"


def test_a_container_attempt_log_holds_its_output_with_secrets_masked() -> None:
    token = "s3cr3t-Value-123"
    ex = ThreadExecutor(registry=Registry())
    try:
        fut = ex.submit(container_call(sh('echo "token=$TOKEN"; echo "to stderr" >&2'), env={"TOKEN": token}))
        fut.result(120)
        log = fut.podium_meta["log"]  # type: ignore[attr-defined]
    finally:
        ex.shutdown()
    assert log.text == "token=***\nto stderr\n" and token not in repr(log)


# -- limits ---------------------------------------------------------------------------------------
def _cgroup_script() -> str:
    """Memory limit, cpu quota and period as seen inside the container (cgroup v1 or v2)."""
    return (
        "if [ -f /sys/fs/cgroup/memory.max ]; then m=$(cat /sys/fs/cgroup/memory.max); "
        "set -- $(cat /sys/fs/cgroup/cpu.max); q=$1; p=$2; else "
        "m=$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes); "
        "q=$(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us); p=$(cat /sys/fs/cgroup/cpu/cpu.cfs_period_us); fi; "
        'printf \'{"memory": %s, "quota": %s, "period": %s}\' "$m" "$q" "$p" > /podium/out/result.json'
    )


def test_memory_and_cpus_are_the_containers_limits(podman: Runtime) -> None:
    out = container.run(container_call(sh(_cgroup_script()), cpu=0.5, memory="96MiB"))
    assert out.result["memory"] == 96 * MiB
    assert out.result["quota"] / out.result["period"] == pytest.approx(0.5)


def test_a_memory_hog_is_killed_and_fails_as_oom(podman: Runtime) -> None:
    hog = 'x=$(head -c 150000000 /dev/zero | tr "\\0" a); echo survived'
    err = fail(container_call(sh(hog), memory="32MiB"))
    assert (err.record.kind, err.record.type, err.record.retryable) == (OOM, "OutOfMemory", True)
    assert "32MiB" in err.record.message and "survived" not in err.record.extra["stdout"]


def test_a_sigkill_that_is_not_the_memory_limit_is_not_oom(podman: Runtime) -> None:
    err = fail(container_call(sh("sleep 30 & kill -9 $!; wait $!"), memory="32MiB"))
    assert (err.record.kind, err.record.type, err.record.extra["exit_code"]) == (
        USER_ERROR,
        "ContainerFailed",
        137,
    )


# -- timeouts and kills ---------------------------------------------------------------------------
def test_timeout_kills_and_removes_the_container(podman: Runtime) -> None:
    call = container_call(sh("echo started; sleep 60"), timeout=1.5)
    t0 = time.monotonic()
    err = fail(call)
    assert time.monotonic() - t0 < 30  # a bound against hangs, not a timing assertion
    assert (err.record.kind, err.record.type) == (TIMEOUT, "TimeoutError")
    assert "timed out after 1.5s (container removed)" in err.record.message
    assert err.record.extra["stdout"] == "started\n"
    assert leftovers(podman, call.run_id) == []


def test_killing_the_call_removes_its_container(podman: Runtime) -> None:
    """The thread executor's kill stops the runtime client; the call then removes the container."""
    ex = ThreadExecutor(registry=Registry())
    call = container_call(sh("sleep 60"))
    try:
        fut = ex.submit(call)
        assert _wait(lambda: bool(leftovers(podman, call.run_id)), 30)
        ex.kill(fut)
        assert fut.exception(5) is not None
        assert _wait(lambda: not leftovers(podman, call.run_id), 30)
    finally:
        ex.shutdown(wait=False)


def test_a_killed_client_fails_the_attempt_as_lost(podman: Runtime) -> None:
    procs: list[subprocess.Popen[bytes]] = []

    def track(p: subprocess.Popen[bytes]) -> None:
        procs.append(p)
        time.sleep(1.0)
        p.kill()

    call = container_call(sh("sleep 60"))
    with pytest.raises(TaskFailedError) as info:
        container.run(call, on_process=track)
    assert info.value.record.kind == WORKER_LOST
    assert leftovers(podman, call.run_id) == []


# -- network --------------------------------------------------------------------------------------
def test_network_is_off_by_default_and_host_on_request(podman: Runtime) -> None:
    script = "printf '\"%s\"' \"$(ls /sys/class/net | tr '\\n' ' ')\" > /podium/out/result.json"
    off = container.run(container_call(sh(script))).result.split()
    host = container.run(container_call(sh(script), network="host")).result.split()
    assert off == ["lo"]
    assert sorted(host) == sorted(os.listdir("/sys/class/net")) and len(host) > 1


# -- clear errors ---------------------------------------------------------------------------------
def test_a_missing_image_gives_one_clear_line(podman: Runtime) -> None:
    err = fail(container_call(["true"], image="localhost/podium-no-such-image:1"))
    msg = err.record.message
    assert err.record.type == "ContainerStartError" and "\n" not in msg
    assert "localhost/podium-no-such-image:1" in msg and "could not start it" in msg


def test_a_missing_command_gives_one_clear_line(podman: Runtime) -> None:
    err = fail(container_call(["/no/such/program"]))
    assert err.record.type == "ContainerStartError" and not err.record.retryable
    assert "/no/such/program" in err.record.message and "\n" not in err.record.message


def test_argv_that_looks_like_runtime_options_is_the_containers_command(podman: Runtime) -> None:
    """Items after the image go to the container: ``--privileged`` or a host mount cannot be
    smuggled in through argv (nor through the image, which the loader checks)."""
    err = fail(container_call(["--privileged", "--volume=/:/host"]))
    assert err.record.type == "ContainerStartError" and "--privileged" in err.record.message
    argv = podman.run_argv(ContainerSpec(IMAGE, "x", ("--privileged",)))
    assert argv.index(IMAGE) == len(argv) - 2 and argv.count("--privileged") == 1


def test_workdir_and_argv_from_a_result_are_checked_again(podman: Runtime) -> None:
    ok = container.run(
        container_call(sh('printf \'"%s"\' "$(pwd)" > /podium/out/result.json'), workdir="/tmp")
    )
    assert ok.result == "/tmp"
    err = fail(container_call(["true"], workdir="relative/dir"))
    assert err.record.type == "SpecError" and "workdir must be an absolute path" in err.record.message


# -- orphans ----------------------------------------------------------------------------------------
def test_cleanup_removes_containers_of_dead_owners_only(podman: Runtime) -> None:
    run_id = "orphans-1"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = owner().partition(":")[0]
    names = {"podium-dead": f"{host}:{dead.pid}:1.00", "podium-live": owner()}
    for name, who in names.items():
        spec = ContainerSpec(IMAGE, name, ("sleep", "60"), labels={LABEL_RUN: run_id, LABEL_OWNER: who})
        started = subprocess.run(podman.run_argv(spec, detach=True), capture_output=True, text=True)
        assert started.returncode == 0, started.stderr
    try:
        assert container.cleanup(run_id) == ["podium-dead"]
        left = [c["Name"].lstrip("/") for c in podman.inspect(leftovers(podman, run_id))]
        assert left == ["podium-live"]
    finally:
        podman.remove(names)
    with files.attempt_folder() as live:  # attempt folders: a dead owner's go, a live one's stay
        dead_folder = Path(live).parents[1] / names["podium-dead"].replace(":", "+")
        dead_folder.mkdir()
        assert dead_folder.name in files.remove_dead()
        assert Path(live).is_dir() and not dead_folder.exists()


def test_a_detached_container_is_found_inspected_stopped_and_removed_by_label(podman: Runtime) -> None:
    """What a long-running service needs from the runtime module."""
    labels = {LABEL_RUN: "svc-1", "podium.service": "model"}
    spec = ContainerSpec(IMAGE, "podium-svc-test", ("sleep", "300"), labels=labels, cpus=0.5, memory=32 * MiB)
    started = subprocess.run(podman.run_argv(spec, detach=True), capture_output=True, text=True)
    assert started.returncode == 0, started.stderr
    try:
        ids = podman.find(labels)
        assert len(ids) == 1 and ids[0].startswith(started.stdout.strip()[:12])
        state = podman.inspect(ids)[0]["State"]
        assert state["Status"] == "running"
        podman.stop("podium-svc-test", grace=1)
        assert podman.inspect(ids)[0]["State"]["Status"] == "exited"
        podman.remove(podman.find(labels))
        assert podman.find(labels) == [] and podman.inspect(ids) == []
    finally:
        podman.remove(["podium-svc-test"])


def _wait(predicate: object, limit: float) -> bool:
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.1)
    return bool(predicate())  # type: ignore[operator]
