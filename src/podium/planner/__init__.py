"""The planner: pure functions from (request, cluster, objective) to a Plan minimising alpha*T + beta*R.

Entry point ``podium.planner.plan.plan``; data in ``problem`` (PlanRequest, PlanTask), the cost
model in ``cost``, bounds in ``bounds``, list scheduling in ``listsched``, the heuristic search
in ``search``, CP-SAT in ``exact`` (ortools imported lazily), estimates in ``estimates``.
Nothing here reads a clock, does I/O or draws unseeded randomness.
"""
