"""Request id, structured access log, HTTP metrics and security headers, as one pure ASGI
middleware: the outermost layer of every request, the playback hot paths included.

One layer instead of three (request context, metrics, security headers) because each layer
wraps ``send`` in a closure of its own, and on the key route that wrapping cost as much as
the route's own work. The HTTP metrics are counted in plain Python lists (:class:`HttpMetrics`)
and exported as the same Prometheus counter and histogram at scrape time: recording a
request is a dictionary lookup, a bisection and three additions, with no lock, because only
the event loop thread records (every ASGI call runs on it).
"""

from __future__ import annotations

import logging
import os
import re
import time
from bisect import bisect_left
from collections.abc import Iterator
from typing import Any

from prometheus_client import REGISTRY
from prometheus_client.metrics_core import CounterMetricFamily, HistogramMetricFamily, Metric
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.headers import security_headers
from core.logs import request_id_var
from core.settings import get_settings

log = logging.getLogger("pocketcinema.access")

_VALID_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class HttpMetrics:
    """``pocketcinema_http_requests_total`` (method, route, status) and
    ``pocketcinema_http_request_duration_seconds`` (method, route), kept as plain counts."""

    def __init__(self) -> None:
        self.requests: dict[tuple[str, str, int], int] = {}
        # (method, route) -> [count per bucket (the last: above every bound), sum of seconds]
        self.latency: dict[tuple[str, str], list[Any]] = {}

    def record(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        self.requests[key] = self.requests.get(key, 0) + 1
        series = self.latency.get((method, route))
        if series is None:
            series = self.latency[(method, route)] = [[0] * (len(BUCKETS) + 1), 0.0]
        # bisect_left: a value equal to a bound belongs to that bucket (le = "less or equal")
        series[0][bisect_left(BUCKETS, seconds)] += 1
        series[1] += seconds

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "pocketcinema_http_requests", "HTTP requests", labels=["method", "route", "status"]
        )
        for (method, route, status), count in list(self.requests.items()):
            requests.add_metric([method, route, str(status)], count)
        yield requests
        latency = HistogramMetricFamily(
            "pocketcinema_http_request_duration_seconds",
            "HTTP request latency",
            labels=["method", "route"],
        )
        for (method, route), (counts, total) in list(self.latency.items()):
            cumulative, buckets = 0, []
            for bound, count in zip((*BUCKETS, float("inf")), list(counts), strict=True):
                cumulative += count
                buckets.append(("+Inf" if bound == float("inf") else str(bound), cumulative))
            latency.add_metric([method, route], buckets, total)
        yield latency


HTTP_METRICS = HttpMetrics()
REGISTRY.register(HTTP_METRICS)


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._tls_everywhere: bool | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self._tls_everywhere is None:
            self._tls_everywhere = get_settings().base_url.startswith("https://")
        tls = self._tls_everywhere or scope.get("scheme") == "https"
        incoming = ""
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                incoming = value.decode("latin-1")
                break
        request_id = incoming if incoming and _VALID_ID.match(incoming) else os.urandom(16).hex()
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = security_headers(message.get("headers", ()), scope["path"], tls)
                headers.append((b"x-request-id", request_id.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            elapsed = time.perf_counter() - started
            route = _route_template(scope)
            HTTP_METRICS.record(scope["method"], route, status, elapsed)
            if log.isEnabledFor(logging.INFO):
                log.info(
                    "request",
                    extra={
                        "method": scope["method"],
                        "path": scope["path"],
                        "route": route,
                        "status": status,
                        "ms": round(elapsed * 1000, 2),
                    },
                )
            request_id_var.reset(token)


def _route_template(scope: dict[str, Any] | Scope) -> str:
    # Label by the route's template, never the raw path, or every id becomes a time series.
    route = scope.get("route")
    path = getattr(route, "path", None)
    return str(path) if path else "unmatched"
