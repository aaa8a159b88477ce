"""The read-model builder on its own: what it makes of its narrow input (a run header, totals,
task rows), secrets redacted, numbers finite, and rows of other shapes (a store's task row with
JSON text for its resources) accepted as they are."""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jsonschema

from podium.model.events import RunRecord
from podium.runtime.readmodel import RunTotals, TaskFacts, json_schema, run_document, task_object


def _validator(part: str) -> Any:
    schema = json_schema()
    schema.pop("anyOf")
    schema["$ref"] = f"#/$defs/{part}"
    return jsonschema.Draft202012Validator(schema)


RECORD = RunRecord(
    "r1",
    "wf",
    "failed",
    100.0,
    130.0,
    params={"db_password": "pa55word!", "url": "postgresql://u:topsecret@db/x", "n": 3},
)
TOTALS = RunTotals(
    "failed", 101.0, 129.0, 28.0, 28.0, math.inf, 28.0, 1.0, 0.0, {"failed": 1, "pending": 0}, 1
)


def test_a_run_document_redacts_secrets_and_keeps_numbers_finite() -> None:
    task = TaskFacts(
        "load",
        "failed",
        3,
        "n1",
        None,
        120.0,
        125.0,
        None,
        4.5,
        {"cpu": 2.0, "memory": float(1 << 30)},
        1.25,
        1 << 20,
        "process",
        {"kind": "timeout", "type": "TimeoutError", "message": "fetch http://x/?token=abcdef123 timed out"},
        False,
        None,
        None,
    )
    doc = run_document(RECORD, TOTALS, [task])
    _validator("show").validate(doc)
    assert doc["params"] == {"db_password": "***", "url": "postgresql://u:***@db/x", "n": 3}
    assert doc["R"] == 0.0 and doc["T"] == 28.0 and doc["counts"] == {"failed": 1}  # inf is no number
    (t,) = doc["tasks"]
    assert t["error"] == {
        "kind": "timeout",
        "type": "TimeoutError",
        "message": "fetch http://x/?token=*** timed out",
        "frame": None,
    }
    assert t["attempts"] == 3 and t["estimate"] == 4.5 and t["resources"] == {"cpu": 2.0, "memory": 1 << 30}
    assert t["usage"] == {"cpu_time": 1.25, "peak_memory": 1 << 20, "wall_time": None, "source": "process"}


class StoreRow(NamedTuple):
    """A task row as a store keeping a run summary has it: resources as JSON text, cached an int."""

    task_id: str
    state: str = "succeeded"
    attempt: int = 1
    node: str | None = "n1"
    queued_at: float | None = None
    started_at: float | None = 1.0
    finished_at: float | None = 2.0
    duration: float | None = 1.0
    estimate: float | None = None
    resources: str = '{"cpu": 1}'
    cpu_time: float | None = None
    peak_memory: int | None = None
    usage_source: str | None = None
    error: dict[str, Any] | None = None
    cached: int = 1
    skip_reason: str | None = None
    children: int | None = None


def test_any_row_with_the_fields_is_accepted() -> None:
    t = task_object(StoreRow("square[12]"))
    _validator("task").validate(t)
    assert (t["name"], t["map_index"], t["resources"], t["cached"]) == ("square", 12, {"cpu": 1}, True)
    assert t["usage"]["source"] is None  # nothing measured: no source
