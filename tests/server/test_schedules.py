"""Cron parsing, schedules with an injected clock over the server's real records (a restart is
a new Scheduler on the same file), and webhooks delivered to a real HTTP server on loopback."""

from __future__ import annotations

import json
import threading
from datetime import datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from podium.errors import SpecError
from podium.server.config import Webhook, load_server_config
from podium.server.cron import Cron
from podium.server.notifier import Notifier, post_json
from podium.server.scheduler import GRACE, Entry, Scheduler, schedule_key
from podium.server.state import ServerState

UTCZ = ZoneInfo("UTC")
PARIS = ZoneInfo("Europe/Paris")


def ts(text: str, tz: ZoneInfo = UTCZ) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=tz).timestamp()


def iso(t: float, tz: ZoneInfo = UTCZ) -> str:
    return datetime.fromtimestamp(t, tz).strftime("%Y-%m-%d %H:%M")


def test_cron_fields_and_shortcuts() -> None:
    c = Cron.parse("*/15 9-10 * * mon-fri")
    slots = c.slots(UTCZ, ts("2026-12-04 08:00"), ts("2026-12-07 09:20"))  # Fri .. Mon
    assert [iso(s) for s in slots] == [
        "2026-12-04 09:00",
        "2026-12-04 09:15",
        "2026-12-04 09:30",
        "2026-12-04 09:45",
        "2026-12-04 10:00",
        "2026-12-04 10:15",
        "2026-12-04 10:30",
        "2026-12-04 10:45",
        "2026-12-07 09:00",
        "2026-12-07 09:15",
    ]
    assert Cron.parse("@daily").minutes == {0} and Cron.parse("@weekly").weekdays == {0}
    assert Cron.parse("0 0 * * 7").weekdays == {0}  # 7 is Sunday too
    # both day fields restricted: either matches (the 13th, or any Friday)
    c = Cron.parse("0 12 13 * fri")
    days = [iso(s)[:10] for s in c.slots(UTCZ, ts("2026-11-01 00:00"), ts("2026-11-30 23:59"))]
    assert days == ["2026-11-06", "2026-11-13", "2026-11-20", "2026-11-27"]
    assert iso(Cron.parse("0 0 29 2 *").next_after(UTCZ, ts("2026-03-01 00:00"))) == "2028-02-29 00:00"


@pytest.mark.parametrize(
    ("expr", "words"),
    [
        ("", "empty"),
        ("* * * *", "4 fields"),
        ("61 * * * *", "minute: 61 is outside 0-59"),
        ("* * * foo *", "month: 'foo'"),
        ("*/0 * * * *", "step"),
        ("5-1 * * * *", "backwards"),
        ("* 24 * * *", "hour: 24"),
    ],
)
def test_bad_cron_expressions_say_what_is_wrong(expr: str, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        Cron.parse(expr)


def test_cron_across_clock_changes_in_a_zone() -> None:
    c = Cron.parse("30 2 * * *")  # 02:30 Paris: skipped on 2026-03-29, once on 2026-10-25
    spring = c.slots(PARIS, ts("2026-03-28 00:00", PARIS), ts("2026-03-31 00:00", PARIS))
    assert [iso(s, PARIS) for s in spring] == ["2026-03-28 02:30", "2026-03-30 02:30"]
    autumn = c.slots(PARIS, ts("2026-10-24 00:00", PARIS), ts("2026-10-26 12:00", PARIS))
    assert [iso(s, PARIS) for s in autumn] == ["2026-10-24 02:30", "2026-10-25 02:30", "2026-10-26 02:30"]
    assert len(set(autumn)) == 3


def _schedule(tmp: Path, cron: str, catchup: bool, tz: str = "UTC"):
    (tmp / "flow.yaml").write_text("name: f\ntasks: {a: {kind: shell, argv: [true]}}\n")
    (tmp / "podium.toml").write_text(
        f'[[server.workflows]]\npath = "flow.yaml"\n[[server.workflows.schedules]]\ncron = "{cron}"\n'
        f'timezone = "{tz}"\ncatchup = {str(catchup).lower()}\nparams = {{}}\n'
    )
    s = load_server_config(cwd=tmp).workflows[0].schedules[0]
    return [Entry(schedule_key("f", s), "f", s)]


class Starts:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, workflow: str, params: dict) -> str:
        self.calls.append(workflow)
        return f"run-{len(self.calls)}"


def test_a_slot_starts_once_even_across_restarts(tmp_path: Path) -> None:
    entries = _schedule(tmp_path, "0 * * * *", catchup=False)
    state = ServerState(tmp_path / "server.db")
    starts = Starts()
    sched = Scheduler(entries, state, starts)
    t0 = ts("2026-12-02 09:50")
    assert sched.tick(t0) == []  # first sight: nothing before now counts as missed
    assert sched.tick(ts("2026-12-02 10:00:01")) == [("f", ts("2026-12-02 10:00"), "run-1")]
    assert sched.tick(ts("2026-12-02 10:00:03")) == []
    state.close()
    # a restart (new objects on the same records) at the same moment does not start it again
    state = ServerState(tmp_path / "server.db")
    again = Scheduler(entries, state, starts)
    assert again.tick(ts("2026-12-02 10:00:05")) == []
    # even with its cursor lost, the claimed slot is not started twice
    state._exec("DELETE FROM cursors")
    assert again.tick(ts("2026-12-02 09:59:59")) == []
    assert again.tick(ts("2026-12-02 10:00:30")) == []
    assert starts.calls == ["f"]
    assert [r for _s, r in state.fired(entries[0].key)] == ["run-1"]


