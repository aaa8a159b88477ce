"""The demo pipeline written with the Python API: the same workflow as pipeline.yaml.

Validate with:  podium validate examples/specs/pipeline_flow.py -p label=nightly
"""

from __future__ import annotations

from typing import Annotated

from demo_tasks import featurize, load_data, publish, route, train

import podium


@podium.flow(
    name="demo-pipeline",
    alpha=1,
    beta=0.5,
    fail_fast=False,
    description="Load rows, featurize, train one model per item, then publish or notify.",
)
def pipeline(label: str, n: Annotated[int, "rows to load"] = 100) -> None:
    data = load_data.options(name="load", memory="256MiB", expected_duration="2s")(n=n, seed=7)
    feats = featurize.options(name="features", retries=2, timeout="1m", cache=True)(data=data, scale=0.5)
    scores = train.options(
        memory="512MiB",
        retries=2,
        retry_delay="2s",
        backoff=3,
        max_delay="1m",
        jitter=0,
        retry_on=["user", "timeout"],
        isolation="process",
    )(model=podium.each(data["models"]), features=feats)
    decision = route(scores=scores)
    with podium.when(decision["label"], equals="good"):
        published = publish(
            best=decision["best"], label=podium.template("run-{}-{}", label, decision["best"])
        )
    with podium.when(decision["label"], equals="bad"):
        notified = podium.http(
            "http://127.0.0.1:8000/notify",
            name="notify",
            method="POST",
            json={"label": label, "scores": scores, "literal": "${not_an_expression}"},
            headers={"X-Run": "podium"},
            timeout="10s",
        )
    podium.shell(
        ["python3", "-c", podium.template("print('archived {} rows')", n), 3],
        name="archive",
        env={"LABEL": label},
        after=[published, notified],
        trigger="none_failed",
    )
