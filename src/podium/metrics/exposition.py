"""The Prometheus side of a ``MetricsHub``: a collector, WSGI/ASGI apps and a ``/metrics`` server.

The only module that imports prometheus_client (the ``metrics`` extra). ``HubCollector``
renders ``hub.snapshot()`` through ``catalog.METRICS`` at each scrape, so the hub's hooks never
pay for formatting. Invariants: every metric of the catalog is exposed, with its HELP and
TYPE, even before it has samples; label values are escaped by prometheus_client; a server
listens only where told (``podium run`` defaults to 127.0.0.1).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from podium.errors import UsageError
from podium.metrics.catalog import COUNTER, GAUGE, METRICS

if TYPE_CHECKING:
    from podium.metrics.hub import MetricsHub


def _client() -> Any:
    try:
        import prometheus_client
    except ImportError:
        raise UsageError("metrics need prometheus_client: pip install 'podium[metrics]'") from None
    return prometheus_client


class HubCollector:
    """A prometheus_client collector over a hub (register it in any ``CollectorRegistry``)."""

    def __init__(self, hub: MetricsHub) -> None:
        self.hub = hub

    def describe(self) -> list[Any]:
        return []  # unchecked registration: no collect() at register time

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

        snap = self.hub.snapshot()
        for m in METRICS:
            values = snap.get(m.name, {})
            labels = list(m.labels)
            fam: Any
            if m.kind == COUNTER:
                fam = CounterMetricFamily(m.name.removesuffix("_total"), m.help, labels=labels)
            elif m.kind == GAUGE:
                fam = GaugeMetricFamily(m.name, m.help, labels=labels)
            else:
                fam = HistogramMetricFamily(m.name, m.help, labels=labels)
            for key in sorted(values):
                if m.kind in (COUNTER, GAUGE):
                    fam.add_metric(list(key), float(values[key]))
                else:
                    buckets, total = values[key]
                    fam.add_metric(list(key), buckets, total)
            yield fam


def registry_for(hub: MetricsHub) -> Any:
    """A fresh ``CollectorRegistry`` holding only this hub's metrics."""
    registry = _client().CollectorRegistry(auto_describe=False)
    registry.register(HubCollector(hub))
    return registry


def wsgi_app(hub: MetricsHub) -> Any:
    return _client().make_wsgi_app(registry_for(hub))


def asgi_app(hub: MetricsHub) -> Any:
    """An ASGI app answering every GET with the hub's metrics (mount it at ``/metrics``)."""
    return _client().make_asgi_app(registry_for(hub))


class MetricsServer:
    """``/metrics`` of a hub over HTTP in a daemon thread, until ``close()``."""

    def __init__(self, hub: MetricsHub, host: str = "127.0.0.1", port: int = 0) -> None:
        client = _client()
        try:
            self._httpd, self._thread = client.start_http_server(port, addr=host, registry=registry_for(hub))
        except OSError as e:
            raise UsageError(f"metrics: cannot listen on {host}:{port}: {e.strerror or e}") from None
        self.host = host
        self.port = int(self._httpd.server_address[1])
        self._closed = threading.Event()

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def close(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


def render(hub: MetricsHub) -> tuple[bytes, str]:
    """The hub's metrics in the Prometheus text format, and that format's content type."""
    client = _client()
    return client.generate_latest(registry_for(hub)), client.CONTENT_TYPE_LATEST
