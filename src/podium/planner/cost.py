"""The cost model: makespan T, resource cost R and the objective F = alpha*T + beta*R.

For a schedule (task -> node, start, end):

- ``T`` is the latest end over all tasks (times are on the run's clock, 0 = the run's start);
- ``R`` is the sum over tasks of ``node.price_per_second(task.resources) * (end - start)``, i.e.
  every resource amount the task holds, times the seconds it holds it on its node, times that
  node's price for the resource (prices are per resource-hour, memory per GiB-hour); a gang
  counts it once per worker, on that worker's node (``slot.ranks``);
- ``F = alpha * T + beta * R``.

Invariant: ``evaluate`` recomputes everything from the slots alone; the planner's reported
figures must equal it.
"""

from __future__ import annotations

from collections.abc import Mapping

from podium.model.cluster import Cluster
from podium.model.problem import PlanRequest
from podium.model.workflow import Objective


def evaluate(
    slots: Mapping[str, object], request: PlanRequest, cluster: Cluster, objective: Objective
) -> tuple[float, float, float]:
    """``(T, R, F)`` of a schedule; ``slots`` maps task id -> an object with node, start, end."""
    makespan = 0.0
    cost = 0.0
    nodes = {n.name: n for n in cluster.nodes}
    for name, task in request.tasks.items():
        slot = slots[name]
        start, end = float(slot.start), float(slot.end)  # type: ignore[attr-defined]
        makespan = max(makespan, end)
        ranks = getattr(slot, "ranks", ()) or (slot.node,) * task.workers  # type: ignore[attr-defined]
        cost += sum(nodes[r].price_per_second(task.resources) for r in ranks) * (end - start)
    return makespan, cost, objective.alpha * makespan + objective.beta * cost
