"""``podium.run``, ``podium.open_run`` and ``podium.runs`` as a user's code and tests call them:
real flows on the local executor, real SQLite stores opened twice, artifacts on disk.

What they prove: the values tasks returned come back (a map's list, one item, an artifact
read back through its store); a past run opened through another store handle gives the same
values and the same task records as ``podium show --json``; a failed run says which task failed
and why, and asking for its value says so too; bad input is one line and writes nothing."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

import podium
from inprocess_cli import cli
from podium.errors import (
    NoResultError,
    NotFoundError,
    RunFailedError,
    SpecError,
    UnknownNameError,
    UsageError,
)
from podium.store import open_store

BIG = 3 << 20  # above the artifact threshold (1 MiB): kept beside the database


@podium.task
def api_square(x: int) -> int:
    return x * x


@podium.task
def api_total(values: list, base: int = 0) -> int:
    return sum(values) + base


@podium.task
def api_blob(n: int) -> bytes:
    return bytes(range(256)) * (n // 256)


@podium.task
def api_explode(n: int) -> int:
    raise ValueError(f"bad input {n}")


@podium.task(retries=1, retry_delay="10ms")
def api_flaky(marker: str) -> str:
    p = Path(marker)
    if not p.exists():
        p.write_text("seen")
        raise RuntimeError("first attempt fails")
    return "second time lucky"


@podium.flow(name="api_squares")
def squares(xs: list = (1, 2, 3), base: int = 0):  # type: ignore[assignment]
    api_total(values=api_square(x=podium.each(xs)), base=base)


@podium.flow(name="api_big")
def big(n: int = BIG):
    api_blob(n=n)


@podium.flow(name="api_broken", fail_fast=False)  # keep going: the retry runs
def broken(n: int = 42, marker: str = ""):
    api_total(values=[api_explode(n=n)])
    api_flaky(marker=marker)


def test_run_returns_the_values_tasks_returned() -> None:
    result = podium.run(squares, {"xs": [2, 3, 4], "base": 1}, store="memory:")
    assert isinstance(result, podium.RunResult) and result.ok and result.status == "succeeded"
    assert result["api_total"] == 4 + 9 + 16 + 1
    assert result["api_square"] == [4, 9, 16] and result["api_square[2]"] == 16
    assert result.workflow == "api_squares" and result.params == {"xs": [2, 3, 4], "base": 1}
    assert result.T > 0 and pytest.approx(result.T) == result.F and result.R >= 0
    assert set(result.tasks) == {"api_square", "api_square[0]", "api_square[1]", "api_square[2]", "api_total"}
    total = result.tasks["api_total"]
    assert total["status"] == "succeeded" and total["attempts"] == 1 and total["node"]
    assert total["started_at"] <= total["finished_at"] and total["error"] is None
    assert result.tasks["api_square"]["children"] == 3
    assert result.raise_on_failure() is result and result.error is None and result.failed == {}


def test_a_workflow_object_and_a_flow_file_run_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert podium.run(squares.workflow, store="memory:")["api_total"] == 14
    (tmp_path / "api_file_flows.py").write_text(
        textwrap.dedent(
            """
            import podium

            @podium.task
            def double(x: int) -> int:
                return 2 * x

            @podium.flow
            def doubled(x: int = 4):
                double(x=x)
            """
        ),
        encoding="utf-8",
    )
    monkeypatch.chdir(tmp_path)
    db = tmp_path / "f.db"
    result = podium.run(tmp_path / "api_file_flows.py", {"x": 21}, store=str(db), run_id="file1")
    assert result.run_id == "file1" and result["double"] == 42
    # recorded like `podium run FILE`: `podium resume` and `podium show` know it
    code, out, err = cli(["show", "file1", "--store", str(db), "--json"], tmp_path)
    assert code == 0, err
    assert json.loads(out)["tasks"][0]["task_id"] == "double"
    store = open_store(str(db))
    try:
        assert store.get_run("file1").source["kind"] == "python"
    finally:
        store.close()


def test_a_yaml_spec_runs_as_podium_run_loads_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "api_yaml_mod.py").write_text("def inc(x):\n    return x + 1\n", encoding="utf-8")
    (tmp_path / "podium.toml").write_text('allow_modules = ["api_yaml_mod"]\n', encoding="utf-8")
    spec = tmp_path / "inc.yaml"
    spec.write_text(
        "name: inc\nparams:\n  x: {type: int, default: 1}\n"
        "tasks:\n  a: {call: 'api_yaml_mod:inc', args: {x: '${params.x}'}}\n"
        "  b: {call: 'api_yaml_mod:inc', args: {x: '${a}'}}\n",
        encoding="utf-8",
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    result = podium.run(str(spec), {"x": 40}, store="memory:")
    assert result.ok and result["b"] == 42
    spec.with_name("other.yaml").write_text("tasks:\n  a: {call: 'os:getcwd'}\n", encoding="utf-8")
    with pytest.raises(SpecError, match="not allowed"):  # the grants of podium.toml, as for the CLI
        podium.run(str(spec.with_name("other.yaml")), store="memory:")


def test_open_run_in_another_store_handle_returns_the_same_values(tmp_path: Path) -> None:
    db = str(tmp_path / "runs.db")
    ran = podium.run(big, store=db, run_id="big1")
    value = ran["api_blob"]
    assert len(value) == BIG
    assert (tmp_path / "runs.db.podium-artifacts").is_dir()  # large results go beside the database
    podium.run(squares, {"xs": [5]}, store=db, run_id="sq1")

    opened = podium.open_run("big1", store=db)  # a new handle, values read from the store
    assert opened.status == "succeeded" and opened["api_blob"] == value
    assert opened.tasks == ran.tasks and opened.T == ran.T
    store = open_store(db)  # an open Store the caller owns: used, not closed
    try:
        again = podium.open_run("sq1", store=store)
        assert again["api_total"] == 25 and again["api_square"] == [25]
        assert store.get_run("sq1").workflow == "api_squares"
    finally:
        store.close()
    code, out, _ = cli(["show", "sq1", "--store", db, "--json"], tmp_path)
    assert code == 0 and json.loads(out) == again.as_json()  # the same read model as the CLI

    listed = podium.runs(store=db)
    assert [r["run_id"] for r in listed] == ["sq1", "big1"] and listed[0]["schema"] == "podium.run/1"
    assert [r["run_id"] for r in podium.runs(store=db, limit=1)] == ["sq1"]


def test_a_failed_run_says_which_task_failed_and_why(tmp_path: Path) -> None:
    db = str(tmp_path / "fail.db")
    marker = str(tmp_path / "marker")
    result = podium.run(broken, {"marker": marker}, store=db, run_id="bad1")
    assert not result.ok and result.status == "failed"
    assert result.failed == {
        "api_explode": {
            "kind": "user",
            "type": "ValueError",
            "message": "bad input 42",
            "frame": result.failed["api_explode"]["frame"],
        }
    }
    assert "test_python_api.py" in result.failed["api_explode"]["frame"]
    assert result.error == "run bad1 failed: task 'api_explode' failed [user]: ValueError: bad input 42"
    with pytest.raises(
        NoResultError, match=r"api_explode.*no result: it failed \[user\]: ValueError: bad input 42"
    ):
        result["api_explode"]
    with pytest.raises(NoResultError, match="api_total"):  # never ran: its upstream failed
        result["api_total"]
    with pytest.raises(RunFailedError) as exc:
        result.raise_on_failure()
    assert exc.value.run_id == "bad1" and set(exc.value.failed) == {"api_explode"}
    assert "\n" not in str(exc.value)
    # the retried task of the same run: two attempts, no error left
    flaky = result.tasks["api_flaky"]
    assert flaky["attempts"] == 2 and flaky["status"] == "succeeded" and flaky["error"] is None
    assert result["api_flaky"] == "second time lucky"
    # the same, read back later
    past = podium.open_run("bad1", store=db)
    assert past.error == result.error and past.failed == result.failed
    assert past["api_flaky"] == "second time lucky"


def test_bad_input_is_one_line_and_writes_nothing(tmp_path: Path) -> None:
    db = tmp_path / "none.db"
    cases = [
        (lambda: podium.run(tmp_path / "missing.py", store=str(db)), SpecError, "missing.py: no such file"),
        (lambda: podium.run(squares, {"xs": 3}, store=str(db)), SpecError, "param xs: expected list"),
        (lambda: podium.run(squares, {"xz": [1]}, store=str(db)), SpecError, "param xz: unknown parameter"),
        (lambda: podium.run(squares, [1, 2], store=str(db)), UsageError, "params: expected a mapping"),
        (lambda: podium.run(42, store=str(db)), UsageError, "expected a podium.Flow"),
        (lambda: podium.run(squares, store=3), UsageError, "store: expected a URL"),
        (lambda: podium.run(squares, store=str(db), run_id="a b"), UsageError, "--run-id 'a b'"),
        (lambda: podium.run(squares, store=str(db), cluster=7), UsageError, "cluster: expected"),
        (lambda: podium.run(squares, store=str(db), cluster=tmp_path / "no.yaml"), SpecError, "cluster file"),
        (lambda: podium.runs(store=str(db), limit=0), UsageError, "limit"),
    ]
    for call, kind, words in cases:
        with pytest.raises(kind) as exc:
            call()
        assert isinstance(exc.value, podium.PodiumError)
        message = str(exc.value)
        assert words in message and "\n" not in message, message
    assert not db.exists()  # nothing was written for any of them


def test_unknown_runs_and_tasks_are_named(tmp_path: Path) -> None:
    db = str(tmp_path / "u.db")
    result = podium.run(squares, store=db, run_id="u1")
    with pytest.raises(
        UnknownNameError, match=r"run u1 has no task 'api_totl' \(did you mean 'api_total'\?\)"
    ):
        result["api_totl"]
    with pytest.raises(KeyError):  # also a KeyError, as a mapping's missing key
        result["nothing-like-it"]
    assert "api_total" in result and "api_totl" not in result
    with pytest.raises(NotFoundError, match="nope"):
        podium.open_run("nope", store=db)


def test_import_podium_and_its_run_api_stay_light() -> None:
    import subprocess
    import sys

    heavy = ("podium.runtime", "podium.store", "podium.executors", "podium.load.spec", "yaml")
    code = (
        "import sys, podium; podium.run, podium.RunResult; "
        f"print([m for m in sys.modules if m.startswith({heavy!r})])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"  # the engine, stores and executors load when a run is asked for


def test_a_run_id_continues_its_run_and_refuses_new_values(tmp_path: Path) -> None:
    db = str(tmp_path / "again.db")
    first = podium.run(squares, {"xs": [3]}, store=db, run_id="same")
    again = podium.run(squares, {"xs": [3]}, store=db, run_id="same")  # finished: nothing runs again
    assert again["api_total"] == first["api_total"] == 9 and again.tasks == first.tasks
    with pytest.raises(UsageError, match=r"run same was started with xs=\[3\]; -p xs=\[4\] differs"):
        podium.run(squares, {"xs": [4]}, store=db, run_id="same")
    assert [r["run_id"] for r in podium.runs(store=db)] == ["same"]


def test_the_nodes_of_a_cluster_run_the_tasks(tmp_path: Path) -> None:
    cluster = podium.Cluster.of(
        [podium.Node("left", podium.Resources(cpu=2)), podium.Node("right", podium.Resources(cpu=2))]
    )
    result = podium.run(squares, {"xs": [1, 2, 3, 4]}, store="memory:", cluster=cluster)
    assert result["api_total"] == 30
    assert {t["node"] for t in result.tasks.values() if t["children"] is None} <= {"left", "right"}
    path = tmp_path / "cluster.yaml"
    path.write_text("nodes:\n  - {name: solo, capacity: {cpu: 2, memory: 1GiB}}\n", encoding="utf-8")
    result = podium.run(squares, store="memory:", cluster=path)
    assert result["api_total"] == 14 and result.tasks["api_total"]["node"] == "solo"


def test_no_store_means_the_projects_store_as_the_cli_finds_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PODIUM_STORE", raising=False)
    project = tmp_path / "project"
    (project / "flows" / "deep").mkdir(parents=True)
    (project / "podium.toml").write_text("", encoding="utf-8")
    monkeypatch.chdir(project / "flows" / "deep")
    ran = podium.run(squares, {"xs": [6]}, run_id="found1")
    assert (project / ".podium" / "podium.db").is_file()  # the project's store, not the folder's
    assert not (project / "flows" / "deep" / ".podium").exists()
    monkeypatch.chdir(project / "flows")
    assert podium.open_run("found1")["api_total"] == ran["api_total"] == 36
    code, out, err = cli(["runs", "--json"], project / "flows")  # the CLI reads the same store
    assert code == 0 and [r["run_id"] for r in json.loads(out)] == ["found1"], err
    # reading where there is no store fails saying where it looked, and creates none
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    for read in (lambda: podium.open_run("found1"), lambda: podium.runs()):
        with pytest.raises(NotFoundError, match="no Podium store found") as exc:
            read()
        assert "\n" not in str(exc.value)
    assert not (elsewhere / ".podium").exists()
    with pytest.raises(NotFoundError, match=r"run 'nope' not found in store"):
        podium.open_run("nope", store=str(project / ".podium" / "podium.db"))
