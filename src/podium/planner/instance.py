"""A request and a cluster compiled to flat index-based arrays, shared by every planner module.

Tasks and nodes become integers; resource vectors become tuples over the resource names that
some task asks for (``dims``); ``rate[t][n]`` is the cost per second of task t on node n and
``feasible[t]`` the nodes whose capacity can ever hold it. A gang (``workers[t]`` > 1) holds
``req[t]`` once per worker; ``rate`` is per worker and ``feasible`` the nodes that hold at least
one worker. GPU requests also keep their share and memory per device (``gpu``, ``gmem``) and
nodes their devices (``devices``): the list scheduler packs them per device
(``planner.devicefit``). Compiling validates the request and raises ``InfeasibleError``
naming every task no node can hold, and every gang the nodes cannot hold together.

Invariants: pure and deterministic (tasks in request order, nodes in cluster order); nothing
here schedules, it only precomputes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from podium.errors import InfeasibleError, Problem, SpecError
from podium.model.cluster import Cluster
from podium.model.devices import Gpu
from podium.model.graph import topological_order
from podium.model.problem import PlanRequest
from podium.model.resources import Resources

EPS = 1e-9


@dataclass
class Instance:
    names: list[str]
    index: dict[str, int]
    preds: list[list[int]]
    succs: list[list[int]]
    topo: list[int]
    dur: list[float]
    dims: list[str]
    req: list[tuple[float, ...]]
    rkey: list[int]  # index of the task's distinct resource vector
    node_names: list[str]
    cap: list[tuple[float, ...]]
    speed: list[float]
    rate: list[list[float]]  # rate[t][n]: cost per second (0 where infeasible)
    feasible: list[list[int]]
    pinned: list[tuple[int, float] | None]
    release: list[float]  # earliest start (>= now for unpinned tasks)
    now: float
    fast_dur: list[float]  # duration on the fastest node that can hold the task (or its pin)
    cheap_cost: list[float]  # cost on the cheapest node that can hold the task (or its pin)
    workers: list[int] = field(default_factory=list)  # 1, or a gang's size
    gpu: list[float] = field(default_factory=list)  # gpu request (a share below 1, else whole)
    gmem: list[int] = field(default_factory=list)  # gpu_memory per device held
    devices: list[tuple[Gpu, ...]] = field(default_factory=list)  # per node

    @property
    def special(self) -> bool:
        """Whether some task needs device packing or several workers."""
        return any(self.gpu) or any(w > 1 for w in self.workers)

    @property
    def n(self) -> int:
        return len(self.names)

    @property
    def m(self) -> int:
        return len(self.node_names)

    def ndur(self, t: int, node: int) -> float:
        return self.dur[t] / self.speed[node]

    def cost(self, t: int, node: int) -> float:
        return self.rate[t][node] * self.dur[t] / self.speed[node] * self.workers[t]

    def min_cost(self, t: int) -> float:
        return self.cheap_cost[t]

    def min_dur(self, t: int) -> float:
        return self.fast_dur[t]


def compile_instance(request: PlanRequest, cluster: Cluster) -> Instance:
    request.validate()
    names = list(request.tasks)
    index = {nm: i for i, nm in enumerate(names)}
    tasks = [request.tasks[nm] for nm in names]
    deps = {nm: t.deps for nm, t in request.tasks.items()}
    topo = [index[nm] for nm in topological_order(deps)]
    preds = [[index[d] for d in dict.fromkeys(t.deps)] for t in tasks]
    succs: list[list[int]] = [[] for _ in names]
    for i, ps in enumerate(preds):
        for q in ps:
            succs[q].append(i)
    nodes = list(cluster.nodes)
    node_index = {nd.name: j for j, nd in enumerate(nodes)}
    dim_set: dict[str, None] = {}
    vectors: dict[tuple[Resources, int], int] = {}
    rkey: list[int] = []
    for t in tasks:
        key = (t.resources, t.workers)
        if key not in vectors:
            vectors[key] = len(vectors)
            for dim in t.resources.as_dict():
                dim_set[dim] = None
        rkey.append(vectors[key])
    dims = list(dim_set)
    vec_list = [r for r, _ in vectors]
    vec_req = [tuple(r.as_dict().get(k, 0.0) for k in dims) for r in vec_list]
    cap = [tuple(nd.capacity.as_dict().get(k, 0.0) for k in dims) for nd in nodes]
    vec_rate = [[nd.price_per_second(r) for nd in nodes] for r in vec_list]
    vec_feas = []
    for (r, n), rq in zip(vectors, vec_req, strict=True):
        if r.gpu or n > 1:  # devices and gang sizes: how many an idle node holds
            holds = [nd.holds(r) for nd in nodes]
            ok = sum(holds) >= n
            vec_feas.append([j for j in range(len(nodes)) if holds[j] and ok])
        else:
            vec_feas.append(
                [j for j in range(len(nodes)) if all(q <= c + EPS for q, c in zip(rq, cap[j], strict=True))]
            )
    problems: list[Problem] = []
    pinned: list[tuple[int, float] | None] = []
    release: list[float] = []
    for nm, t in zip(names, tasks, strict=True):
        if t.pinned is not None:
            node, start = t.pinned
            if node not in node_index:
                problems.append(Problem(f"tasks.{nm}.pinned", f"unknown node {node!r}"))
                pinned.append(None)
            else:
                pinned.append((node_index[node], float(start)))
            release.append(float(start))
        else:
            pinned.append(None)
            release.append(max(float(t.release), float(request.now)))
    if problems:
        raise SpecError(problems)
    infeasible = cluster.unplaceable(
        {nm: t.resources for nm, t, k in zip(names, tasks, rkey, strict=True) if not vec_feas[k]},
        {nm: t.workers for nm, t in zip(names, tasks, strict=True)},
    )
    if infeasible:
        raise InfeasibleError("; ".join(str(p) for p in infeasible))
    speeds = [float(nd.speed) for nd in nodes]
    vec_fast = [max((speeds[j] for j in f), default=1.0) for f in vec_feas]
    vec_cheap = [min((vec_rate[k][j] / speeds[j] for j in f), default=0.0) for k, f in enumerate(vec_feas)]
    durs = [float(t.duration) for t in tasks]
    fast_dur, cheap_cost = [], []
    for i, k in enumerate(rkey):
        p = pinned[i]
        n = tasks[i].workers
        if p is None:
            fast_dur.append(durs[i] / vec_fast[k])
            cheap_cost.append(durs[i] * vec_cheap[k] * n)
        else:
            fast_dur.append(durs[i] / speeds[p[0]])
            cheap_cost.append(durs[i] * vec_rate[k][p[0]] / speeds[p[0]] * n)
    return Instance(
        names=names,
        index=index,
        preds=preds,
        succs=succs,
        topo=topo,
        dur=durs,
        dims=dims,
        req=[vec_req[k] for k in rkey],
        rkey=rkey,
        node_names=[nd.name for nd in nodes],
        cap=cap,
        speed=speeds,
        rate=[vec_rate[k] for k in rkey],
        feasible=[vec_feas[k] for k in rkey],
        pinned=pinned,
        release=release,
        now=float(request.now),
        fast_dur=fast_dur,
        cheap_cost=cheap_cost,
        workers=[t.workers for t in tasks],
        gpu=[t.resources.gpu for t in tasks],
        gmem=[t.resources.gpu_memory for t in tasks],
        devices=[nd.gpus for nd in nodes],
    )
