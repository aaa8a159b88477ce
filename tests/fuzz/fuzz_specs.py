"""Hypothesis strategies for VALID workflow specs, with their expected outcome, and bounds.

``valid_specs()`` draws a random DAG of ``fuzz_tasks`` calls (sums over upstream results,
lists, maps over lists, templates, ``when`` branches, ``none_failed`` joins, a parameter) as a
spec document, together with an *independent evaluation*: what each task must return and
which tasks must be skipped, computed here by plain Python from the drawn choices, never by
Podium. ``bounded()`` measures an example's wall time and peak traced memory.
"""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from fuzz_tasks import contrib
from hypothesis import strategies as st

#: Per-example bounds the issue asks for: a result or a clean error within 1 s, bounded memory.
MAX_SECONDS = 1.0
MAX_TRACED = 64 * 1024**2


@dataclass
class Drawn:
    """A valid spec document and what running it must give."""

    doc: dict[str, Any]
    params: dict[str, Any]
    values: dict[str, Any] = field(default_factory=dict)  # task -> expected result
    skipped: set[str] = field(default_factory=set)
    deps: dict[str, set[str]] = field(default_factory=dict)


KINDS = ("add", "seq", "map", "echo")


@st.composite
def valid_specs(draw: st.DrawFn, max_tasks: int = 10) -> Drawn:
    n = draw(st.integers(1, max_tasks))
    default = draw(st.integers(-5, 5))
    given = draw(st.none() | st.integers(-50, 50))
    as_text = draw(st.booleans())
    p = default if given is None else given
    params: dict[str, Any] = {} if given is None else {"p": str(given) if as_text else given}
    out = Drawn({"name": "fuzz", "params": {"p": {"type": "int", "default": default}}, "tasks": {}}, params)
    lists: list[str] = []  # tasks whose value is a list of ints (seq)
    ints: list[str] = []  # tasks whose value is an int (add)
    names: list[str] = []
    for i in range(n):
        name = f"n{i}"
        kind = draw(st.sampled_from(KINDS)) if names else draw(st.sampled_from(("add", "seq")))
        if kind == "map" and not lists:
            kind = "add"
        if kind == "echo" and not ints:
            kind = "add"
        task: dict[str, Any] = {}
        deps: list[str] = []
        trigger = "all_success"
        if kind == "add":
            xs = draw(st.lists(st.sampled_from(names), max_size=3, unique=True)) if names else []
            use_param = draw(st.booleans())
            k = draw(st.integers(-9, 9))
            task = {"call": "fuzz_tasks:add", "args": {"k": "${params.p}" if use_param else k}}
            if xs:
                task["args"]["xs"] = [f"${{{x}}}" for x in xs]
            deps = list(xs)
            if xs and draw(st.integers(0, 3)) == 0:
                trigger = "none_failed"
        elif kind == "seq":
            m = draw(st.integers(0, 5))
            task = {"call": "fuzz_tasks:seq", "args": {"n": m}}
        elif kind == "map":
            src = draw(st.sampled_from(lists))
            k = draw(st.integers(-9, 9))
            task = {"call": "fuzz_tasks:item", "args": {"x": f"${{{src}}}", "k": k}, "map": "x"}
            deps = [src]
        else:  # echo: a template of a parameter and an int result
            src = draw(st.sampled_from(ints))
            task = {"call": "fuzz_tasks:echo", "args": {"label": f"v-${{params.p}}-${{{src}}}", "c": 1}}
            deps = [src]
        if trigger != "all_success":
            task["trigger"] = trigger
        when = None
        if ints and kind != "map" and draw(st.integers(0, 3)) == 0:
            on = draw(st.sampled_from(ints))
            hit = on not in out.skipped and draw(st.booleans())
            equals = out.values[on] if hit else (out.values.get(on) or 0) + 1
            task["when"] = {"task": on, "equals": equals}
            when = (on, equals)
        out.doc["tasks"][name] = task
        out.deps[name] = set(deps) | ({when[0]} if when else set())

        # independent evaluation
        upstream_skipped = any(d in out.skipped for d in out.deps[name])
        if (upstream_skipped and trigger == "all_success") or (
            when is not None and (when[0] in out.skipped or out.values[when[0]] != when[1])
        ):
            out.skipped.add(name)
            out.values[name] = None
        elif kind == "add":
            base = p if task["args"]["k"] == "${params.p}" else task["args"]["k"]
            out.values[name] = base + sum(contrib(out.values[d]) for d in deps)
        elif kind == "seq":
            out.values[name] = list(range(task["args"]["n"]))
        elif kind == "map":
            out.values[name] = [2 * x + task["args"]["k"] for x in out.values[deps[0]]]
        else:
            out.values[name] = {"label": f"v-{p}-{out.values[deps[0]]}", "c": 1}
        if name not in out.skipped:
            (lists if kind in ("seq",) else ints if kind == "add" else []).append(name)
        names.append(name)
    return out


@contextmanager
def bounded(what: object) -> Iterator[None]:
    """Run the block under the per-example time and traced-memory bounds."""
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    # CPU time of this process, not wall time: other processes on a busy CI machine must not
    # make an example look slow (tracing memory itself roughly doubles the cost, too)
    t0 = time.process_time()
    try:
        yield
    finally:
        elapsed = time.process_time() - t0
        peak = tracemalloc.get_traced_memory()[1] - base
        if started:
            tracemalloc.stop()
    assert elapsed < MAX_SECONDS, f"{what!r} took {elapsed:.2f}s"
    assert peak < MAX_TRACED, f"{what!r} peaked at {peak / 1024**2:.0f}MiB traced"
