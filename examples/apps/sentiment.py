"""Financial sentiment monitoring: headlines arriving in time windows, sentiment per topic with
VADER (the lexicon model the vaderSentiment package ships), detection of a negative surge, and
an alert sent to a webhook.

Data: generated here (``headlines``): 12 windows of headlines about 4 topics built from
neutral, positive and negative phrases, with one injected surge (window 8, topic "banks":
mostly negative news). A window is scored on its own (a map over windows); a topic surges when
its mean compound score in a window is below ``threshold`` and below its running baseline by
more than ``drop``. Alerts are POSTed as JSON to ``webhook``.

    cd examples/apps && podium run sentiment.py -p webhook=http://127.0.0.1:8099/alerts
"""

from __future__ import annotations

import json
import random
import statistics
import urllib.request
from pathlib import Path

import podium

TOPICS = ["banks", "energy", "tech", "retail"]
NEUTRAL = [
    "{t} firms report quarterly results",
    "analysts review {t} sector outlook",
    "{t} index closes flat",
    "{t} companies hold annual meetings",
]
GOOD = [
    "{t} stocks rally on strong earnings",
    "{t} sector wins praise for solid growth",
    "investors cheer {t} recovery",
    "{t} profits beat expectations",
]
BAD = [
    "{t} shares plunge amid fraud scandal",
    "panic as {t} losses mount",
    "{t} crisis deepens, investors fear collapse",
    "regulators warn of {t} failures and bankruptcy",
]


@podium.task
def headlines(seed: int, windows: int, per_topic: int, surge_window: int, surge_topic: str) -> list:
    """``windows`` lists of (topic, headline); one (window, topic) is mostly bad news."""
    rng = random.Random(seed)
    out = []
    for w in range(windows):
        items = []
        for t in TOPICS:
            for _ in range(per_topic):
                if w == surge_window and t == surge_topic:
                    pool = rng.choices([BAD, NEUTRAL], weights=[0.8, 0.2])[0]
                else:
                    pool = rng.choices([NEUTRAL, GOOD, BAD], weights=[0.6, 0.3, 0.1])[0]
                items.append((t, rng.choice(pool).format(t=t)))
        out.append({"window": w, "items": items})
    return out


@podium.task
def score(window: dict) -> dict:
    """Mean VADER compound score per topic in one window."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    sia = SentimentIntensityAnalyzer()
    by_topic: dict[str, list[float]] = {}
    for topic, text in window["items"]:
        by_topic.setdefault(topic, []).append(sia.polarity_scores(text)["compound"])
    return {
        "window": window["window"],
        "mean": {t: round(statistics.fmean(v), 4) for t, v in by_topic.items()},
    }


@podium.task
def detect(scores: list, threshold: float, drop: float) -> list:
    """Surges: a topic's window mean below ``threshold`` and ``drop`` below its earlier mean."""
    alerts = []
    seen: dict[str, list[float]] = {}
    for s in sorted(scores, key=lambda s: s["window"]):
        for topic, mean in s["mean"].items():
            past = seen.setdefault(topic, [])
            if past and mean < threshold and statistics.fmean(past) - mean > drop:
                alerts.append(
                    {
                        "window": s["window"],
                        "topic": topic,
                        "mean": mean,
                        "baseline": round(statistics.fmean(past), 4),
                    }
                )
            past.append(mean)
    return alerts


@podium.task
def send(alerts: list, webhook: str) -> int:
    """POST each alert to the webhook (nothing is sent for quiet windows)."""
    for a in alerts:
        req = urllib.request.Request(
            webhook, data=json.dumps(a).encode(), method="POST", headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(req, timeout=10):
            pass
    return len(alerts)


@podium.task
def report(scores: list, alerts: list, sent: int, out_dir: str) -> dict:
    figures = {
        "windows": len(scores),
        "alerts": len(alerts),
        "sent": sent,
        "alerted": [[a["window"], a["topic"]] for a in alerts],
    }
    lines = [
        "# Financial sentiment: report",
        "",
        "| window | " + " | ".join(TOPICS) + " |",
        "|---|" + "---|" * len(TOPICS),
    ]
    for s in sorted(scores, key=lambda s: s["window"]):
        lines.append(f"| {s['window']} | " + " | ".join(f"{s['mean'][t]:+.3f}" for t in TOPICS) + " |")
    lines += ["", f"Alerts sent: {sent}"] + [
        f"- window {a['window']}, {a['topic']}: mean {a['mean']:+.3f} (baseline {a['baseline']:+.3f})"
        for a in alerts
    ]
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    Path(out_dir, "sentiment-report.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return figures


@podium.flow(name="sentiment")
def sentiment(
    webhook: str,
    seed: int = 11,
    windows: int = 12,
    per_topic: int = 25,
    surge_window: int = 8,
    surge_topic: str = "banks",
    threshold: float = -0.2,
    drop: float = 0.3,
    out_dir: str = "out",
):
    news = headlines(
        seed=seed, windows=windows, per_topic=per_topic, surge_window=surge_window, surge_topic=surge_topic
    )
    scores = score(window=podium.each(news))
    alerts = detect(scores=scores, threshold=threshold, drop=drop)
    sent = send(alerts=alerts, webhook=webhook)
    return report(scores=scores, alerts=alerts, sent=sent, out_dir=out_dir)
