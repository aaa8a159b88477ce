"""``--metrics-port``, ``--metrics-host`` and ``--metrics-linger`` of ``podium run`` and ``resume``.

``start_exporter`` starts ``/metrics`` before the run is written (a port that cannot be bound
is a usage error and no run is created); the exporter wraps the run's store and executor and
makes the run's hook; it keeps serving ``--metrics-linger`` seconds after the command is done
(summary printed) so a scraper sees the final values, then stops. Invariants: loopback unless
``--metrics-host`` says otherwise; without ``--metrics-port`` nothing of the metrics package is
imported.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable
from typing import Any

import click


def metrics_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """The three options, as one decorator."""
    f = click.option(
        "--metrics-linger",
        type=click.FloatRange(min=0.0, max=3600.0),
        default=0.0,
        show_default=True,
        metavar="SECONDS",
        help="Keep serving /metrics this long after the run ends (for a last scrape).",
    )(f)
    f = click.option(
        "--metrics-host",
        default="127.0.0.1",
        show_default=True,
        metavar="HOST",
        help="Address /metrics listens on; anything but loopback is reachable from other hosts.",
    )(f)
    return click.option(
        "--metrics-port",
        type=click.IntRange(0, 65535),
        metavar="PORT",
        help="Serve Prometheus metrics of the run on http://HOST:PORT/metrics (0: a free port).",
    )(f)


class Exporter:
    """A live ``/metrics`` endpoint for the runs of one command."""

    def __init__(self, host: str, port: int, linger: float) -> None:
        from podium.metrics import MetricsHub, serve

        self.hub = MetricsHub()
        self.server = serve(self.hub, host, port)
        self.linger = linger
        note = "" if _loopback(host) else " (not loopback: reachable from other hosts)"
        click.echo(f"metrics: {self.server.url}{note}", err=True)

    def wrap(self, store: Any, executor: Any) -> tuple[Any, Any]:
        return self.hub.wrap_store(store), self.hub.wrap_executor(executor)

    def track(self, run_id: str, workflow: Any) -> Any:
        return self.hub.track(run_id, len(workflow.tasks), tuple(workflow.tasks))

    def close(self) -> None:
        try:
            if self.linger > 0:
                click.echo(f"metrics: serving {self.linger:g} s more", err=True)
                time.sleep(self.linger)
        except KeyboardInterrupt:
            pass  # Ctrl-C ends the linger early, not the command's outcome
        finally:
            self.server.close()


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def start_exporter(options: tuple[int | None, str, float] | None) -> Exporter | None:
    """An ``Exporter`` for ``(port, host, linger)``, or None without a port. It lingers and stops
    when the running command's click context closes (after its summary, whatever the exit)."""
    port, host, linger = options or (None, "127.0.0.1", 0.0)
    if port is None:
        return None
    exporter = Exporter(host, port, linger)
    ctx = click.get_current_context(silent=True)
    if ctx is not None:
        ctx.call_on_close(exporter.close)
    return exporter
