"""Request id, structured access log and Prometheus metrics, as one pure ASGI middleware
(cheaper than BaseHTTPMiddleware on the hot paths: playlists, keys, heartbeats)."""

from __future__ import annotations

import functools
import logging
import os
import re
import time
from typing import Any

from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.logs import request_id_var

log = logging.getLogger("pocketcinema.access")

REQUESTS = Counter(
    "pocketcinema_http_requests_total", "HTTP requests", ["method", "route", "status"]
)
LATENCY = Histogram(
    "pocketcinema_http_request_duration_seconds",
    "HTTP request latency",
    ["method", "route"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
_VALID_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = ""
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                incoming = value.decode("latin-1")
                break
        request_id = incoming if incoming and _VALID_ID.match(incoming) else os.urandom(16).hex()
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"].append((b"x-request-id", request_id.encode()))
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = _route_template(scope)
            requests, latency = _series(scope["method"], route, status)
            requests.inc()
            latency.observe(elapsed)
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


@functools.lru_cache(maxsize=4096)
def _series(method: str, route: str, status: int) -> tuple[Counter, Histogram]:
    # labels() hashes and locks on every call; the set of (method, route, status) is small.
    return REQUESTS.labels(method, route, str(status)), LATENCY.labels(method, route)


def _route_template(scope: dict[str, Any] | Scope) -> str:
    # Label by the route's template, never the raw path, or every id becomes a time series.
    route = scope.get("route")
    path = getattr(route, "path", None)
    return str(path) if path else "unmatched"
