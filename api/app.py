"""The FastAPI application. Routers are grouped by audience: viewer, studio, finance, admin,
webhooks, operations."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from api import problems
from api.direct import DirectDispatch
from api.headers import SecurityHeaders
from api.limits import RequestLimits
from api.middleware import RequestContextMiddleware
from api.routes import (
    admin,
    auth,
    boxoffice,
    docs,
    health,
    payment_desk,
    playback,
    player,
    purchases,
    studio_catalog,
    studio_releases,
    studio_tracks,
    tickets,
    titles,
    webhooks,
)
from core.settings import get_settings


class PocketCinemaAPI(FastAPI):
    """FastAPI, with the request context (ids, logs, metrics), the security headers, the
    request limits (api/limits.py: sizes are checked before anything parses) and the direct
    playback lane (api/direct.py) in front of the framework's own middleware stack: the hot
    playback requests skip the framework entirely, never the limits or the headers."""

    front: ASGIApp | None = None
    direct_lane = True  # False: every request through the router (tests compare the two)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            if self.front is None:
                inner: ASGIApp = super().__call__
                if self.direct_lane:
                    inner = DirectDispatch(
                        inner,
                        prefix=playback.PREFIX,
                        routes=playback.DIRECT,
                        parse=playback.call_from_scope,
                    )
                self.front = RequestContextMiddleware(SecurityHeaders(RequestLimits(inner)))
            await self.front(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)


def create_app(*, direct_lane: bool = True) -> FastAPI:
    app = PocketCinemaAPI(
        title="Pocket Cinema",
        version="0.1.0",
        summary="Pay-per-view streaming: geo-licensed tickets, encrypted HLS, box office.",
        openapi_url="/openapi.json",
        docs_url=None,  # api/routes/docs.py serves the pages with assets from this process
        redoc_url=None,
        # We export Prometheus metrics ourselves; FastAPI's native OpenTelemetry hook would
        # otherwise check its providers on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    problems.install(app)
    docs.install(app)
    origins = get_settings().cors_allowed_origins
    if origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "X-Request-Id"],
            expose_headers=["X-Request-Id", "Content-Language", "Retry-After"],
            # Bearer tokens, not cookies: browsers need no credentialed requests.
            allow_credentials=False,
            max_age=600,
        )
    app.include_router(health.router)
    app.include_router(titles.router)
    app.include_router(auth.router)
    app.include_router(studio_catalog.router)
    app.include_router(studio_releases.router)
    app.include_router(studio_tracks.router)
    app.include_router(admin.router)
    app.include_router(purchases.router)
    app.include_router(tickets.router)
    app.include_router(playback.router)
    app.include_router(player.router)
    app.include_router(webhooks.router)
    app.include_router(boxoffice.finance)
    app.include_router(boxoffice.studio)
    app.include_router(payment_desk.router)
    app.direct_lane = direct_lane
    return app
