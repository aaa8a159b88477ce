"""Container tasks: one attempt runs one container; inputs go in as files, a JSON result comes out.

The contract (docs/services.md):
- Each input ``NAME`` of the task is written as a JSON document to ``/podium/in/NAME.json``,
  mounted read-only. ``/podium/out`` is an empty writable folder.
- The container's result is the JSON document it leaves in ``/podium/out/result.json``. Exit
  code 0 and no such file: the result is None (a container run for its side effects). A file
  that is not valid JSON, not a regular file or over 64 MiB fails the attempt (type
  ``ResultError``, not retried): a result is never guessed. (``container_files``: the files.)
- Exit code other than 0: the attempt fails (kind ``user``, retryable, like a shell command),
  or with kind ``oom`` when the memory limit killed a process in it (the runtime says so, or
  Podman's conmon left its ``oom`` marker): the engine then retries with more memory. Past
  ``timeout`` the container is removed and the attempt fails with kind ``timeout``.
- The environment holds the task's ``env`` plus ``PODIUM_RUN_ID``, ``PODIUM_TASK_ID``,
  ``PODIUM_ATTEMPT``, ``PODIUM_IN`` and ``PODIUM_OUT``, and unless the task's ``env`` sets them
  the thread counts of its cpu request (``OMP_NUM_THREADS`` & co., ``taskenv``). Resources map
  to ``--cpus`` and ``--memory`` (no swap beyond it); the network is off unless ``network: host``.
- GPUs: a task holding GPUs gets ``NVIDIA_VISIBLE_DEVICES`` (and ``PODIUM_GPUS``) listing the
  node's device indices it holds, which the NVIDIA Container Toolkit reads to map exactly those
  devices in, and ``CUDA_VISIBLE_DEVICES`` numbering them from 0 as they appear inside. Mapping
  the devices needs the runtime's GPU support (the toolkit's hook or CDI); without it the
  container sees no GPU.

The last ``LOG_TAIL_BYTES`` of the container's stdout and of its stderr are kept (the text then
starts with a note saying how much was cut). A failure carries them in its record's ``extra``
(``stdout``, ``stderr``, ``exit_code``, ``image``, ``container``); ``run()`` returns them with
the result. Every value of ``env`` is treated as a secret: passed in a 0600 env file, never on
a command line, and replaced by ``***`` in captured output and in messages.

Invariants: no container outlives its attempt in a live Podium process (removed when the
attempt ends however it ends, and at interpreter exit); a killed process's containers are
removed by ``cleanup(run_id)``, which the first container attempt of a run in each process
calls (with the attempt folders such processes left).
"""

from __future__ import annotations

import atexit
import json
import os
import re
import selectors
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from podium.errors import OOM, TIMEOUT, USER_ERROR, WORKER_LOST, TaskFailedError
from podium.executors import container_files as files
from podium.executors import container_usage as usage
from podium.executors.capture import relay
from podium.executors.container_runtime import (
    LABEL_ATTEMPT,
    LABEL_OWNER,
    LABEL_RUN,
    LABEL_TASK,
    ContainerRuntimeError,
    ContainerSpec,
    Mount,
    Runtime,
    detect,
    first_error,
    owner,
)
from podium.executors.failure import failure, signame
from podium.executors.taskenv import task_env
from podium.model import container as rules
from podium.model.task import TaskCall

#: Bytes kept of each of stdout and stderr (the end of the output).
LOG_TAIL_BYTES = 1 << 20
#: Lines of stderr quoted in a failure message.
STDERR_TAIL_LINES = 10
#: Seconds the runtime itself lets a container outlive its task's timeout (a backstop that
#: holds even when no Podium process is left to stop it).
STOP_GRACE = 10.0
#: Start failures worth retrying: the registry could not be reached (a missing image, a bad
#: command or a bad option fail the same way every time).
_TRANSIENT = re.compile(
    r"(?i)connection refused|connection reset|timed? ?out|temporar|too many requests|\b50[234]\b"
)
#: Env values shorter than this are not redacted from output (they would mangle it).
MIN_SECRET_LEN = 4

OnProcess = Callable[[subprocess.Popen[Any]], None]
OnUsage = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class ContainerRun:
    """One finished container attempt: its result and the tails of its output."""

    result: Any
    exit_code: int
    stdout: str
    stderr: str
    container: str


