"""Prometheus metrics of Podium runs: an edge that only subscribes to events and wraps Protocols.

Use::

    hub = MetricsHub()
    engine = Engine(hub.wrap_store(store), hub.wrap_executor(executor), hooks=[hub.track(run_id)])
    server = serve(hub, "127.0.0.1", 9464)        # /metrics until server.close()

A server that watches runs of other processes feeds ``hub.observe(run_id, events, view)`` and
mounts ``asgi_app(hub)``. ``catalog.METRICS`` lists every metric. Invariants: nothing in the
engine knows about metrics; ``import podium.metrics`` does not import prometheus_client (only
``serve``, ``asgi_app`` and ``wsgi_app`` do, from ``exposition``).
"""

from __future__ import annotations

from typing import Any

from podium.metrics.catalog import METRICS, Metric
from podium.metrics.hub import MetricsHub
from podium.metrics.tracker import RunTracker


def serve(hub: MetricsHub, host: str = "127.0.0.1", port: int = 0) -> Any:
    """Serve ``/metrics`` of ``hub`` on ``host:port`` (0: a free port; see ``.url``)."""
    from podium.metrics.exposition import MetricsServer

    return MetricsServer(hub, host, port)


def asgi_app(hub: MetricsHub) -> Any:
    from podium.metrics.exposition import asgi_app as app

    return app(hub)


def wsgi_app(hub: MetricsHub) -> Any:
    from podium.metrics.exposition import wsgi_app as app

    return app(hub)


__all__ = ["METRICS", "Metric", "MetricsHub", "RunTracker", "asgi_app", "serve", "wsgi_app"]
