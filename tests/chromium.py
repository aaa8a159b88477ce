"""Debian's Chromium for the browser tests (the web UI, the run report): where it is, and the
flags that let it run headless in a container without a sandbox or network chatter."""

from __future__ import annotations

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
