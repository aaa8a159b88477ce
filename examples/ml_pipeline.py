"""A real machine-learning pipeline on the embedded engine.

load -> prepare -> train four candidate models in parallel (each with its own declared
resources) -> evaluate every candidate (a map over a list known only at run time) -> select
the best by measured validation accuracy -> branch: if it clears the bar, run batch inference
with it (a map over batches) and write the report; otherwise write a rejection report.

Run it:  podium run examples/ml_pipeline.py -p out_dir=out --gantt out/gantt.html
The data set is scikit-learn's bundled handwritten digits (no download).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import podium


@podium.task(cpu=1, memory="256MiB", expected_duration="0.5s")
def load_data() -> dict[str, Any]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    return {"X": digits.data, "y": digits.target, "names": [str(n) for n in digits.target_names]}


@podium.task(cpu=1, memory="256MiB", expected_duration="0.2s")
def prepare(data: dict[str, Any], test_size: float, seed: int) -> dict[str, Any]:
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    x_train, x_test, y_train, y_test = train_test_split(
        data["X"], data["y"], test_size=test_size, random_state=seed, stratify=data["y"]
    )
    x_fit, x_val, y_fit, y_val = train_test_split(
        x_train, y_train, test_size=0.25, random_state=seed, stratify=y_train
    )
    scaler = StandardScaler().fit(x_fit)
    return {
        "x_fit": scaler.transform(x_fit),
        "y_fit": y_fit,
        "x_val": scaler.transform(x_val),
        "y_val": y_val,
        "x_test": scaler.transform(x_test),
        "y_test": y_test,
        "names": data["names"],
    }


@podium.task(cpu=1, memory="512MiB", expected_duration="1s")
def train_logreg(features: dict[str, Any], seed: int) -> dict[str, Any]:
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(max_iter=2000, random_state=seed)
    return {"name": "logistic-regression", "model": model.fit(features["x_fit"], features["y_fit"])}


@podium.task(cpu=2, memory="1GiB", expected_duration="3s")
def train_forest(features: dict[str, Any], seed: int, trees: int) -> dict[str, Any]:
    from sklearn.ensemble import RandomForestClassifier

    model = RandomForestClassifier(n_estimators=trees, n_jobs=2, random_state=seed)
    return {"name": "random-forest", "model": model.fit(features["x_fit"], features["y_fit"])}


@podium.task(cpu=1, memory="512MiB", expected_duration="1s")
def train_svm(features: dict[str, Any]) -> dict[str, Any]:
    from sklearn.svm import SVC

    model = SVC(C=5.0, gamma="scale")
    return {"name": "svm-rbf", "model": model.fit(features["x_fit"], features["y_fit"])}


@podium.task(cpu=1, memory="768MiB", expected_duration="4s", retries=1)
def train_mlp(features: dict[str, Any], seed: int) -> dict[str, Any]:
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    model = MLPClassifier(hidden_layer_sizes=(128,), max_iter=200, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(features["x_fit"], features["y_fit"])
    return {"name": "mlp", "model": model}


@podium.task(cpu=0.25, expected_duration="0.05s")
def collect(logreg: dict, forest: dict, svm: dict, mlp: dict) -> list[dict[str, Any]]:
    return [logreg, forest, svm, mlp]


@podium.task(cpu=1, expected_duration="0.3s")
def evaluate(candidate: dict[str, Any], features: dict[str, Any]) -> dict[str, Any]:
    from sklearn.metrics import accuracy_score, f1_score

    pred = candidate["model"].predict(features["x_val"])
    return {
        "name": candidate["name"],
        "accuracy": float(accuracy_score(features["y_val"], pred)),
        "macro_f1": float(f1_score(features["y_val"], pred, average="macro")),
    }


@podium.task(cpu=0.25, expected_duration="0.05s")
def select_best(scores: list[dict[str, Any]], min_accuracy: float) -> dict[str, Any]:
    best = max(scores, key=lambda s: (s["accuracy"], s["macro_f1"]))
    return {**best, "decision": "deploy" if best["accuracy"] >= min_accuracy else "reject"}


@podium.task(cpu=0.25, expected_duration="0.05s")
def batches(features: dict[str, Any], size: int) -> list[list[int]]:
    n = len(features["y_test"])
    return [list(range(i, min(i + size, n))) for i in range(0, n, size)]


@podium.task(cpu=1, expected_duration="0.2s")
def predict(rows: list[int], candidates: list[dict], best: dict, features: dict) -> list[int]:
    model = next(c["model"] for c in candidates if c["name"] == best["name"])
    return [int(p) for p in model.predict(features["x_test"][rows])]


@podium.task(cpu=0.25, expected_duration="0.2s")
def write_report(
    predictions: list[list[int]], best: dict, scores: list[dict], features: dict, out_dir: str
) -> dict[str, Any]:
    from sklearn.metrics import accuracy_score, classification_report

    y_pred = [p for batch in predictions for p in batch]
    y_true = [int(y) for y in features["y_test"]]
    text = classification_report(y_true, y_pred, target_names=features["names"], digits=3)
    accuracy = float(accuracy_score(y_true, y_pred))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "classification_report.txt").write_text(text, encoding="utf-8")
    rows = "".join(
        f"<tr><td>{s['name']}</td><td>{s['accuracy']:.4f}</td><td>{s['macro_f1']:.4f}</td></tr>"
        for s in scores
    )
    html = (
        "<!doctype html><meta charset=utf-8><title>Podium ML pipeline report</title>"
        "<style>body{font-family:sans-serif;margin:2em}"
        "td,th{padding:4px 12px;border-bottom:1px solid #ddd}</style>"
        f"<h1>Digits classifier</h1><p>Selected model: <b>{best['name']}</b> "
        f"(validation accuracy {best['accuracy']:.4f}); test accuracy <b>{accuracy:.4f}</b> "
        f"on {len(y_true)} held-out images.</p>"
        "<h2>Candidates (validation)</h2>"
        f"<table><tr><th>model</th><th>accuracy</th><th>macro F1</th></tr>{rows}"
        f"</table><h2>Classification report (test)</h2><pre>{text}</pre>"
        "<p>The run's Gantt chart: <a href='gantt.html'>gantt.html</a></p>"
    )
    (out / "report.html").write_text(html, encoding="utf-8")
    summary = {"model": best["name"], "test_accuracy": accuracy, "report": str(out / "report.html")}
    (out / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    return summary


@podium.task(cpu=0.25, expected_duration="0.05s")
def write_rejection(best: dict, out_dir: str) -> dict[str, Any]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    msg = f"no candidate reached the bar: best was {best['name']} at {best['accuracy']:.4f}\n"
    (out / "rejected.txt").write_text(msg, encoding="utf-8")
    return {"model": None, "reason": msg.strip()}


@podium.flow(name="digits-classifier", alpha=1.0, beta=0.5)
def pipeline(
    out_dir: str = "out", test_size: float = 0.3, seed: int = 0, trees: int = 200, min_accuracy: float = 0.9
) -> None:
    data = load_data()
    features = prepare(data, test_size=test_size, seed=seed)
    candidates = collect(
        logreg=train_logreg(features, seed=seed),
        forest=train_forest(features, seed=seed, trees=trees),
        svm=train_svm(features),
        mlp=train_mlp(features, seed=seed),
    )
    scores = evaluate(candidate=podium.each(candidates), features=features)
    best = select_best(scores, min_accuracy=min_accuracy)
    with podium.when(best["decision"], equals="deploy"):
        predictions = predict(
            rows=podium.each(batches(features, size=128)), candidates=candidates, best=best, features=features
        )
        write_report(predictions, best=best, scores=scores, features=features, out_dir=out_dir)
    with podium.when(best["decision"], equals="reject"):
        write_rejection(best, out_dir=out_dir)
