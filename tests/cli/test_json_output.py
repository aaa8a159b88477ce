"""``podium show RUN --json`` and ``podium runs --json`` print the documented read model: every
document validates against the JSON Schema shipped in the package (``podium/schemas/run.json``,
shown in docs/json.md), and its values are the run's: attempts of a retried task, the failure
kind and message of a failed one, map items, a secret parameter redacted, the estimate used."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from inprocess_cli import cli
from podium.runtime.readmodel import SCHEMA, json_schema

FLOW = textwrap.dedent(
    """
    import pathlib
    import podium

    @podium.task(retries=1, retry_delay="10ms", expected_duration="2s", cpu=1, memory="64MiB")
    def flaky(marker: str) -> int:
        p = pathlib.Path(marker)
        if not p.exists():
            p.write_text("seen")
            raise RuntimeError("first attempt fails")
        return 7

    @podium.task
    def square(x: int) -> int:
        return x * x

    @podium.task
    def total(values: list, base: int) -> int:
        return sum(values) + base

    @podium.task
    def explode(n: int) -> int:
        raise ValueError(f"bad input {n}")

    @podium.flow(name="good")
    def good(marker: str, api_token: str = "none", xs: list = [1, 2, 3]):
        total(values=square(x=podium.each(xs)), base=flaky(marker=marker))

    @podium.flow(name="bad")
    def bad(n: int = 42):
        explode(n=n)
    """
)


def _validator(part: str) -> Any:
    schema = json_schema()
    schema.pop("anyOf")
    schema["$ref"] = f"#/$defs/{part}"
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("json")
    (root / "json_flows.py").write_text(FLOW, encoding="utf-8")
    db = str(root / "runs.db")
    marker = str(root / "marker")
    params = ["-p", f"marker={marker}", "-p", "api_token=hunter2-very-secret"]
    args = ["run", "json_flows.py:good", "--store", db, "--run-id", "ok1", "--no-progress", *params]
    code, _, err = cli(args, root)
    assert code == 0, err
    code, out, _ = cli(["run", "json_flows.py:bad", "--store", db, "--run-id", "bad1", "--no-progress"], root)
    assert code == 1 and "bad input 42" in out
    return root, db


def _json(root: Path, *args: str) -> Any:
    code, out, err = cli(list(args), root)
    assert code == 0, err
    return json.loads(out)


def test_show_json_of_a_succeeded_map_run_with_a_retry(runs: tuple[Path, str]) -> None:
    root, db = runs
    doc = _json(root, "show", "ok1", "--store", db, "--json")
    _validator("show").validate(doc)
    assert doc["schema"] == SCHEMA == "podium.run/1"
    assert (doc["run_id"], doc["workflow"], doc["status"]) == ("ok1", "good", "succeeded")
    assert doc["params"]["api_token"] == "***" and doc["params"]["xs"] == [1, 2, 3]
    assert "hunter2" not in json.dumps(doc)
    assert doc["T"] > 0 and doc["wall_time"] >= doc["T"] - 1e-6 and doc["F"] == pytest.approx(doc["T"])
    assert doc["created_at"] <= doc["started_at"] <= doc["finished_at"]
    tasks = {t["task_id"]: t for t in doc["tasks"]}
    flaky = tasks["flaky"]
    assert flaky["status"] == "succeeded" and flaky["attempts"] == 2
    assert flaky["error"] is None  # the failure of attempt 1 was retried away
    assert flaky["estimate"] == 2.0 and flaky["resources"] == {"cpu": 1.0, "memory": 64 << 20}
    assert flaky["started_at"] <= flaky["finished_at"] and flaky["duration"] >= 0
    assert tasks["square"]["children"] == 3 and tasks["square"]["status"] == "succeeded"
    items = [tasks[f"square[{i}]"] for i in range(3)]
    assert [(t["name"], t["map_index"], t["status"]) for t in items] == [
        ("square", i, "succeeded") for i in range(3)
    ]
    assert tasks["total"]["status"] == "succeeded" and tasks["total"]["map_index"] is None
    assert doc["counts"]["succeeded"] == len(doc["tasks"]) == doc["tasks_total"] == 6
    measured = [t["usage"] for t in doc["tasks"] if t["usage"]["source"] is not None]
    assert measured  # the thread executor measures CPU time, not a thread's memory
    assert all(u["source"] == "thread" and u["cpu_time"] > 0 and u["peak_memory"] is None for u in measured)
    assert all(t["node"] for t in doc["tasks"] if t["children"] is None)


def test_show_json_of_a_failed_run_names_the_kind_and_message(runs: tuple[Path, str]) -> None:
    root, db = runs
    doc = _json(root, "show", "bad1", "--store", db, "--json")
    _validator("show").validate(doc)
    assert doc["status"] == "failed" and doc["params"] == {"n": 42}
    (task,) = doc["tasks"]
    assert task["task_id"] == "explode" and task["status"] == "failed" and task["attempts"] == 1
    assert task["error"]["kind"] == "user" and task["error"]["type"] == "ValueError"
    assert task["error"]["message"] == "bad input 42" and "json_flows.py" in task["error"]["frame"]
    assert task["duration"] is None


def test_runs_json_lists_the_same_run_objects_without_tasks(runs: tuple[Path, str]) -> None:
    root, db = runs
    listed = _json(root, "runs", "--store", db, "--json")
    _validator("runs").validate(listed)
    assert [r["run_id"] for r in listed] == ["bad1", "ok1"]  # newest first
    assert all("tasks" not in r for r in listed)
    shown = _json(root, "show", "ok1", "--store", db, "--json")
    shown.pop("tasks"), shown.pop("artifacts")
    assert shown.pop("attention") == []  # all is well with it
    assert listed[1] == shown
    assert _json(root, "runs", "--store", db, "--json", "-n", "1")[0]["run_id"] == "bad1"
    from podium.store import open_store

    open_store(str(root / "empty.db")).close()
    assert _json(root, "runs", "--store", str(root / "empty.db"), "--json") == []
    code, out, err = cli(["runs", "--store", str(root / "none.db"), "--json"], root)
    assert code == 2 and out == "" and "no Podium store at" in err and err.count("\n") == 1


def test_the_server_read_model_validates_against_the_same_schema(runs: tuple[Path, str]) -> None:
    from podium.server.data import run_detail, run_summary
    from podium.store import open_store

    _, db = runs
    store = open_store(db)
    try:
        summary, detail = run_summary(store, "ok1"), run_detail(store, "bad1")
    finally:
        store.close()
    _validator("run").validate(summary)
    _validator("run").validate(detail)
    for task in detail["tasks"]:
        _validator("task").validate(task)
    assert detail["tasks"][0]["error"]["kind"] == "user"


def test_show_json_lists_the_notes_a_run_needs_attention_for(tmp_path: Path) -> None:
    from podium.store.sqlite import SqliteStore

    (tmp_path / "noted_flows.py").write_text(FLOW, encoding="utf-8")  # a module name of its own
    db = str(tmp_path / "noted.db")
    args = ["run", "noted_flows.py:bad", "--store", db, "--run-id", "noted", "--no-progress"]
    code, _, err = cli(args, tmp_path)
    assert code == 1, err
    note = (
        "journal: a damaged record of this run was set aside in p.db.damaged (2 later batch(es) not applied)"
    )
    store = SqliteStore(db)  # as the store's recovery notes it
    try:
        store.note_attention("noted", note)
        store.note_attention("noted", "a second note")
    finally:
        store.close()
    doc = _json(tmp_path, "show", "noted", "--store", db, "--json")
    _validator("show").validate(doc)
    assert doc["attention"] == [note, "a second note"]  # in the order they were noted
    import podium

    assert podium.open_run("noted", store=db).as_json() == doc  # the Python API's document too
    text = cli(["show", "noted", "--store", db], tmp_path)[1]
    assert all(f"needs attention: {n}" in text for n in doc["attention"])  # what the text shows
    wrong = dict(doc, attention=[7])
    assert not _validator("show").is_valid(wrong)  # the schema says: strings


def test_show_json_of_an_unknown_run_is_one_line_and_exit_2(runs: tuple[Path, str]) -> None:
    root, db = runs
    code, out, err = cli(["show", "nope", "--store", db, "--json"], root)
    assert code == 2 and out == "" and err.count("\n") == 1 and "nope" in err


def test_docs_json_md_describes_every_field_of_the_schema() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "json.md").read_text(encoding="utf-8")
    defs = json_schema()["$defs"]
    fields = [
        *defs["run"]["properties"],
        *defs["show"]["properties"],
        *defs["task"]["properties"],
        *defs["task"]["properties"]["usage"]["properties"],
        *defs["artifact"]["properties"],
        *defs["artifact"]["properties"]["lineage"].get("properties", {}),
    ]
    missing = [f for f in fields if f"`{f}`" not in doc]
    assert not missing, f"docs/json.md does not describe: {', '.join(missing)}"
    assert "src/podium/schemas/run.json" in doc and SCHEMA in doc
