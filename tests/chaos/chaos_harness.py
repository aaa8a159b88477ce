"""Building blocks of the chaos scenarios: seeded DAG specs, a faulty store, orchestrators.

- ``layered_spec``: a random layered DAG (seeded) of ``chaos_tasks:effect`` tasks written as a
  YAML spec; each task takes its upstream results as ``inputs`` (so every dependency is a data
  dependency) and has thread or process isolation.
- ``FaultyStore``: wraps a real store; ``append`` raises ``StoreError`` *before* writing with a
  given probability from a seeded rng, and records when each event became durable.
- ``podium_cmd`` / ``cli_env``: the real ``podium`` command line in a subprocess, able to import
  the task module and tagged so the leftover-process check finds everything it started.
- ``engine_for``: an in-process ``Engine`` on a real SQLite store and the real local executor.
"""

from __future__ import annotations

import os
import random
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from chaos_invariants import TAG_ENV

from podium.errors import StoreError
from podium.executors.local import LocalExecutor
from podium.load.spec import load_spec
from podium.model import Node, Resources
from podium.model.events import Event, ResultRecord
from podium.model.workflow import Workflow
from podium.registry import Registry
from podium.runtime.engine import Engine
from podium.types import Store

HERE = Path(__file__).resolve().parent
TASKS_MODULE = "chaos_tasks"
SEED = int(os.environ.get("PODIUM_CHAOS_SEED", "0"))
CPU = 6
MEMORY = "4GiB"


def rng_for(scenario: str) -> random.Random:
    """The scenario's own rng, derived from the session seed (scenarios do not share draws)."""
    return random.Random(f"{SEED}:{scenario}")


def layered_spec(
    rng: random.Random,
    name: str,
    n: int,
    *,
    process_share: float,
    seconds: tuple[float, float],
    process_seconds: tuple[float, float] | None = None,
    attempts: int = 4,
) -> str:
    """A YAML spec: ``n`` tasks in random layers, each depending on 1-3 tasks of earlier layers."""
    tasks: dict[str, Any] = {}
    layers: list[list[str]] = []
    made = 0
    while made < n:
        width = min(n - made, rng.randint(3, 12))
        layer = [f"t{made + i:03d}" for i in range(width)]
        made += width
        for tid in layer:
            deps: list[str] = []
            if layers:
                pool = layers[-1] + [t for lay in layers[:-1] for t in lay]
                k = rng.randint(1, min(3, len(pool)))
                deps = sorted(set([rng.choice(layers[-1]), *rng.sample(pool, k - 1)]))
            process = rng.random() < process_share
            lo, hi = (process_seconds or seconds) if process else seconds
            task: dict[str, Any] = {
                "call": f"{TASKS_MODULE}:effect",
                "args": {
                    "log": "${params.log}",
                    "name": tid,
                    "seconds": round(rng.uniform(lo, hi), 3),
                    "inputs": [f"${{{d}}}" for d in deps],
                },
                "resources": {"cpu": 1},
                "retries": {"attempts": attempts, "delay": "10ms", "jitter": 0},
            }
            if process:
                task["isolation"] = "process"
            tasks[tid] = task
        layers.append(layer)
    doc = {"name": name, "params": {"log": "str"}, "tasks": tasks}
    return yaml.safe_dump(doc, sort_keys=False)


def spec_of(tasks: dict[str, Any], name: str) -> str:
    return yaml.safe_dump({"name": name, "params": {"log": "str"}, "tasks": tasks}, sort_keys=False)


def cluster_file(path: Path, cpu: int = CPU) -> Path:
    path.write_text(
        yaml.safe_dump({"nodes": [{"name": "local", "capacity": {"cpu": cpu, "memory": MEMORY}}]})
    )
    return path


# ----------------------------------------------------------------------------- store faults


class FaultyStore:
    """A real store whose ``append`` fails before writing with probability ``rate``.

    ``durable_ns[seq]`` is the wall-clock time (ns) at which the append carrying event ``seq``
    returned: nothing may act on that event before then."""

    def __init__(self, inner: Store, rate: float, rng: random.Random) -> None:
        self.inner = inner
        self.rate = rate
        self.rng = rng
        self.injected = 0
        self.durable_ns: dict[int, int] = {}

    def append(self, run_id: str, events: Sequence[Event], results: Sequence[ResultRecord] = ()) -> None:
        if self.rate and self.rng.random() < self.rate:
            self.injected += 1
            raise StoreError("injected store write failure (nothing was written)")
        self.inner.append(run_id, events, results)
        now = time.time_ns()
        for e in events:
            self.durable_ns[e.seq] = now

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


# ----------------------------------------------------------------------------- orchestrators


def registry() -> Registry:
    reg = Registry()
    reg.allow(TASKS_MODULE)
    return reg


def load(spec: str, reg: Registry) -> Workflow:
    return load_spec(spec.encode(), "chaos.yaml", "yaml", allow_modules=(TASKS_MODULE,), registry=reg)


def executor(reg: Registry, cpu: int = CPU) -> LocalExecutor:
    return LocalExecutor([Node("local", Resources.of(cpu=cpu, memory=MEMORY))], registry=reg, grace=0.5)


def engine_for(store: Any, ex: LocalExecutor) -> Engine:
    return Engine(store, ex, rng=rng_for("engine"))


def podium_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "podium", *args]


def cli_env(tag: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(HERE), env.get("PYTHONPATH")) if p)
    env[TAG_ENV] = tag
    return env


def run_args(spec: Path, log: Path, run_id: str, db: Path, cluster: Path) -> list[str]:
    return [
        "run",
        str(spec),
        "-p",
        f"log={log}",
        "--run-id",
        run_id,
        "--store",
        str(db),
        "--cluster",
        str(cluster),
        "--allow-module",
        TASKS_MODULE,
        "--no-progress",
    ]
