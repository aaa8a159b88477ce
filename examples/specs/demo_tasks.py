"""Task functions used by the example specs (pipeline.yaml and pipeline_flow.py)."""

from __future__ import annotations

from typing import Any

import podium


@podium.task
def load_data(n: int, seed: int = 0) -> dict[str, Any]:
    rows = [(i * 7919 + seed) % 101 for i in range(n)]
    return {"rows": rows, "models": ["mean", "max"]}


@podium.task
def featurize(data: dict[str, Any], scale: float = 1.0) -> list[float]:
    return [r * scale for r in data["rows"]]


@podium.task
def train(model: str, features: list[float]) -> float:
    if not features:
        return 0.0
    return max(features) if model == "max" else sum(features) / len(features)


@podium.task
def route(scores: list[float]) -> dict[str, Any]:
    best = max(scores) if scores else 0.0
    return {"label": "good" if best > 10 else "bad", "best": best}


@podium.task
def publish(best: float, label: str) -> str:
    return f"{label}: {best:.2f}"
