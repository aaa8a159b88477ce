"""The learner: robust fits of duration on input size, quantiles, samples from a real event log,
right-sizing suggestions (measured peaks, an OOM remembered), and the engine using what it
learned: declared figures are a prior that three measured runs override."""

from __future__ import annotations

import math
import random

import pytest

from podium.executors.inline import InlineExecutor
from podium.learn import MIN_SAMPLES, Sample, fit, input_size, predict, samples_of, suggest
from podium.model import Node, Resources, TaskSpec, Workflow
from podium.model import events as ev
from podium.model.task import TaskCall
from podium.registry import REGISTRY
from podium.runtime.engine import Engine
from podium.store.memory import MemoryStore
from podium.testing import FakeClock

MIB = 1 << 20
REGISTRY.register("learn_tests:work", lambda data=b"": len(data))


def test_duration_is_fitted_on_input_size_robustly() -> None:
    rng = random.Random(1)
    samples = [
        Sample(duration=0.002 * size**0.8 * math.exp(rng.gauss(0, 0.1)), size=float(size))
        for size in (rng.randint(100, 10_000) for _ in range(40))
    ]
    samples[5] = Sample(duration=500.0, size=1000.0)  # one wild outlier does not tilt the fit
    model = fit(samples)
    assert model is not None and 0.7 < model.slope < 0.9
    p = model.predict(20_000.0)  # beyond every size seen: the slope carries it
    truth = 0.002 * 20_000**0.8
    assert abs(p.p50 / truth - 1) < 0.15 and p.p50 < p.p90 <= p.p95


def test_without_size_spread_the_median_and_quantiles_of_durations() -> None:
    samples = [Sample(duration=d) for d in (1.0, 2.0, 3.0, 4.0, 100.0)]
    p = predict(samples)
    assert p is not None and p.p50 == pytest.approx(3.0) and p.p95 > 20
    assert predict(samples[: MIN_SAMPLES - 1]) is None  # too few: nothing overrides the prior
    failed = [Sample(duration=9.0, outcome="user")] * 5
    assert predict(failed) is None  # only successes say how long a task takes
    # durations on a node twice as fast count double: the estimate is at speed 1
    assert predict([Sample(duration=1.0, speed=2.0)] * 3).p50 == pytest.approx(2.0)  # type: ignore[union-attr]


def test_right_sizing_follows_measured_peaks_and_remembers_an_oom() -> None:
    peaks = [100 * MIB, 120 * MIB, 110 * MIB, 130 * MIB]
    ok = [Sample(duration=2.0, peak_memory=p, cpu_time=0.5) for p in peaks]
    s = suggest(ok)
    assert s.memory is not None and 130 * MIB <= s.memory <= 160 * MIB  # p95 x 1.2, >= max peak
    assert s.cpu == 0.25  # a quarter core: it used 0.25 of one on average
    oom = Sample(duration=1.0, outcome="oom", memory=256 * MIB)
    assert suggest([*ok, oom]).memory == 512 * MIB  # never again below what ran out, grown
    assert suggest(ok[:2]).memory is None  # too few measurements: the declared request stands
    assert input_size({"data": b"x" * 10, "rows": [1, 2, 3], "n": 7}) == 13.0
    assert input_size({"n": 7}) is None


WF = Workflow.build(
    "learning",
    [
        TaskSpec("small", call="learn_tests:work", args={"data": b"x" * 100}, expected_duration=10.0),
        TaskSpec("big", call="learn_tests:work", args={"data": b"x" * 5000}, expected_duration=10.0),
    ],
)


def _run(store: MemoryStore, i: int, learn: bool) -> list[ev.Event]:
    """A run where every task really takes 0.001 s per input byte (simulated time)."""
    clock = FakeClock()

    def duration(call: TaskCall) -> float:
        return 0.001 * len(call.kwargs["data"])

    ex = InlineExecutor([Node("local", Resources.of(cpu=4))], clock=clock, duration=duration)
    assert Engine(store, ex, clock=clock, learn=learn).run(WF, run_id=f"r{i}").ok
    return store.events(f"r{i}")


def _estimates(events: list[ev.Event]) -> dict[str, float | None]:
    return {e.task_id: e.data.get("est") for e in events if e.type == ev.TASK_STARTED}  # type: ignore[misc]


def test_three_runs_override_a_declared_estimate_unless_learning_is_off() -> None:
    store = MemoryStore()
    for i in range(3):
        assert _estimates(_run(store, i, learn=True)) == {"small": 10.0, "big": 10.0}  # the prior
    learned = _estimates(_run(store, 3, learn=True))
    assert learned["small"] == pytest.approx(0.1, rel=0.01) and learned["big"] == pytest.approx(5.0, rel=0.01)
    assert _estimates(_run(store, 4, learn=False)) == {"small": 10.0, "big": 10.0}  # pinned
    samples = samples_of(store.events("r3"))
    assert samples["big"][0].size == 5000.0 and samples["big"][0].estimate == pytest.approx(5.0, rel=0.01)