def run_container(
    call: TaskCall,
    on_process: OnProcess | None = None,
    on_usage: OnUsage | None = None,
) -> Any:
    """Run a container task attempt and return its result (the ``kinds`` entry point)."""
    return run(call, on_process, on_usage=on_usage).result


def run(
    call: TaskCall,
    on_process: OnProcess | None = None,
    runtime: Runtime | None = None,
    on_usage: OnUsage | None = None,
) -> ContainerRun:
    """Run one attempt of a container task; raise ``TaskFailedError`` as the contract says.
    ``on_usage`` gets what the container used (``container_usage``) once it is gone, however
    the attempt ended, when it could be measured."""
    task = call.task_id
    try:
        rt = runtime or detect()
    except ContainerRuntimeError as e:
        raise failure(
            USER_ERROR, "ContainerRuntimeError", f"container task {task!r}: {e}", retryable=False
        ) from None
    _cleanup_once(rt, call.run_id)
    settings = _settings(call)
    secrets = sorted({v for v in settings["env"].values() if len(v) >= MIN_SECRET_LEN}, key=len, reverse=True)
    with files.attempt_folder() as folder:
        spec = _prepare(call, settings, folder)
        gauge = usage.meter(rt, spec.name) if on_usage is not None else None
        if gauge is not None:
            spec = replace(spec, cgroup_parent=gauge.parent)
        t0 = time.monotonic()
        try:
            return _attempt(call, rt, spec, secrets, on_process, folder)
        finally:
            _forget(rt, spec.name)
            if gauge is not None and on_usage is not None:
                used = gauge.read()
                gauge.close()
                on_usage({**used, "seconds": time.monotonic() - t0, "measured": "container"})


def cleanup(run_id: str, runtime: Runtime | None = None) -> list[str]:
    """Remove the containers of ``run_id`` left by dead processes; return their names."""
    return (runtime or detect()).cleanup(run_id)


# -- settings and files -------------------------------------------------------------------------
def _settings(call: TaskCall) -> dict[str, Any]:
    """The resolved settings, checked again (argv, env and workdir may come from results)."""
    cfg = call.config
    task = call.task_id
    problems: list[str] = []
    image = cfg.get("image")
    if (msg := rules.image_problem(image)) is not None:
        problems.append(f"image: {msg}")
    argv = cfg.get("argv") or ()
    if isinstance(argv, str) or not isinstance(argv, list | tuple):
        problems.append("argv: expected a list of strings (a command line string is never split)")
        argv = ()
    args = [str(a) for a in argv]
    if any("\0" in a for a in args):
        problems.append("argv: an item holds a NUL byte")
    env: dict[str, str] = {}
    for k, v in dict(cfg.get("env") or {}).items():
        value = v if isinstance(v, str) else json.dumps(v)  # true, 1.5, {"a": 1}: JSON text
        if (msg := rules.env_name_problem(k) or rules.env_value_problem(value)) is not None:
            problems.append(f"env.{k}: {msg}")
        env[str(k)] = value
    workdir = cfg.get("workdir")
    if workdir is not None and (msg := rules.workdir_problem(workdir)) is not None:
        problems.append(msg)
    network = cfg.get("network", "none")
    if (msg := rules.network_problem(network)) is not None:
        problems.append(msg)
    for name in call.kwargs:
        if (msg := rules.input_problem(name)) is not None:
            problems.append(msg)
    if problems:
        raise failure(
            USER_ERROR, "SpecError", f"container task {task!r}: {'; '.join(problems)}", retryable=False
        )
    return {"image": image, "argv": tuple(args), "env": env, "workdir": workdir, "network": network}


def _task_env(call: TaskCall, own: Mapping[str, str]) -> dict[str, str]:
    """Podium's variables for the container (``own``: the task's env, which wins)."""
    env = {
        k: v
        for k, v in task_env(call).items()
        if k not in own and k not in ("CUDA_VISIBLE_DEVICES", "PODIUM_GPUS")
    }
    gpus = call.gpus
    if gpus:
        env["NVIDIA_VISIBLE_DEVICES"] = env["PODIUM_GPUS"] = ",".join(str(g) for g in gpus)
        env["CUDA_VISIBLE_DEVICES"] = ",".join(str(i) for i in range(len(gpus)))
    return env


