"""`podium report` of a real run, opened in a real Chromium: no request leaves the page, no
console error, a task named like an XSS payload and a parameter holding ``</script>`` are text,
the Gantt has one bar per attempt, and the tables sort."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from chromium import ARGS, CHROMIUM
from podium.model import events as ev
from podium.report.data import run_detail
from podium.report.page import dur
from podium.store import open_store

XSS = "<img src=x onerror=alert(1)>"
QUOTED = '"><svg onload=alert(3)>'  # breaks out of an unescaped attribute
SCRIPT = "</script><script>alert(2)</script>"
FLOW = textwrap.dedent(
    f"""
    import os
    import time

    import podium

    @podium.task(cpu=1)
    def step(seconds: float) -> float:
        time.sleep(seconds)
        return seconds

    @podium.task(cpu=1, retries=1, retry_delay=0.05)
    def flaky(marker: str) -> str:
        if not os.path.exists(marker):
            open(marker, "w").close()
            raise RuntimeError("first attempt fails")
        return "ok"

    @podium.flow(name="report-demo")
    def demo(note: str, marker: str):
        a = step.options(name={XSS!r})(seconds=0.3)
        b = step.options(name="slow", after=[a])(seconds=0.5)
        c = step.options(name="fast", after=[a])(seconds=0.1)
        step.options(name={QUOTED!r})(seconds=0.05)
        f = flaky(marker=marker)
        step.options(name="end", after=[b, c, f])(seconds=0.1)
    """
)


def _podium(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "podium", *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    d = tmp_path_factory.mktemp("report")
    (d / "flow.py").write_text(FLOW, encoding="utf-8")
    db = str(d / "podium.db")
    run = _podium(
        *("run", "flow.py", "--store", db, "--run-id", "rep1", "--no-progress"),
        *("-p", f"note={SCRIPT}", "-p", f"marker={d / 'marker'}"),
        cwd=d,
    )
    assert run.returncode == 0, run.stderr
    out = _podium("report", "rep1", "--store", db, "-o", "pages/report.html", cwd=d)
    assert out.returncode == 0 and out.stdout.startswith("report: "), out.stderr
    store = open_store(db)
    try:
        detail = run_detail(store, "rep1")
        attempts = sum(1 for e in store.events("rep1") if e.type == ev.TASK_STARTED)
    finally:
        store.close()
    return {"dir": d, "db": db, "page": d / "pages" / "report.html", "detail": detail, "attempts": attempts}


def test_report_command_errors_are_one_line(report: dict[str, Any]) -> None:
    d, db = report["dir"], report["db"]
    missing = _podium("report", "nope", "--store", db, "-o", "x.html", cwd=d)
    assert missing.returncode == 2 and missing.stderr.strip().count("\n") == 0, missing.stderr
    assert "nope" in missing.stderr and not (d / "x.html").exists()
    (d / "blocker").write_text("a file, not a folder", encoding="utf-8")
    bad = _podium("report", "rep1", "--store", db, "-o", "blocker/r.html", cwd=d)
    assert bad.returncode == 2 and "cannot write the report" in bad.stderr and "Traceback" not in bad.stderr


@pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="chromium not installed (scripts/test.sh installs it)"
)
def test_report_in_a_real_browser(report: dict[str, Any], tmp_path: Path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    page_url = report["page"].resolve().as_uri()
    detail = report["detail"]
    problems: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.on(
                "console",
                lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None,
            )
            page.on("pageerror", lambda err: problems.append(f"page error: {err}"))
            page.on("dialog", lambda dialog: (problems.append(f"dialog: {dialog.message}"), dialog.dismiss()))

            def route(r: Any) -> None:
                if r.request.url != page_url:
                    problems.append(f"request: {r.request.url}")
                    r.abort()
                else:
                    r.continue_()

            page.route("**/*", route)
            page.goto(page_url)
            page.wait_for_load_state("load")
            shot = tmp_path / "report.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 20_000

            # user strings are text, never markup
            assert page.locator("img").count() == 0 and page.locator("svg[onload]").count() == 0
            assert page.locator("#slowest td", has_text=XSS).count() == 1
            assert page.locator("#usage td", has_text=QUOTED).count() == 1
            assert page.locator("#summary table.params td", has_text=SCRIPT).count() == 1
            summary = json.loads(page.locator("#run-summary").text_content() or "")
            assert summary["params"]["note"] == SCRIPT and summary["run_id"] == "rep1"

            # figures and charts
            assert page.locator('[data-field="T"]').text_content() == dur(detail["T"])
            assert page.locator("rect.bar.actual").count() == report["attempts"]
            assert page.locator(f'rect.bar.actual[data-task="{XSS}"]').count() == 1
            assert page.locator("#failures td", has_text="retried").count() == 1
            path = page.locator("ol.critical-path li code").all_text_contents()
            assert path == [XSS, "slow", "end"]

            # the tables sort on a click (the page's own script runs)
            busy = page.locator("#slowest th", has_text="busy")
            first = page.locator("#slowest tbody tr >> nth=0 >> td >> nth=0")
            busy.click()
            assert first.text_content() == "flaky"  # ascending: two quick attempts
            busy.click()
            assert first.text_content() == "slow"  # descending
        finally:
            browser.close()
    assert not problems, problems
