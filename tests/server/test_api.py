"""The HTTP API on a real ``podium server`` (uvicorn on loopback) with real worker processes."""

from __future__ import annotations

import concurrent.futures
import json
import os
import signal
import subprocess
import sys
import time

import httpx

from podium.runtime.owner import owner_pid

from .conftest import ServerProcess


def _events(
    srv: ServerProcess,
    run_id: str,
    headers: dict[str, str] | None = None,
    after: str = "",
    until: str = "RunSucceeded",
    timeout: float = 60,
) -> list[dict]:
    """Events read from the SSE stream until one of type ``until`` arrives."""
    got: list[dict] = []
    with srv.client.stream(
        "GET", f"/api/runs/{run_id}/stream{after}", headers=headers or {}, timeout=timeout
    ) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            if line.startswith("data: "):
                got += json.loads(line[6:])
                if any(e["type"] == until for e in got):
                    break
    return got


def test_workflows_are_listed_with_typed_params(server: ServerProcess) -> None:
    r = server.get("/api/workflows")
    assert r.status_code == 200
    names = {w["name"]: w for w in r.json()}
    assert set(names) == {"quick", "slow", "<b>xss</b>", "fanout", "steps"}
    params = {p["name"]: p for p in names["quick"]["params"]}
    assert params["n"] == {"name": "n", "type": "int", "required": False, "default": 2, "description": ""}
    assert params["loud"]["type"] == "bool"
    one = server.get("/api/workflows/quick").json()
    assert [(g["name"], g["deps"]) for g in one["graph"]] == [("first", []), ("second", ["first"])]
    assert server.get("/api/workflows/nope").status_code == 404


def test_a_run_started_from_the_api_runs_to_the_end(server: ServerProcess) -> None:
    run_id = server.start_run("quick", {"n": "7", "tag": "hello", "loud": True})
    detail = server.wait_status(run_id, ("succeeded",))
    assert detail["params"] == {"n": 7, "tag": "hello", "ratio": 0.5, "loud": True}
    assert detail["schema"] == "podium.run/1"
    tasks = {t["task_id"]: t for t in detail["tasks"]}
    assert tasks["first"]["status"] == tasks["second"]["status"] == "succeeded"
    assert tasks["second"]["started_at"] >= tasks["first"]["finished_at"]
    assert detail["critical_path"] == ["first", "second"]
    assert sorted(s[0] for s in detail["spans"]) == ["first", "second"]
    assert set(detail["planned"]["spans"]) == {"first", "second"}
    assert detail["T"] > 0.3 and detail["counts"] == {"succeeded": 2}
    task = server.get(f"/api/runs/{run_id}/tasks/second").json()
    assert task["attempts_detail"][0]["outcome"] == "succeeded"
    assert "hello" in json.dumps(task["result"]["value"])
    listed = server.get("/api/runs", params={"workflow": "quick", "limit": 500}).json()
    assert run_id in [i["run_id"] for i in listed["items"]]
    results = server.get(f"/api/runs/{run_id}/results").json()
    assert [i["task_id"] for i in results["items"]] == ["first", "second"]
    logs = server.get(f"/api/runs/{run_id}/logs", params={"task": "second"}).json()
    assert logs["size"] == 6 and logs["text"] == "hello\n" and logs["available"]  # what `echo` wrote
    assert task["log_tail"] == "hello\n" and task["attempts_detail"][0]["log_bytes"] == 6


def test_bad_submissions_get_a_4xx_with_one_line(server: ServerProcess) -> None:
    cases = [
        ({"workflow": "nope"}, 404, "not registered"),
        ({"workflow": "quick", "params": {"n": "abc"}}, 422, "param n: expected int"),
        ({"workflow": "quick", "params": {"zzz": 1}}, 422, "unknown parameter"),
        ({"workflow": "quick", "params": {"tag": "[1, 2]"}}, 422, "param tag: expected str"),
        ({"workflow": "quick", "params": []}, 422, "expected an object"),
        ({"workflow": 3}, 400, "must be a string"),
        ({"params": {}}, 400, "missing field"),
        ({"workflow": "quick", "extra": 1}, 400, "unknown field"),
    ]
    for body, status, words in cases:
        r = server.post("/api/runs", json=body)
        assert r.status_code == status, (body, r.text)
        assert words in r.json()["error"] and "\n" not in r.json()["error"]
    for raw, words in (
        (b"{", "not valid JSON"),
        (b"[1]", "JSON object"),
        (b"\xff\xfe", "UTF-8"),
        (b"[" * 100_000, "nested too deeply"),
    ):
        r = server.post("/api/runs", content=raw)
        assert r.status_code == 400 and words in r.json()["error"], r.text
    r = server.post("/api/runs", content=b"{" + b" " * (2 << 20) + b"}")
    assert r.status_code == 413