def _prepare(call: TaskCall, settings: Mapping[str, Any], folder: str) -> ContainerSpec:
    """Write the inputs and the env file in ``folder``; the spec of the container to run."""
    indir, outdir = files.write_inputs(folder, call.kwargs, call.task_id)
    env_file = files.write_env(folder, settings["env"])
    res = call.resources
    return ContainerSpec(
        image=settings["image"],
        name=f"podium-{uuid.uuid4().hex[:16]}",
        argv=settings["argv"],
        labels={
            LABEL_RUN: call.run_id,
            LABEL_TASK: call.task_id,
            LABEL_ATTEMPT: str(call.attempt),
            LABEL_OWNER: owner(),
        },
        env={
            **_task_env(call, settings["env"]),
            "PODIUM_RUN_ID": call.run_id,
            "PODIUM_TASK_ID": call.task_id,
            "PODIUM_ATTEMPT": str(call.attempt),
            "PODIUM_IN": rules.IN_DIR,
            "PODIUM_OUT": rules.OUT_DIR,
        },
        env_file=env_file,
        workdir=settings["workdir"],
        network=settings["network"],
        cpus=res.cpu,
        memory=res.memory,
        mounts=(Mount(indir, rules.IN_DIR, True), Mount(outdir, rules.OUT_DIR, False)),
        stop_after=None if call.timeout is None else call.timeout + STOP_GRACE,
    )


# -- one attempt ------------------------------------------------------------------------------
def _attempt(
    call: TaskCall,
    rt: Runtime,
    spec: ContainerSpec,
    secrets: list[str],
    on_process: OnProcess | None,
    tmp: str,
) -> ContainerRun:
    """Run the container attached; ``tmp`` is the client's working folder (Podman's conmon
    leaves a file named ``oom`` there when the container's memory cgroup killed a process)."""
    where = f"container task {call.task_id!r} (image {spec.image!r})"
    out, err = _Tail(), _Tail()
    deadline = None if call.timeout is None else time.monotonic() + call.timeout
    _remember(rt, spec.name)
    try:
        proc = subprocess.Popen(
            rt.run_argv(spec),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            cwd=tmp,
        )
    except OSError as e:
        raise failure(
            USER_ERROR, "ContainerRuntimeError", f"{where}: cannot run {rt.path}: {e.strerror}"
        ) from None
    if on_process is not None:
        on_process(proc)
    try:
        timed_out = _pump(proc, out, err, deadline)
    finally:
        if proc.poll() is None:
            rt.remove([spec.name])  # the client returns once its container is gone
            try:
                proc.wait(timeout=5.0)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
    stdout, stderr = out.text(secrets), err.text(secrets)
    relay(stdout, stderr)  # into the attempt's log, as a shell task's output

    def failed(
        kind: str, type_: str, message: str, retryable: bool = True, code: int | None = None
    ) -> TaskFailedError:
        tail = "\n".join(stderr.rstrip().splitlines()[-STDERR_TAIL_LINES:])
        quote = tail and kind != TIMEOUT and type_ != "ContainerStartError"  # that message is stderr's
        text = message + (f"; stderr:\n{tail}" if quote else "")
        extra = {"image": spec.image, "container": spec.name, "stdout": stdout, "stderr": stderr}
        return failure(kind, type_, text, retryable=retryable, exit_code=code, **extra)

    if timed_out:
        raise failed(
            TIMEOUT, "TimeoutError", f"{where} timed out after {call.timeout:g}s (container removed)"
        )
    rc = proc.returncode
    if rc < 0:
        raise failed(
            WORKER_LOST, "ContainerLost", f"{where}: the {rt.kind} client was killed by {signame(-rc)}"
        )
    if rc != 0:
        oom = os.path.exists(os.path.join(tmp, "oom"))
        raise _exit_failure(rt, spec, where, rc, stderr, oom, failed)
    result = files.read_result(spec.mounts[1].source, where)
    return ContainerRun(result, 0, stdout, stderr, spec.name)


