"""``podium cancel`` signals only the process that provably owns the run; a run that has
finished is not "cancelled".

Attack: the orchestrator of a run died and the OS gave its PID to an unrelated process (PIDs
wrap around); ``cancel`` then sent SIGINT to that process. The owner is now recorded with its
process start time, and a PID whose start time differs is never signalled.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from security_helpers import cli, write

from podium.errors import ConflictError
from podium.runtime.owner import check_owner, owner_id, owner_process
from podium.store import open_store


@pytest.fixture
def bystander() -> Iterator[subprocess.Popen[bytes]]:
    """An unrelated live process: it plays the one that got the dead orchestrator's PID."""
    proc = subprocess.Popen(["sleep", "60"])
    yield proc
    proc.kill()
    proc.wait()


def host() -> str:
    return owner_id().split(":")[0]


def finished_run(tmp_path: Path) -> Path:
    write(tmp_path / "podium.toml", 'allow_programs = ["true"]\n')
    write(tmp_path / "s.yaml", "tasks:\n  t: {argv: ['true']}\n")
    db = tmp_path / "p.db"
    code, _out, err = cli(["run", "s.yaml", "--store", str(db), "--run-id", "r1", "--no-progress"], tmp_path)
    assert code == 0, err
    return db


def pretend_running(db: Path, owner: str) -> None:
    store = open_store(str(db))
    try:
        store.update_run("r1", status="running", owner=owner)
    finally:
        store.close()


def test_owner_id_names_host_pid_and_start_time() -> None:
    host_, pid, start = owner_id().split(":")
    assert host_ == host()
    assert int(pid) == psutil.Process().pid
    assert abs(float(start) - psutil.Process().create_time()) < 0.02


def test_a_reused_pid_is_never_signalled(tmp_path: Path, bystander: subprocess.Popen[bytes]) -> None:
    db = finished_run(tmp_path)
    started = psutil.Process(bystander.pid).create_time()
    pretend_running(db, f"{host()}:{bystander.pid}:{started - 3600:.3f}")  # the owner started an hour earlier
    code, _out, err = cli(["cancel", "r1", "--store", str(db)], tmp_path)
    assert code == 3 and "is no longer running" in err and "podium resume r1" in err
    time.sleep(0.2)
    assert bystander.poll() is None, "cancel signalled a process that does not own the run"


def test_an_owner_recorded_without_a_start_time_is_never_signalled(
    tmp_path: Path, bystander: subprocess.Popen[bytes]
) -> None:
    db = finished_run(tmp_path)
    pretend_running(db, f"{host()}:{bystander.pid}")  # written by an older Podium
    code, _out, err = cli(["cancel", "r1", "--store", str(db)], tmp_path)
    assert code == 0 and "cancel requested" in err + _out
    time.sleep(0.2)
    assert bystander.poll() is None


def test_the_real_owner_is_found(bystander: subprocess.Popen[bytes]) -> None:
    started = psutil.Process(bystander.pid).create_time()
    assert owner_process(f"{host()}:{bystander.pid}:{started:.3f}") == bystander.pid
    assert owner_process(f"{host()}:{bystander.pid}:{started + 5:.3f}") is None
    assert owner_process(f"other-host:{bystander.pid}:{started:.3f}") is None
    assert owner_process(f"{host()}:{bystander.pid}") is None
    assert owner_process("") is None and owner_process("garbage") is None


def test_resume_refuses_only_a_provably_live_owner(bystander: subprocess.Popen[bytes]) -> None:
    started = psutil.Process(bystander.pid).create_time()
    with pytest.raises(ConflictError, match="still being run"):
        check_owner(f"{host()}:{bystander.pid}:{started:.3f}")
    check_owner(f"{host()}:{bystander.pid}:{started - 60:.3f}")  # PID reused: the lease is stale
    check_owner(owner_id())  # ourselves
    with pytest.raises(ConflictError):  # an older record: as before, a live PID counts
        check_owner(f"{host()}:{bystander.pid}")


def test_cancelling_a_finished_run_says_so(tmp_path: Path) -> None:
    db = finished_run(tmp_path)
    code, out, err = cli(["cancel", "r1", "--store", str(db)], tmp_path)
    assert code == 3 and "run r1 already finished (succeeded): nothing to cancel" in err
    assert "cancel requested" not in out
    store = open_store(str(db))
    try:
        assert not store.cancel_requested("r1")
    finally:
        store.close()