def test_missed_slots_are_skipped_without_catchup(tmp_path: Path) -> None:
    entries = _schedule(tmp_path, "0 * * * *", catchup=False)
    state = ServerState(tmp_path / "server.db")
    starts = Starts()
    sched = Scheduler(entries, state, starts)
    sched.tick(ts("2026-12-02 09:30"))
    # the server was down from 09:30 to 13:00:20: only the slot within GRACE starts
    fired = sched.tick(ts("2026-12-02 13:00:20"))
    assert [iso(s) for _w, s, _r in fired] == ["2026-12-02 13:00"]
    assert GRACE >= 20
    assert sched.tick(ts("2026-12-02 15:30")) == []  # 14:00 and 15:00 were missed: skipped


def test_missed_slots_run_with_catchup(tmp_path: Path) -> None:
    entries = _schedule(tmp_path, "0 * * * *", catchup=True)
    state = ServerState(tmp_path / "server.db")
    starts = Starts()
    sched = Scheduler(entries, state, starts)
    sched.tick(ts("2026-12-02 09:30"))
    fired = sched.tick(ts("2026-12-02 13:00:20"))
    assert [iso(s) for _w, s, _r in fired] == [
        "2026-12-02 10:00",
        "2026-12-02 11:00",
        "2026-12-02 12:00",
        "2026-12-02 13:00",
    ]
    assert sched.tick(ts("2026-12-02 13:00:40")) == []


def test_a_failed_start_is_recorded_and_not_retried(tmp_path: Path) -> None:
    entries = _schedule(tmp_path, "* * * * *", catchup=False)
    state = ServerState(tmp_path / "server.db")

    def broken(workflow: str, params: dict) -> str:
        raise RuntimeError("no room")

    sched = Scheduler(entries, state, broken)
    sched.tick(ts("2026-12-02 10:00:30"))
    assert sched.tick(ts("2026-12-02 10:01:01")) == [("f", ts("2026-12-02 10:01"), None)]
    assert state.fired(entries[0].key) == [(ts("2026-12-02 10:01"), "error: no room")]
    assert sched.tick(ts("2026-12-02 10:01:02")) == []


def test_schedule_configuration_errors_are_all_reported(tmp_path: Path) -> None:
    (tmp_path / "podium.toml").write_text(
        '[server]\nmax_active_runs = -1\nbogus = 1\n[[server.workflows]]\npath = "missing.yaml"\n'
        '[[server.workflows.schedules]]\ncron = "99 * * * *"\ntimezone = "Mars/Olympus"\ncatchup = "yes"\n'
        '[[server.webhooks]]\nurl = "file:///etc/passwd"\n'
    )
    with pytest.raises(SpecError) as e:
        load_server_config(cwd=tmp_path)
    text = str(e.value)
    for words in (
        "max_active_runs",
        "bogus: unknown key",
        "missing.yaml",
        "minute: 99",
        "Mars/Olympus",
        "catchup",
        "webhooks[0].url",
    ):
        assert words in text, words


class Hook(BaseHTTPRequestHandler):
    answers: list[int] = []
    bodies: list[dict] = []

    def do_POST(self) -> None:
        n = int(self.headers["Content-Length"])
        Hook.bodies.append(json.loads(self.rfile.read(n)))
        code = Hook.answers.pop(0) if Hook.answers else 200
        self.send_response(code)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def hook_url():
    Hook.answers, Hook.bodies = [], []
    srv = HTTPServer(("127.0.0.1", 0), Hook)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/hook"
    srv.shutdown()
    srv.server_close()


def test_webhooks_retry_with_backoff_and_fire_once(tmp_path: Path, hook_url: str) -> None:
    Hook.answers = [503, 500]  # two failures, then it takes it
    pauses: list[float] = []
    state = ServerState(tmp_path / "server.db")
    hooks = (Webhook(hook_url, ("failed",)), Webhook(hook_url + "?all", ("failed", "succeeded"), ("other",)))
    n = Notifier(hooks, state, sleep=pauses.append, base_url="http://127.0.0.1:8765")
    summary = {
        "run_id": "r1",
        "workflow": "wf",
        "status": "failed",
        "params": {},
        "T": 1.0,
        "R": 2.0,
        "F": 3.0,
    }
    assert n.notify(summary) == 1  # the second hook is for workflow "other" only
    n.stop()
    assert pauses == [1.0, 2.0]
    assert len(Hook.bodies) == 3 and Hook.bodies[-1]["status"] == "failed"
    assert Hook.bodies[-1]["event"] == "run.failed" and Hook.bodies[-1]["url"].endswith("#/runs/r1")
    assert state.notifications() == [("r1", "failed", hook_url, 1)]
    # told again (a restart, a second watcher pass): nothing is sent twice
    again = Notifier(hooks, state, sleep=pauses.append)
    assert again.notify(summary) == 0
    assert n.notify({**summary, "status": "succeeded"}) == 0  # not subscribed to successes


def test_a_webhook_that_refuses_is_not_retried(tmp_path: Path, hook_url: str) -> None:
    Hook.answers = [404]
    pauses: list[float] = []
    n = Notifier((Webhook(hook_url),), ServerState(tmp_path / "s.db"), sleep=pauses.append)
    assert not n.deliver(hook_url, {"run_id": "r", "status": "failed"})
    assert pauses == [] and len(Hook.bodies) == 1


def test_post_json_refuses_other_schemes_and_redirects(hook_url: str) -> None:
    with pytest.raises(OSError, match="only http"):
        post_json("file:///etc/passwd", {})
    assert post_json(hook_url, {"a": 1}) == 200
    Hook.answers = [302]
    assert post_json(hook_url, {"a": 1}) == 302  # not followed