def test_unknown_things_are_404_and_bad_queries_400(server: ServerProcess) -> None:
    assert server.get("/api/runs/nope").status_code == 404
    assert server.get("/api/runs/nope/tasks/x").status_code == 404
    assert server.get("/api/runs/nope/stream").status_code == 404
    assert server.get("/api/nothing").json() == {"error": "no route '/api/nothing'"}
    assert server.client.delete("/api/runs").status_code == 405
    for q in ({"limit": "0"}, {"limit": "x"}, {"status": "weird"}, {"bogus": "1"}, {"offset": "-1"}):
        r = server.get("/api/runs", params=q)
        assert r.status_code == 400, (q, r.text)
    r = server.get("/api/runs/nope/stream", headers={"Last-Event-ID": "abc"})
    assert r.status_code in (400, 404)


def test_stream_misses_nothing_across_reconnects(server: ServerProcess) -> None:
    run_id = server.start_run("fanout", {"n": 30})
    events = _events(server, run_id)
    seqs = [e["seq"] for e in events]
    assert seqs == list(range(1, len(seqs) + 1))
    assert sum(e["type"] == "TaskSucceeded" for e in events) >= 32
    # reconnect after event k: the stream resumes at k + 1, whether told by header or query
    k = len(seqs) // 2
    again = _events(server, run_id, headers={"Last-Event-ID": str(k)})
    assert [e["seq"] for e in again] == seqs[k:]
    again = _events(server, run_id, after=f"?after={k + 3}")
    assert [e["seq"] for e in again] == seqs[k + 3 :]
    # a browser reconnecting repeats its first URL and sends Last-Event-ID: the header wins
    again = _events(server, run_id, headers={"Last-Event-ID": str(k + 5)}, after="?after=1")
    assert [e["seq"] for e in again] == seqs[k + 5 :]
    detail = server.get(f"/api/runs/{run_id}").json()
    assert detail["maps"][0]["children"] == 30 and detail["maps"][0]["counts"] == {"succeeded": 30}
    page = server.get(f"/api/runs/{run_id}/events", params={"after": 5, "limit": 3}).json()
    assert [e["seq"] for e in page["events"]] == [6, 7, 8] and page["last_seq"] == 8


def _live_events(srv: ServerProcess, run_id: str) -> tuple[list[dict], dict[int, float]]:
    """The run's events from its stream, with the wall time each one arrived."""
    got: list[dict] = []
    arrived: dict[int, float] = {}
    with srv.client.stream("GET", f"/api/runs/{run_id}/stream", timeout=60) as r:
        for line in r.iter_lines():
            if line.startswith("data: "):
                for e in json.loads(line[6:]):
                    got.append(e)
                    arrived[e["seq"]] = time.time()
                if got[-1]["type"] == "RunSucceeded":
                    break
    return got, arrived


def test_a_cli_run_and_an_api_run_both_appear_live(server: ServerProcess) -> None:
    env = dict(os.environ)
    env.pop("PODIUM_STORE", None)
    with server.client.stream("GET", "/api/stream/runs", timeout=60) as stream:
        cli = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "podium",
                "run",
                "steps.yaml",
                "--store",
                server.store,
                "--no-progress",
                "--run-id",
                "from-cli-1",
            ],
            cwd=server.root,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        api_run = server.start_run("steps")
        followed: dict[str, concurrent.futures.Future] = {}
        pool = concurrent.futures.ThreadPoolExecutor(2)
        for line in stream.iter_lines():  # both show up on the runs stream while they run: follow them
            if line.startswith("data: "):
                for s in json.loads(line[6:]):
                    wanted = s["run_id"] in ("from-cli-1", api_run) and s["run_id"] not in followed
                    if wanted and s["status"] in ("created", "running"):
                        followed[s["run_id"]] = pool.submit(_live_events, server, s["run_id"])
            if len(followed) == 2:
                break
    for run_id, fut in followed.items():
        events, arrived = fut.result(60)
        assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
        end = events[-1]["ts"]
        first_done = next(e for e in events if e["type"] == "TaskSucceeded")
        # the first step's end reached this client while the run was still going (about 1 s more)
        assert arrived[first_done["seq"]] < end, run_id
    pool.shutdown()
    assert cli.wait(30) == 0


def test_cancel_and_resume(server: ServerProcess) -> None:
    run_id = server.start_run("slow")
    server.wait_status(run_id, ("running",))
    deadline = time.monotonic() + 30
    while not any(t["status"] == "running" for t in server.get(f"/api/runs/{run_id}").json()["tasks"]):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    r = server.post(f"/api/runs/{run_id}/cancel")
    assert r.status_code == 202
    detail = server.wait_status(run_id, ("cancelled",), timeout=30)
    assert {t["task_id"]: t["status"] for t in detail["tasks"]}["wait"] == "cancelled"
    assert server.post(f"/api/runs/{run_id}/cancel").status_code == 409
    r = server.post(f"/api/runs/{run_id}/resume")
    assert r.status_code == 202, r.text
    server.wait_status(run_id, ("running",))
    assert server.post(f"/api/runs/{run_id}/resume").status_code == 409  # still running
    assert server.post(f"/api/runs/{run_id}/cancel").status_code == 202
    server.wait_status(run_id, ("cancelled",), timeout=30)


