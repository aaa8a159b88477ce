"""Notifications: a JSON POST to each configured webhook when a run fails or succeeds.

``Notifier.notify(summary)`` is called once per run that finished (by the run watcher); each
matching webhook is claimed durably in the server's records first, so a notification is sent
at most once per run, status and URL even across restarts, then delivered by a background
thread with retries and exponential backoff (``ATTEMPTS`` tries). Every request goes through
``post_json``, the one function that sends HTTP from the server.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from podium.server.config import Webhook
from podium.server.state import ServerState

ATTEMPTS = 5
BACKOFF = 1.0  # seconds before the second try; doubles each time
TIMEOUT = 10.0
MAX_RESPONSE = 64 * 1024


def post_json(url: str, body: dict[str, Any], timeout: float = TIMEOUT) -> int:
    """POST ``body`` as JSON to ``url``; the HTTP status (an ``OSError`` if none came back).

    The one way the server sends HTTP. Only http and https, no redirects followed, a timeout,
    at most ``MAX_RESPONSE`` bytes of the answer read. The guarded HTTP client of http tasks
    (address allow-lists, no link-local or metadata addresses) replaces this body when it
    exists.
    """
    import urllib.error
    import urllib.request
    from urllib.parse import urlsplit

    if urlsplit(url).scheme not in ("http", "https"):
        raise OSError(f"refusing to post to {url!r}: only http and https")

    class _NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    opener = urllib.request.build_opener(_NoRedirect)
    data = json.dumps(body).encode()
    request = urllib.request.Request(
        url,
        data=data,
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "podium-server"},
    )
    try:
        with opener.open(request, timeout=timeout) as response:
            response.read(MAX_RESPONSE)
            return int(response.status)
    except urllib.error.HTTPError as e:
        return int(e.code)


class Notifier:
    def __init__(
        self,
        webhooks: tuple[Webhook, ...],
        state: ServerState,
        *,
        post: Callable[[str, dict[str, Any]], int] = post_json,
        sleep: Callable[[float], None] = time.sleep,
        backoff: float = BACKOFF,
        attempts: int = ATTEMPTS,
        base_url: str = "",
    ) -> None:
        self.webhooks = webhooks
        self.state = state
        self.post = post
        self.sleep = sleep
        self.backoff = backoff
        self.attempts = attempts
        self.base_url = base_url
        self.queue: queue.Queue[tuple[str, dict[str, Any]] | None] = queue.Queue()
        self.thread: threading.Thread | None = None
        self.delivered: list[tuple[str, str, bool]] = []  # (url, run_id, ok), for tests and /api/server

    def notify(self, summary: dict[str, Any]) -> int:
        """Queue the notifications for a finished run; how many were queued."""
        status = summary.get("status")
        n = 0
        for hook in self.webhooks:
            if status not in hook.on or (hook.workflows and summary.get("workflow") not in hook.workflows):
                continue
            if not self.state.claim_notification(summary["run_id"], str(status), hook.url, time.time()):
                continue
            self.queue.put((hook.url, self.body(summary)))
            n += 1
        if n:
            self.start()
        return n

    def body(self, s: dict[str, Any]) -> dict[str, Any]:
        keys = (
            "run_id",
            "workflow",
            "status",
            "params",
            "created_at",
            "finished_at",
            "T",
            "R",
            "F",
            "counts",
        )
        out = {k: s.get(k) for k in keys}
        out["event"] = f"run.{s.get('status')}"
        if self.base_url:
            out["url"] = f"{self.base_url}/#/runs/{s.get('run_id')}"
        return out

    def start(self) -> None:
        if self.thread is None or not self.thread.is_alive():
            self.thread = threading.Thread(target=self._loop, name="podium-notifier", daemon=True)
            self.thread.start()

    def _loop(self) -> None:
        while True:
            item = self.queue.get()
            if item is None:
                return
            url, body = item
            ok = self.deliver(url, body)
            self.state.notification_sent(body["run_id"], str(body["status"]), url, ok)
            self.delivered.append((url, body["run_id"], ok))

    def deliver(self, url: str, body: dict[str, Any]) -> bool:
        """Try up to ``attempts`` times; a 2xx answer ends it, so does a 4xx other than 408/429."""
        pause = self.backoff
        for i in range(self.attempts):
            try:
                status = self.post(url, body)
            except OSError:
                status = 0
            if 200 <= status < 300:
                return True
            if 400 <= status < 500 and status not in (408, 429):
                return False
            if i + 1 < self.attempts:
                self.sleep(pause)
                pause *= 2
        return False

    def stop(self, timeout: float = 5.0) -> None:
        if self.thread is not None and self.thread.is_alive():
            self.queue.put(None)
            self.thread.join(timeout)
