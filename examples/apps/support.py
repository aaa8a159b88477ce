"""Customer service: an intent model trained in the pipeline, served as a model service, and a
batch of customer questions answered through it with retrieval of the best FAQ answer.

Data: generated here (``make_data``): 8 intents, each with an FAQ answer and question
templates filled with product names and phrasings; a seeded split keeps some phrasings for
the held-out questions only, so the model must generalise. The report gives accuracy against
the held-out labels, retrieval accuracy (the right FAQ answer) and latency percentiles of the
calls to the served model.

    cd examples/apps && podium run support.py            # report: support-report.md
"""

from __future__ import annotations

import json
import pickle
import random
import statistics
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import podium

HERE = Path(__file__).resolve().parent
INTENTS = {
    "refund": (
        "Refunds go back to your card within 5 days of the return arriving.",
        [
            "i want my money back for the {p}",
            "how do i get a refund on my {p}",
            "refund please, the {p} is broken",
            "can you return the cash for the {p}",
            "the {p} was faulty, i need a refund",
        ],
    ),
    "shipping": (
        "Orders ship within 24 hours; tracking arrives by email.",
        [
            "where is my {p}",
            "when will the {p} arrive",
            "has my {p} shipped yet",
            "tracking number for the {p} order",
            "delivery of the {p} is late",
        ],
    ),
    "password": (
        "Reset your password from the login page with 'Forgot password'.",
        [
            "i forgot my password",
            "cannot log in to my account",
            "reset my login please",
            "my password does not work",
            "locked out of the account after the {p} order",
        ],
    ),
    "warranty": (
        "Every {p} has a two-year warranty covering defects.".replace("{p}", "product"),
        [
            "is the {p} under warranty",
            "how long is the warranty on the {p}",
            "does the guarantee cover my {p}",
            "warranty claim for a {p}",
            "the {p} stopped working, is it covered",
        ],
    ),
    "cancel": (
        "You can cancel an order until it ships, from 'My orders'.",
        [
            "cancel my {p} order",
            "i do not want the {p} anymore, cancel it",
            "stop the order for the {p}",
            "how can i cancel the {p} purchase",
            "please call off my {p} order",
        ],
    ),
    "invoice": (
        "Invoices are in 'My orders' as PDF, or sent on request.",
        [
            "i need an invoice for the {p}",
            "send me the bill for my {p}",
            "where can i download the {p} receipt",
            "vat invoice for the {p} order",
            "my company needs a receipt for the {p}",
        ],
    ),
    "discount": (
        "Students get 10% off with a valid student email.",
        [
            "do you have a discount code",
            "is there a student discount on the {p}",
            "any promo for the {p}",
            "coupon for my next {p}",
            "cheaper price for the {p}",
        ],
    ),
    "human": (
        "An agent answers chats from 8:00 to 20:00 on weekdays.",
        [
            "i want to talk to a person",
            "can a human agent call me",
            "connect me to support staff",
            "speak to someone about the {p}",
            "real person please, not a bot",
        ],
    ),
}
PRODUCTS = ["laptop", "phone", "headset", "monitor", "keyboard", "camera", "tablet", "router"]
PREFIXES = ["", "hi, ", "hello, ", "excuse me, ", "urgent: ", "quick question, "]


@podium.task
def make_data(seed: int, per_intent: int) -> dict:
    """Questions with intent labels; templates 0-3 train, template 4 only in the test set."""
    rng = random.Random(seed)
    train, test = [], []
    for intent, (_, templates) in INTENTS.items():
        for i in range(per_intent):
            t = rng.randrange(len(templates))
            q = rng.choice(PREFIXES) + templates[t].format(p=rng.choice(PRODUCTS))
            (test if t == 4 or i % 5 == 0 else train).append((q, intent))
    rng.shuffle(train)
    rng.shuffle(test)
    return {"train": train, "test": test}


@podium.task
def train(data: dict, out_dir: str) -> str:
    """TF-IDF word and character n-grams + logistic regression, saved for the service."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline, make_union

    texts, labels = zip(*data["train"], strict=True)
    features = make_union(
        TfidfVectorizer(ngram_range=(1, 2)), TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4))
    )
    model = make_pipeline(features, LogisticRegression(max_iter=2000, C=10.0)).fit(texts, labels)
    answers = {k: v[0] for k, v in INTENTS.items()}
    path = Path(out_dir) / "support-model.pkl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps({"model": model, "answers": answers}))
    return str(path)


@podium.task
def ask(url: str, questions: list) -> list:
    """Ask the served model every question of a batch; (question, label, reply, seconds)."""
    out = []
    for q, label in questions:
        t0 = time.perf_counter()
        with urllib.request.urlopen(f"{url}/answer?q={urllib.parse.quote(q)}", timeout=10) as r:
            reply = json.loads(r.read())
        out.append((q, label, reply, time.perf_counter() - t0))
    return out


@podium.task
def batches(data: dict, size: int) -> list:
    test = data["test"]
    return [test[i : i + size] for i in range(0, len(test), size)]


@podium.task
def report(results: list, out_dir: str) -> dict:
    rows = [r for batch in results for r in batch]
    right = sum(reply["intent"] == label for _, label, reply, _ in rows)
    answered = sum(reply["answer"] == INTENTS[label][0] for _, label, reply, _ in rows)
    ms = sorted(s * 1000 for *_, s in rows)
    q = statistics.quantiles(ms, n=100)
    figures = {
        "questions": len(rows),
        "accuracy": round(right / len(rows), 4),
        "answer_accuracy": round(answered / len(rows), 4),
        "latency_ms_p50": round(q[49], 2),
        "latency_ms_p95": round(q[94], 2),
    }
    lines = ["# Customer service: report", "", "| figure | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in figures.items()]
    wrong = [(q_, label, reply["intent"]) for q_, label, reply, _ in rows if reply["intent"] != label][:5]
    lines += ["", "Some misrouted questions:", ""] + [f"- {q_!r}: {a} (said {b})" for q_, a, b in wrong]
    Path(out_dir, "support-report.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return figures


@podium.flow(name="support")
def support(seed: int = 7, per_intent: int = 60, batch: int = 20, out_dir: str = "out"):
    data = make_data(seed=seed, per_intent=per_intent)
    model = train(data=data, out_dir=out_dir)
    svc = podium.service(
        [sys.executable, str(HERE / "serve_support.py"), model],
        ready="/health",
        ready_timeout="60s",
        name="model",
    )
    answers = ask(url=svc["url"], questions=podium.each(batches(data=data, size=batch)))
    return report(results=answers, out_dir=out_dir)