def _exit_failure(
    rt: Runtime, spec: ContainerSpec, where: str, rc: int, stderr: str, oom: bool, failed: Any
) -> TaskFailedError:
    """Why a container attempt ended with a non-zero code: it never started, ran out of memory
    (``oom``: conmon saw the memory cgroup kill; or the runtime says so), or exited with it."""
    found = rt.inspect([spec.name])
    state = (found[0].get("State") or {}) if found else {}
    if not found or str(state.get("Status", "")).lower() in ("created", "configured"):
        line = first_error(stderr)
        transient = _TRANSIENT.search(line) is not None  # a registry that may answer next time
        return failed(
            USER_ERROR, "ContainerStartError", f"{where}: {rt.kind} could not start it: {line}", transient, rc
        )
    code = int(state.get("ExitCode", rc) or rc)
    if oom or state.get("OOMKilled"):
        limit = f" ({spec.memory / 1024**2:.0f}MiB)" if spec.memory else ""
        message = f"{where} exited with code {code} after a process was killed at its memory limit{limit}"
        return failed(OOM, "OutOfMemory", f"{message}: out of memory", True, code)
    return failed(USER_ERROR, "ContainerFailed", f"{where} exited with code {code}", True, code)


class _Tail:
    """The last ``LOG_TAIL_BYTES`` of a stream and how many bytes came before them."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.total = 0

    def add(self, chunk: bytes) -> None:
        self.total += len(chunk)
        self.data += chunk
        if len(self.data) > 2 * LOG_TAIL_BYTES:  # trim now and then, not on every chunk
            del self.data[: len(self.data) - LOG_TAIL_BYTES]

    def text(self, secrets: list[str]) -> str:
        kept = bytes(self.data[-LOG_TAIL_BYTES:])
        text = kept.decode("utf-8", errors="replace")
        for s in secrets:
            text = text.replace(s, "***")
        cut = self.total - len(kept)
        return f"[{cut} earlier bytes of output cut]\n{text}" if cut else text


def _pump(proc: subprocess.Popen[bytes], out: _Tail, err: _Tail, deadline: float | None) -> bool:
    """Read the client's stdout and stderr until both close and it exits; True if the deadline
    passed first."""
    sel = selectors.DefaultSelector()
    for stream, tail in ((proc.stdout, out), (proc.stderr, err)):
        if stream is not None:
            sel.register(stream, selectors.EVENT_READ, tail)
    try:
        while sel.get_map():
            wait = None if deadline is None else deadline - time.monotonic()
            if wait is not None and wait <= 0:
                return True
            for key, _ in sel.select(wait):
                chunk = os.read(key.fd, 1 << 16)
                if chunk:
                    key.data.add(chunk)
                else:
                    sel.unregister(key.fileobj)
    finally:
        sel.close()
    try:
        proc.wait(timeout=None if deadline is None else max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        return True
    return False


# -- containers of this process, and of dead ones -----------------------------------------------
_LOCK = threading.Lock()
_LIVE: dict[str, Runtime] = {}
_CLEANED: set[tuple[Runtime, str]] = set()


def _remember(rt: Runtime, name: str) -> None:
    with _LOCK:
        _LIVE[name] = rt


def _forget(rt: Runtime, name: str) -> None:
    """Remove the attempt's container (whatever state it is in) and stop tracking it."""
    try:
        rt.remove([name])
    except ContainerRuntimeError:
        return  # still tracked: removed at exit, or by cleanup() of a later process
    with _LOCK:
        _LIVE.pop(name, None)


def _cleanup_once(rt: Runtime, run_id: str) -> None:
    """Remove the run's containers (and any attempt folders) left by dead processes, once per
    run in this process (the first container attempt of a run, fresh or resumed, does it)."""
    key = (rt, run_id)
    with _LOCK:
        if key in _CLEANED:
            return
        _CLEANED.add(key)
    files.remove_dead()
    try:
        rt.cleanup(run_id)
        usage.sweep(rt)  # the cgroups of containers dead processes left
    except ContainerRuntimeError:
        with _LOCK:
            _CLEANED.discard(key)  # try again with the next attempt


@atexit.register
def _remove_leftovers() -> None:
    """Containers of attempts still running when this interpreter exits (a cancelled run whose
    abandoned threads had not finished removing them) go with it, and so do its attempt folders."""
    with _LOCK:
        live = list(_LIVE.items())
    by_runtime: dict[Runtime, list[str]] = {}
    for name, rt in live:
        by_runtime.setdefault(rt, []).append(name)
    for rt, names in by_runtime.items():
        try:
            rt.remove(names)
        except ContainerRuntimeError:
            pass
    if _CLEANED:  # this process ran container attempts
        files.remove_mine()
