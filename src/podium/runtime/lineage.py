"""Lineage of artifacts: which run, task, attempt and inputs produced each one.

When a result is written to the artifact store, its reference records where it came from:
``{"run", "workflow", "task", "attempt", "inputs"}``, where ``inputs`` maps each upstream task
(each item of an upstream map that was itself an artifact) to its artifact as
``algorithm:hex``, or null for an upstream whose result is inline in the run store. The
reference is committed with the task's ``TaskSucceeded``, authenticated like every result.

Invariants: lineage is computed only when an artifact is written (an inline result costs
nothing); ``RunState.refs`` knows every committed artifact of the run (this process's, a resumed
run's earlier ones, cache hits); a folder artifact's downstream value is the ``Path`` of its
stored read-only copy, never the task's own path.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from podium.model.events import ResultRecord
from podium.runtime import codec
from podium.runtime.view import base_name

if TYPE_CHECKING:
    from podium.runtime.state import RunState


class Lineage:
    """``lineage(task_id, attempt)`` of one run (see the module docstring)."""

    __slots__ = ("state",)

    def __init__(self, state: RunState) -> None:
        self.state = state

    def __call__(self, task_id: str, attempt: int) -> dict[str, Any]:
        s = self.state
        spec = s.specs.get(base_name(task_id))
        inputs: dict[str, str | None] = {}
        for d in spec.deps if spec is not None else ():
            up = s.specs.get(d)
            if up is not None and up.map_over is not None and d not in s.refs:
                items = s.values.get(d)
                for i in range(len(items) if isinstance(items, list) else 0):
                    ref = s.refs.get(f"{d}[{i}]")
                    if ref is not None:
                        inputs[f"{d}[{i}]"] = ref
                if not any(k.startswith(f"{d}[") for k in inputs):
                    inputs[d] = None
            else:
                inputs[d] = s.refs.get(d)
        return {"run": s.run_id, "workflow": s.wf.name, "task": task_id, "attempt": attempt, "inputs": inputs}


def committed(s: RunState, rec: ResultRecord, value: Any) -> Any:
    """Note the artifact ``rec`` refers to; returns the value downstream tasks receive."""
    ref = codec.reference(rec)
    if ref is None:
        return value
    s.refs[rec.task_id] = ref.name
    return codec.decode(rec, s.artifacts, verify=False) if ref.tree is not None else value


def artifact_objects(results: dict[str, ResultRecord]) -> list[dict[str, Any]]:
    """The artifacts among a run's committed ``results`` (``Store.results(run_id,
    artifacts_only=True)``), one object each, by task id: the read model's ``artifacts`` list
    (docs/json.md) and ``podium artifacts --json``'s core. ``authenticated`` says whether the
    reference passed its checksum/HMAC (an unauthenticated one's lineage is not to be trusted)."""
    out = []
    for task_id in sorted(results):
        rec = results[task_id]
        ref = codec.reference(rec)
        if ref is None:
            continue
        out.append(
            {
                "task_id": task_id,
                "attempt": rec.attempt,
                "kind": "value" if ref.tree is None else "folder",
                "name": ref.tree,
                "algorithm": ref.algorithm,
                "digest": ref.digest,
                "size": ref.size,
                "authenticated": rec.verify(),
                "lineage": ref.lineage,
            }
        )
    return out