def test_resume_refuses_a_run_of_an_unregistered_workflow(server: ServerProcess, tmp_path) -> None:
    spec = tmp_path / "other.yaml"
    spec.write_text("name: other\ntasks:\n  a: {kind: shell, argv: [sh, -c, 'exit 3']}\n")
    env = dict(os.environ)
    env.pop("PODIUM_STORE", None)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "podium",
            "run",
            str(spec),
            "--store",
            server.store,
            "--no-progress",
            "--run-id",
            "unregistered-1",
            "--allow-program",
            "sh",
        ],
        env=env,
        capture_output=True,
        timeout=60,
    )
    assert server.get("/api/runs/unregistered-1").json()["status"] == "failed"
    r = server.post("/api/runs/unregistered-1/resume")
    assert r.status_code == 403 and "podium resume" in r.json()["error"]
    detail = server.get("/api/runs/unregistered-1").json()
    # the graph comes from what the run recorded, not from a registered workflow
    assert detail["graph"] == [{"name": "a", "deps": [], "kind": None, "map": False}]
    assert detail["tasks"][0]["error"]["kind"] == "user"


def test_a_worker_that_dies_is_resumed(server: ServerProcess) -> None:
    run_id = server.start_run("slow")
    server.wait_status(run_id, ("running",))
    pid = server.get(f"/api/runs/{run_id}").json()["worker"]["pid"]
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while True:
        d = server.get(f"/api/runs/{run_id}").json()
        w = d["worker"]
        if (
            w["restarts"] == 1
            and d["status"] == "running"
            and w["pid"] != pid
            and owner_pid(d["owner"]) == w["pid"]
        ):
            break
        assert time.monotonic() < deadline, d
        time.sleep(0.2)
    assert server.get("/healthz").status_code == 200
    server.post(f"/api/runs/{run_id}/cancel")
    server.wait_status(run_id, ("cancelled",), timeout=30)


def test_secrets_in_params_are_redacted(server: ServerProcess) -> None:
    run_id = server.start_run("quick", {"tag": "https://bob:hunter2@example.com/x"})
    d = server.wait_status(run_id, ("succeeded",))
    assert d["params"]["tag"] == "https://bob:***@example.com/x"
    body = httpx.get(f"{server.url}/api/runs/{run_id}/events", headers=server.client.headers).text
    assert "hunter2" not in body


def test_metrics_count_the_runs_of_the_store_behind_the_token(server: ServerProcess) -> None:
    """``/metrics`` (Prometheus text) counts what the run's own event log says, once per event
    however often it is scraped; without the token it is a 401 like every other route."""
    before = server.get("/metrics")
    assert before.status_code == 200 and before.headers["content-type"].startswith("text/plain")
    run_id = server.start_run("quick", {"n": "3"})
    server.wait_status(run_id, ("succeeded",))
    events = server.get(f"/api/runs/{run_id}/events", params={"limit": 1000}).json()["events"]
    started = sum(1 for e in events if e["type"] == "TaskStarted" and e["task_id"] == "second")
    line = 'podium_task_transitions_total{state="running",task="second",workflow="quick"}'
    seen = []
    for _ in range(2):  # a second scrape counts nothing twice
        text = server.get("/metrics").text
        counts = [ln for ln in text.splitlines() if ln.startswith(line)]
        assert counts and 'podium_runs_total{status="succeeded",workflow="quick"}' in text
        seen.append(float(counts[0].split()[-1]))
    assert seen[0] == seen[1] >= started == 1
    assert server.anon.get("/metrics").status_code == 401


def test_resume_from_a_task_runs_it_and_its_downstream_again(server: ServerProcess) -> None:
    run_id = server.start_run("steps")
    server.wait_status(run_id, ("succeeded",))
    r = server.post(f"/api/runs/{run_id}/resume", json={"from": "tow"})
    assert (
        r.status_code == 404
        and "no task 'tow'" in r.json()["error"]
        and "did you mean 'two'" in r.json()["error"]
    )
    r = server.post(f"/api/runs/{run_id}/resume", json={"from": "two"})
    assert r.status_code == 202, r.text
    server.wait_status(run_id, ("running",))
    detail = server.wait_status(run_id, ("succeeded",))
    events = server.get(f"/api/runs/{run_id}/events").json()["events"]
    cleared = [(e["task_id"], e["data"]) for e in events if e["type"] == "TaskCleared"]
    assert cleared == [(t, {"from": "two", "was": "succeeded"}) for t in ("two", "three")]
    starts = [e["task_id"] for e in events if e["type"] == "TaskStarted"]
    assert starts == ["one", "two", "three", "two", "three"]  # `one` kept its result
    assert {t["task_id"]: t["status"] for t in detail["tasks"]} == dict.fromkeys(
        ("one", "two", "three"), "succeeded"
    )
