"""Recommendation: implicit-feedback matrix factorisation (alternating least squares with
confidence weights, in numpy) against a popularity baseline, with candidates scored by the
served model.

Data: generated here (``interactions``) with a known structure: users and items each belong to
one of ``groups`` tastes; a user clicks items of their own taste far more often than others,
and some items are popular with everyone. One fifth of each user's clicks is held out. The
factor model is served by a model service; the evaluation asks it for each user's top 10
among the items they have not clicked, and reports precision@10 and recall@10 on the held-out
clicks next to the popularity baseline's.

    cd examples/apps && podium run recommend.py          # report: out/recommend-report.md
"""

from __future__ import annotations

import json
import random
import sys
import urllib.request
from pathlib import Path

import podium

HERE = Path(__file__).resolve().parent


@podium.task
def interactions(seed: int, users: int, items: int, groups: int, clicks: int) -> dict:
    """Clicks per user: mostly items of the user's taste group, some popular items."""
    rng = random.Random(seed)
    item_group = [i % groups for i in range(items)]
    popular = rng.sample(range(items), k=max(1, items // 20))
    train, held = {}, {}
    for u in range(users):
        g = u % groups
        own = [i for i in range(items) if item_group[i] == g]
        chosen: set[int] = set()
        while len(chosen) < clicks:
            r = rng.random()
            chosen.add(
                rng.choice(own) if r < 0.75 else rng.choice(popular) if r < 0.9 else rng.randrange(items)
            )
        seen = sorted(chosen)
        rng.shuffle(seen)
        cut = len(seen) // 5
        held[u], train[u] = sorted(seen[:cut]), sorted(seen[cut:])
    return {"users": users, "items": items, "train": train, "held": held}


@podium.task
def factorise(data: dict, factors: int, iterations: int, reg: float, alpha: float, out_dir: str) -> str:
    """Implicit ALS (Hu, Koren and Volinsky 2008): confidence 1 + alpha for a click."""
    import numpy as np

    n_u, n_i = data["users"], data["items"]
    c = np.zeros((n_u, n_i))
    for u, its in data["train"].items():
        c[int(u), its] = alpha
    p = (c > 0).astype(float)
    rng = np.random.default_rng(0)
    x, y = rng.normal(0, 0.1, (n_u, factors)), rng.normal(0, 0.1, (n_i, factors))
    eye = reg * np.eye(factors)
    for _ in range(iterations):
        for a, b, conf, pref in ((x, y, c, p), (y, x, c.T, p.T)):
            bt_b = b.T @ b
            for r in range(a.shape[0]):
                w = conf[r]  # extra confidence, zero for items not clicked
                a[r] = np.linalg.solve(bt_b + (b.T * w) @ b + eye, (b.T * (1 + w)) @ pref[r])
    path = Path(out_dir) / "recommend-model.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, users=x, items=y)
    return str(path)


@podium.task
def evaluate(url: str, data: dict, k: int) -> dict:
    """precision@k and recall@k of the served model and of popularity, on held-out clicks."""
    counts: dict[int, int] = {}
    for its in data["train"].values():
        for i in its:
            counts[i] = counts.get(i, 0) + 1
    by_popularity = sorted(counts, key=lambda i: (-counts[i], i))
    hits = {"model": 0, "popularity": 0}
    relevant = 0
    for u, held in data["held"].items():
        seen = set(data["train"][u])
        body = json.dumps({"user": int(u), "exclude": sorted(seen), "k": k}).encode()
        req = urllib.request.Request(f"{url}/top", data=body, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            top = json.loads(r.read())["items"]
        pop = [i for i in by_popularity if i not in seen][:k]
        hits["model"] += len(set(top) & set(held))
        hits["popularity"] += len(set(pop) & set(held))
        relevant += len(held)
    n = len(data["held"])
    return {
        f"{m}_{f}": round(h / (n * k) if f == "precision" else h / relevant, 4)
        for m, h in hits.items()
        for f in ("precision", "recall")
    }


@podium.task
def report(figures: dict, k: int, out_dir: str) -> dict:
    lines = ["# Recommendation: report", "", f"| model | precision@{k} | recall@{k} |", "|---|---|---|"]
    for m in ("model", "popularity"):
        lines.append(
            f"| {'matrix factorisation (served)' if m == 'model' else 'popularity'} | "
            f"{figures[m + '_precision']} | {figures[m + '_recall']} |"
        )
    Path(out_dir, "recommend-report.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return figures


@podium.flow(name="recommend")
def recommend(
    seed: int = 3,
    users: int = 300,
    items: int = 200,
    groups: int = 5,
    clicks: int = 20,
    factors: int = 16,
    iterations: int = 8,
    k: int = 10,
    out_dir: str = "out",
):
    data = interactions(seed=seed, users=users, items=items, groups=groups, clicks=clicks)
    model = factorise(data=data, factors=factors, iterations=iterations, reg=0.1, alpha=20.0, out_dir=out_dir)
    svc = podium.service(
        [sys.executable, str(HERE / "serve_recommend.py"), model],
        ready="/health",
        ready_timeout="60s",
        name="model",
    )
    return report(figures=evaluate(url=svc["url"], data=data, k=k), k=k, out_dir=out_dir)
