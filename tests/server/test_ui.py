"""The web UI in a real Chromium (Playwright with Debian's chromium) against a real server:
live task states, the Gantt, the task drawer, cancel, the start form, no console errors, and
user strings rendered as text. With PODIUM_UI_SHOTS=DIR it also saves the screenshots that
docs/ui.md shows."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect

from chromium import ARGS, CHROMIUM

from .conftest import ServerProcess

XSS = "<img src=x onerror=alert(1)>"

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")


@pytest.fixture(scope="module")
def browser() -> Iterator:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, server: ServerProcess, tmp_path: Path) -> Iterator:
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = ctx.new_page()
    problems: list[str] = []
    dialogs: list[str] = []
    pg.on(
        "console",
        lambda m: problems.append(f"console {m.type}: {m.text}") if m.type in ("error", "warning") else None,
    )
    pg.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    pg.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    pg.goto(f"{server.url}/?token={server.token}")  # the login URL: sets the cookie, drops the token
    assert "token" not in pg.url
    pg.problems, pg.dialogs, pg.expected = problems, dialogs, []
    yield pg
    ctx.close()
    assert not dialogs, dialogs
    assert not [p for p in problems if not any(x in p for x in pg.expected)], problems


def shot(pg, name: str) -> None:
    out = os.environ.get("PODIUM_UI_SHOTS")
    if out:
        Path(out).mkdir(parents=True, exist_ok=True)
        pg.screenshot(path=str(Path(out) / name))


def test_a_run_started_from_the_form_turns_green_live(page, server: ServerProcess) -> None:
    page.goto(f"{server.url}/#/start?workflow=steps")
    page.wait_for_selector("#start-form")
    page.click("#start-submit")
    page.wait_for_selector("#dag [data-task='one']")
    # the first step is seen running, then every step succeeded, without reloading the page
    page.wait_for_selector("#dag [data-task='one'][data-status='running']", timeout=15_000)
    page.wait_for_selector("#dag [data-task='two'][data-status='running']", timeout=15_000)
    shot(page, "run-live.png")
    page.wait_for_selector("#dag [data-task='three'][data-status='succeeded']", timeout=20_000)
    expect(page.locator("h1 .badge")).to_have_text("succeeded")
    gantt = page.locator("#gantt")
    assert int(gantt.get_attribute("data-bars")) == 3
    assert int(gantt.get_attribute("data-planned")) == 3
    assert gantt.get_attribute("data-lanes") == "local,plan"
    expect(gantt).to_have_attribute("data-critical", "3")
    assert int(page.locator("#usage").get_attribute("data-series")) >= 1
    assert page.locator("#stat-tasks b").text_content() == "3 / 3"
    # the task drawer: attempts, resources, output and the result
    page.click("#task-rows .trow[data-task='three']")
    page.wait_for_selector("#attempts")
    assert page.locator("#drawer-title").text_content() == "three"
    assert page.locator("#attempts tr").count() == 2
    assert "finished" in page.locator("#result-preview").text_content()
    assert page.locator("#log-tail").text_content()  # says what output there is (or that none is kept)
    shot(page, "task-drawer.png")
    page.keyboard.press("Escape")
    assert page.locator("#drawer").is_hidden()


def test_the_runs_list_is_live_and_filterable(page, server: ServerProcess) -> None:
    page.goto(f"{server.url}/#/")
    page.wait_for_selector("#runs-body")
    run_id = server.start_run("quick")  # started elsewhere: the list shows it without a reload
    page.wait_for_selector(f"#runs-body tr[data-run='{run_id}']", timeout=10_000)
    expect(page.locator(f"#runs-body tr[data-run='{run_id}'] .badge")).to_have_text(
        "succeeded", timeout=20_000
    )
    page.select_option("#f-status", "cancelled")
    expect(page.locator(f"#runs-body tr[data-run='{run_id}']")).to_have_count(0)
    page.select_option("#f-status", "")
    page.fill("#f-q", run_id)
    expect(page.locator("#runs-body tr")).to_have_count(1)


def test_cancel_from_the_run_page(page, server: ServerProcess) -> None:
    run_id = server.start_run("slow")
    page.goto(f"{server.url}/#/runs/{run_id}")
    page.wait_for_selector("#dag [data-task='wait'][data-status='running']", timeout=15_000)
    # the engine owns the run once its task runs; then the button stops it
    page.click("#cancel")
    expect(page.locator("h1 .badge")).to_have_text("cancelled", timeout=20_000)
    page.wait_for_selector("#dag [data-task='wait'][data-status='cancelled']")
    assert page.locator("#resume").is_enabled()


def test_user_strings_render_as_text(page, server: ServerProcess) -> None:
    run_id = server.start_run("<b>xss</b>")
    server.wait_status(run_id, ("succeeded",))
    page.goto(f"{server.url}/#/runs/{run_id}")
    page.wait_for_selector("#task-rows .trow[data-task]")
    assert page.locator("#dag title").first.text_content() == XSS
    assert page.locator(f"#task-rows .trow[data-task='{XSS}'] span").first.text_content() == XSS
    page.click(f"#task-rows .trow[data-task='{XSS}']")
    page.wait_for_selector("#attempts")
    assert page.locator("#drawer-title").text_content() == XSS
    assert "<i>out</i>" in page.locator("#result-preview").text_content()
    # nothing of it became markup: no <img>, <b>, <script> or <i> from the data exists
    assert (
        page.evaluate(
            "document.querySelectorAll('main img, main b b, main script, aside img, aside i').length"
        )
        == 0
    )
    page.goto(f"{server.url}/#/")
    page.wait_for_selector(f"#runs-body tr[data-run='{run_id}']")
    assert page.locator(f"#runs-body tr[data-run='{run_id}'] td").nth(1).text_content() == "<b>xss</b>"
    assert page.evaluate("document.querySelectorAll('#runs-body b').length") == 0
    time.sleep(0.3)  # a late alert() would show up as a dialog


def test_the_form_reports_bad_parameters(page, server: ServerProcess) -> None:
    page.expected.append("status of 422")  # the browser logs the refused request itself
    page.goto(f"{server.url}/#/start?workflow=quick")
    page.wait_for_selector("#p-n")
    page.fill("#p-tag", "[1, 2]")
    page.click("#start-submit")
    expect(page.locator("#start-error")).to_contain_text("param tag")
    assert page.url.endswith("#/start?workflow=quick")


def test_resume_from_a_task_runs_it_and_its_downstream_again(page, server: ServerProcess) -> None:
    run_id = server.start_run("steps")
    server.wait_status(run_id, ("succeeded",))
    page.goto(f"{server.url}/#/runs/{run_id}")
    page.wait_for_selector("#dag [data-task='three'][data-status='succeeded']")
    page.click("#task-rows .trow[data-task='two']")
    page.click("#resume-from")  # asks first: nothing is sent yet
    expect(page.locator("#resume-from-question")).to_contain_text(
        "Run two and the 1 task downstream of it (three) again?"
    )
    page.click("#resume-from-keep")
    assert server.get(f"/api/runs/{run_id}").json()["status"] == "succeeded"
    page.click("#resume-from")
    page.click("#resume-from-confirm")
    expect(page.locator("#resume-from-message")).to_have_text(
        "Resumed from two: it and 1 downstream task run again."
    )
    # the page follows the run again: two and three run, one keeps its result
    page.wait_for_selector("#dag [data-task='two'][data-status='running']", timeout=15_000)
    page.wait_for_selector("#dag [data-task='three'][data-status='succeeded']", timeout=20_000)
    expect(page.locator("h1 .badge")).to_have_text("succeeded", timeout=20_000)
    tasks = {t: server.get(f"/api/runs/{run_id}/tasks/{t}").json() for t in ("one", "two", "three")}
    assert [len(tasks[t]["attempts_detail"]) for t in ("one", "two", "three")] == [1, 2, 2]
    # a running run offers no resume from a task
    page.keyboard.press("Escape")
    slow = server.start_run("slow")
    page.goto(f"{server.url}/#/runs/{slow}")
    page.wait_for_selector("#dag [data-task='wait'][data-status='running']", timeout=15_000)
    page.click("#task-rows .trow[data-task='wait']")
    page.wait_for_selector("#attempts")
    assert page.locator("#resume-from").count() == 0
    assert server.post(f"/api/runs/{slow}/cancel", json={}).status_code == 202
    server.wait_status(slow, ("cancelled",))


def test_resume_from_a_map_item_runs_the_whole_map_again(page, server: ServerProcess) -> None:
    run_id = server.start_run("fanout", {"n": 3})
    server.wait_status(run_id, ("succeeded",))
    page.goto(f"{server.url}/#/runs/{run_id}")
    page.wait_for_selector("#dag [data-task]")
    page.click("#task-rows .trow[data-task='square[1]']")
    page.click("#resume-from")
    expect(page.locator("#resume-from-question")).to_contain_text(
        "square[1] is an item of the map square: the whole map runs again. "
        "Run square and the 1 task downstream of it (total) again?"
    )
    page.click("#resume-from-confirm")
    expect(page.locator("#resume-from-message")).to_contain_text("Resumed from square")
    server.wait_status(run_id, ("running", "succeeded"))
    deadline = time.monotonic() + 30
    while server.get(f"/api/runs/{run_id}/tasks/total").json()["attempts"] < 2:
        assert time.monotonic() < deadline, "total did not run again"
        time.sleep(0.2)
    server.wait_status(run_id, ("succeeded",))
    attempts = {
        t: server.get(f"/api/runs/{run_id}/tasks/{t}").json()["attempts"] for t in ("items", "square[0]")
    }
    assert attempts == {"items": 1, "square[0]": 2}


def test_resume_from_a_task_escapes_its_name_and_shows_a_refusal(page, server: ServerProcess) -> None:
    page.expected.append("status of 401")  # the browser logs the refused request itself
    run_id = server.start_run("<b>xss</b>")
    server.wait_status(run_id, ("succeeded",))
    page.goto(f"{server.url}/#/runs/{run_id}")
    page.wait_for_selector(f"#task-rows .trow[data-task='{XSS}']")
    page.click(f"#task-rows .trow[data-task='{XSS}']")
    page.click("#resume-from")
    expect(page.locator("#resume-from-question")).to_contain_text(f"Run {XSS} and the 1 task downstream")
    assert page.evaluate("document.querySelectorAll('aside img, main img').length") == 0
    # without the session the server refuses, and the drawer says so; nothing is resumed
    page.context.clear_cookies()
    page.click("#resume-from-confirm")
    expect(page.locator("#resume-from-message.error")).not_to_be_empty()
    assert page.locator("#resume-from").is_visible()
    assert server.get(f"/api/runs/{run_id}").json()["status"] == "succeeded"
    time.sleep(0.3)  # a late alert() would show up as a dialog


def test_runs_list_after_the_others(page, server: ServerProcess) -> None:
    """Last of this module: the list with the runs the tests above left (for docs/ui.md)."""
    page.goto(f"{server.url}/#/")
    expect(page.locator("#runs-body tr").first).to_be_visible()
    assert page.locator("#runs-body tr[data-run]").count() >= 4
    shot(page, "runs.png")
