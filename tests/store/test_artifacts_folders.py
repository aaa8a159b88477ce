"""``podium.Artifact(path)``: a file or folder a task wrote, kept as a read-only tree that
downstream tasks receive as a path. First the attacks: a spec or a task must not make Podium read
anything the task did not write (``..``, symlinks out, other folders, special files, Podium's own
store); then the happy paths (moved from the temporary directory, copied from the working one),
verification on resume, lineage and garbage collection."""

from __future__ import annotations

import json
import os
import stat
import tempfile
import textwrap
from pathlib import Path
from typing import Any

import pytest

import podium
from podium.executors.local import LocalExecutor, detect_node
from podium.runtime.codec import ARTIFACT, CorruptResult, decode, encode, reference
from podium.runtime.engine import Engine
from podium.store import SqliteStore
from podium.store.artifacts import ArtifactError, LocalArtifacts, collect

from .conftest import podium as podium_cli


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory, with the temporary directory a folder of its own beside it."""
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    cwd = tmp_path / "work"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return cwd


@pytest.fixture
def store(tmp_path: Path) -> LocalArtifacts:
    return LocalArtifacts(tmp_path / "artifacts")


def _model(where: Path) -> Path:
    (where / "model" / "shards").mkdir(parents=True)
    (where / "model" / "config.json").write_text('{"layers": 2}')
    (where / "model" / "shards" / "0.bin").write_bytes(b"\x01" * 5000)
    (where / "model" / "run.sh").write_text("#!/bin/sh\n")
    (where / "model" / "run.sh").chmod(0o755)
    return where / "model"


def _nothing_stored(store: LocalArtifacts) -> bool:
    return not (store.root / "trees").exists() or not any((store.root / "trees").rglob("*/*"))


# -- attacks first --------------------------------------------------------------------------


def _outside(tmp_path: Path) -> Path:
    secret = tmp_path / "secret"  # beside the working and temporary directories: not the task's
    secret.mkdir(exist_ok=True)
    (secret / "id_rsa").write_text("PRIVATE KEY")
    return secret


@pytest.mark.parametrize(
    "attack",
    [
        "dotdot",
        "absolute outside",
        "system file",
        "path is a symlink out",
        "parent is a symlink out",
        "symlink inside pointing out",
        "relative symlink inside pointing out",
        "fifo inside",
        "podium store",
        "artifact store itself",
        "working directory itself",
    ],
)
def test_an_artifact_path_never_makes_podium_read_what_the_task_did_not_write(
    work: Path, store: LocalArtifacts, tmp_path: Path, attack: str
) -> None:
    secret = _outside(tmp_path)
    scratch = Path(tempfile.gettempdir())
    model = _model(scratch)
    path: Any
    if attack == "dotdot":
        path = "../secret"
    elif attack == "absolute outside":
        path = str(secret)
    elif attack == "system file":
        path = "/etc/hostname" if os.path.exists("/etc/hostname") else "/etc/passwd"
    elif attack == "path is a symlink out":
        (work / "out").symlink_to(secret)
        path = "out"
    elif attack == "parent is a symlink out":
        (work / "sub").symlink_to(secret)
        path = "sub/id_rsa"
    elif attack == "symlink inside pointing out":
        (model / "weights.bin").symlink_to(secret / "id_rsa")
        path = model
    elif attack == "relative symlink inside pointing out":
        (model / "shards" / "1.bin").symlink_to("../../../secret/id_rsa")
        path = model
    elif attack == "fifo inside":
        os.mkfifo(model / "pipe")  # reading it would block for ever
        path = model
    elif attack == "podium store":
        (work / ".podium").mkdir()
        (work / ".podium" / "store.key").write_text("KEY")
        path = ".podium"
    elif attack == "artifact store itself":
        path = store.root
        store.put([b"x"])
    else:
        path = "."
    before = sorted(p.name for p in model.rglob("*"))
    with pytest.raises(ArtifactError) as info:
        encode("save", 1, podium.Artifact(path), store)
    assert "\n" not in str(info.value)
    assert _nothing_stored(store)
    assert sorted(p.name for p in model.rglob("*")) == before  # a refused folder stays where it was
    assert (secret / "id_rsa").read_text() == "PRIVATE KEY"


@podium.task
def save_to(out: str) -> podium.Artifact:
    return podium.Artifact(out)


@podium.flow(name="spec_names_the_path")
def spec_names_the_path(out: str) -> None:
    save_to(out=out)


def test_a_spec_naming_a_path_outside_fails_the_task_with_one_line(
    work: Path, tmp_path: Path, store: LocalArtifacts
) -> None:
    _outside(tmp_path)
    db = SqliteStore(str(tmp_path / "p.db"))
    result = Engine(db, LocalExecutor([detect_node()]), artifacts=store).run(
        spec_names_the_path.workflow, {"out": "../secret"}
    )
    assert not result.ok
    err = result.view.tasks["save_to"].error
    assert err is not None and "'..' is not allowed" in err["message"] and "\n" not in err["message"]
    assert not err.get("retryable") and _nothing_stored(store) and db.results(result.run_id) == {}
    db.close()


# -- what is kept and passed on -------------------------------------------------------------


def _modes(top: Path) -> dict[str, int]:
    return {str(p.relative_to(top.parent)): stat.S_IMODE(p.lstat().st_mode) for p in [top, *top.rglob("*")]}


def test_a_folder_in_the_temporary_directory_is_moved_in_read_only_and_read_back_checked(
    work: Path, store: LocalArtifacts
) -> None:
    model = _model(Path(tempfile.gettempdir()))
    rec = encode("train", 1, podium.Artifact(model), store)
    assert rec.encoding == ARTIFACT and not model.exists()  # moved, not copied
    ref = reference(rec)
    assert ref is not None and ref.tree == "model" and ref.size == len('{"layers": 2}') + 5000 + 10
    path = decode(rec, store)
    assert isinstance(path, Path) and path.name == "model" and path.is_relative_to(store.root)
    assert (path / "shards" / "0.bin").read_bytes() == b"\x01" * 5000
    assert _modes(path) == {
        "model": 0o500,
        "model/config.json": 0o400,
        "model/run.sh": 0o500,
        "model/shards": 0o500,
        "model/shards/0.bin": 0o400,
    }
    again = _model(Path(tempfile.gettempdir()))  # the same content: the same tree, stored once
    assert encode("train", 2, podium.Artifact(again), store).data == rec.data
    # changed on disk (by someone who made it writable again): refused, never handed on
    shard = path / "shards" / "0.bin"
    shard.chmod(0o600)
    shard.write_bytes(b"\x02" * 5000)
    with pytest.raises(CorruptResult, match="does not match"):
        decode(rec, store)


def test_a_file_in_the_working_directory_is_copied_and_left_in_place(
    work: Path, store: LocalArtifacts
) -> None:
    (work / "report.csv").write_text("a,b\n1,2\n")
    rec = encode("report", 1, podium.Artifact("report.csv"), store)
    path = decode(rec, store)
    assert (work / "report.csv").exists() and path.read_text() == "a,b\n1,2\n" and path.name == "report.csv"
    assert stat.S_IMODE(path.stat().st_mode) == 0o400


def test_without_a_local_artifact_store_an_artifact_is_a_clear_error(work: Path) -> None:
    (work / "f.txt").write_text("x")
    with pytest.raises(Exception, match="no artifact store is open"):
        encode("t", 1, podium.Artifact("f.txt"))


@podium.task
def train(steps: int) -> podium.Artifact:
    out = Path(tempfile.mkdtemp()) / "model"
    out.mkdir()
    (out / "weights.bin").write_bytes(bytes([steps % 256]) * 4096)
    return podium.Artifact(out)


@podium.task
def evaluate(model: Path, gate: str) -> int:
    if not os.path.exists(gate):
        raise RuntimeError("gate closed")
    assert isinstance(model, Path) and stat.S_IMODE((model / "weights.bin").stat().st_mode) == 0o400
    return len((model / "weights.bin").read_bytes())


@podium.flow(name="train_eval")
def train_eval(gate: str, steps: int = 3) -> None:
    evaluate(model=train(steps=steps), gate=gate)


def test_downstream_receives_the_stored_path_and_resume_checks_the_tree(
    work: Path, tmp_path: Path, store: LocalArtifacts
) -> None:
    gate = str(tmp_path / "gate")
    db = SqliteStore(str(tmp_path / "p.db"))
    engine = Engine(db, LocalExecutor([detect_node()]), artifacts=store)
    first = engine.run(train_eval.workflow, {"gate": gate}, run_id="r1")
    assert not first.ok  # evaluate failed; the model is committed
    ref = reference(db.results("r1")["train"])
    assert ref is not None and ref.tree == "model"
    assert ref.lineage == {"run": "r1", "workflow": "train_eval", "task": "train", "attempt": 1, "inputs": {}}
    weights = Path(store.where(ref.digest)) / "model" / "weights.bin"
    weights.chmod(0o600)
    weights.write_bytes(b"\xff" * 4096)  # changed behind Podium's back: train must run again
    open(gate, "w").close()
    resumed = engine.resume("r1", train_eval.workflow)
    assert resumed.ok and resumed["evaluate"] == 4096 and resumed["train"] == weights.parent
    assert weights.read_bytes() == b"\x03" * 4096  # the tree written again, whole
    invalidated = [e.task_id for e in db.events("r1") if e.type == "TaskInvalidated"]
    assert invalidated == ["train"]
    assert engine.resume("r1", train_eval.workflow)["train"] == weights.parent  # read and checked
    db.close()


def test_gc_keeps_a_referenced_tree_and_removes_an_unreferenced_one(
    work: Path, store: LocalArtifacts
) -> None:
    kept = reference(encode("a", 1, podium.Artifact(_model(Path(tempfile.mkdtemp()))), store))
    (work / "other.txt").write_text("other")
    gone = reference(encode("b", 1, podium.Artifact("other.txt"), store))
    assert kept is not None and gone is not None
    removed = collect(store, {kept.digest}, grace=0)
    assert [name for name, _ in removed] == [gone.digest]
    assert store.exists(kept.digest) and not store.exists(gone.digest)
    assert not (store.root / "trees" / gone.digest[:2] / gone.digest).exists()


CLI_FLOW = textwrap.dedent(
    """
    import os, tempfile
    from pathlib import Path
    import podium

    @podium.task
    def train(steps: int) -> podium.Artifact:
        out = Path(tempfile.mkdtemp()) / "model"
        out.mkdir()
        (out / "weights.bin").write_bytes(b"w" * 3000)
        return podium.Artifact(out)

    @podium.task
    def evaluate(model) -> int:
        Path(os.environ["PODIUM_TEST_LOG"]).write_text(str(model))
        return len((model / "weights.bin").read_bytes())

    @podium.flow(name="folders")
    def folders(steps: int = 1):
        evaluate(model=train(steps=steps))
    """
)


def test_a_folder_artifact_through_the_cli(tmp_path: Path) -> None:
    (tmp_path / "flow.py").write_text(CLI_FLOW, encoding="utf-8")
    env = {"PODIUM_TEST_LOG": str(tmp_path / "seen"), "PODIUM_ARTIFACTS": ""}
    where = ["--store", str(tmp_path / "s.db")]
    run = podium_cli(
        "run", "flow.py:folders", "--run-id", "r1", *where, "--no-progress", cwd=tmp_path, env=env
    )
    assert run.returncode == 0, run.stderr
    out = podium_cli("artifacts", "r1", *where, "--json", cwd=tmp_path, env=env)
    [item] = json.loads(out.stdout)
    assert (item["task_id"], item["kind"], item["name"], item["present"]) == (
        "train",
        "folder",
        "model",
        True,
    )
    assert item["size"] == 3000 and item["lineage"]["task"] == "train"
    seen = Path((tmp_path / "seen").read_text())
    assert seen == Path(item["where"]) / "model" and (seen / "weights.bin").read_bytes() == b"w" * 3000
    assert seen.is_relative_to(tmp_path / "s.db.podium-artifacts" / "trees")
