"""Grants: where a task that holds GPUs or has several workers starts, and what it holds.

``Grants`` works on the run's ``RunState``: the ``free`` capacity of each node and a
``GpuPool`` per node (``podium.model.devices``). Dispatch hands it only the tasks in
``RunState.granted`` (their spec asks for a gpu, or for workers > 1: a gang); every other task
keeps the plain fit path, so a run without such tasks pays one ``None`` check per dispatch.

- A task with one worker starts on its planned node if it has one (it waits for it, as every
  planned task does), else on the fastest node where its resources fit and its GPUs can be
  granted: whole devices nobody shares, or a share of the fullest device with room.
- A gang of N workers starts all or none: on one node if one holds them all (its planned node
  first, then the fastest), else spread over the nodes, fastest first, as many on each as fit;
  rank 0 runs on the first. If the N do not fit now, nothing is held.

Invariants: ``take`` changes ``free`` and the pools only when it returns a placement;
``give`` returns exactly what ``take`` granted (device shares are exact integers).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from podium.model.devices import GpuPool
from podium.model.resources import fits
from podium.model.task import Grant
from podium.runtime.state import RunState

#: What the workers of a granted attempt hold, one grant per worker in rank order.
Held = tuple[Grant, ...]
#: A placement: the node of rank 0 and one grant per worker, in rank order.
Placed = tuple[str, Held]


class Grants:
    """Places granted tasks and returns what they held (see the module docstring)."""

    def __init__(self, state: RunState) -> None:
        self.state = state

    def pool(self, node: str) -> GpuPool:
        """The devices of ``node`` (a node that joined during the run gets its pool here)."""
        s = self.state
        pool = s.gpus.get(node)
        if pool is None:
            known = s.nodes.get(node)
            pool = s.gpus[node] = GpuPool(known.gpus if known is not None else ())
        return pool

    def take(self, tid: str, name: str, need: dict[str, float]) -> Placed | None:
        """Where the next attempt of ``tid`` starts now and what each worker holds, or None."""
        s = self.state
        spec = s.specs[name]
        memory = s.resources(tid, spec).gpu_memory
        planned = s.placement.get(name) if tid == name else None  # map items go where they fit
        workers = spec.workers
        if planned is not None and planned in s.free:
            if workers == 1:  # it waits for its planned node
                one = self._one(planned, need, memory)
                return None if one is None else (planned, (one,))
            order = [planned, *(n for n in s.node_names if n != planned)]
        else:
            order = s.node_names
        if workers == 1:
            for node in order:
                one = self._one(node, need, memory)
                if one is not None:
                    return node, (one,)
            return None
        for node in order:  # the whole gang on one node, if one holds it
            got = self._many(node, need, memory, workers)
            if len(got) == workers:
                return node, tuple(got)
            self.give(got)
        got = []
        for node in order:  # else spread over the nodes, fastest first
            got += self._many(node, need, memory, workers - len(got))
            if len(got) == workers:
                return got[0].node, tuple(got)
        self.give(got)
        return None

    def _one(self, node: str, need: dict[str, float], memory: int) -> Grant | None:
        cap = self.state.free.get(node)
        if cap is None or not fits(need, cap):
            return None
        gpus: tuple[int, ...] = ()
        gpu = need.get("gpu", 0.0)
        if gpu:
            got = self.pool(node).take(gpu, memory)
            if got is None:
                return None
            gpus = got
        for k, v in need.items():
            cap[k] -= v
        return Grant(node, need, gpus, memory)

    def _many(self, node: str, need: dict[str, float], memory: int, n: int) -> list[Grant]:
        out: list[Grant] = []
        while len(out) < n:
            one = self._one(node, need, memory)
            if one is None:
                break
            out.append(one)
        return out

    def release(self, node: str, need: dict[str, float], held: Held) -> None:
        """An attempt ended: what its workers held (``held``), else its ``need``, goes back to
        its node (unless the node is gone)."""
        if held:
            self.give(held)
            return
        cap = self.state.free.get(node)
        if cap is not None:  # None: the node is gone
            for k, v in need.items():
                cap[k] += v

    def give(self, grants: Sequence[Grant]) -> None:
        """Return what ``grants`` held to their nodes (a lost node's ``free`` is kept too)."""
        s = self.state
        for g in grants:
            cap = s.free.get(g.node)
            if cap is not None:
                for k, v in g.need.items():
                    cap[k] += v
            if g.gpus:
                self.pool(g.node).give(g.gpus, g.need.get("gpu", 0.0), g.gpu_memory)
        s.dirty = True

    @staticmethod
    def started(node: str, need: dict[str, float], grants: Sequence[Grant]) -> dict[str, Any]:
        """The data of the ``TaskStarted`` of a granted attempt: its GPUs, and for a gang where
        each rank runs (``ranks``: ``[node, [gpu, ...]]`` per rank)."""
        if len(grants) == 1:
            return {"node": node, "res": need, "gpus": list(grants[0].gpus)}
        ranks = [[g.node, list(g.gpus)] for g in grants]
        return {
            "node": node,
            "res": need,
            "gpus": list(grants[0].gpus),
            "workers": len(grants),
            "ranks": ranks,
        }


__all__ = ["Grants", "Held", "Placed"]
