"""The FastAPI application. Routers are grouped by audience: viewer, studio, finance, admin,
webhooks, operations."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from api import contract, problems
from api.hot_paths import HotPaths
from api.limits import RequestLimits
from api.middleware import RequestContextMiddleware
from api.routes import (
    account,
    admin,
    auth,
    boxoffice,
    docs,
    health,
    key_exchange,
    payment_desk,
    playback,
    player,
    purchases,
    screeners,
    store_purchases,
    studio_catalog,
    studio_releases,
    studio_store_products,
    studio_tracks,
    support,
    tickets,
    titles,
    web,
    webhooks,
)
from core.settings import get_settings


def create_app(*, fast_hot_paths: bool = True) -> FastAPI:
    app = FastAPI(
        title="Pocket Cinema",
        version="0.1.0",
        summary="Pay-per-view streaming: geo-licensed tickets, encrypted HLS, box office.",
        openapi_url="/openapi.json",
        docs_url=None,  # api/routes/docs.py serves the pages with assets from this process
        redoc_url=None,
        # We export Prometheus metrics ourselves; FastAPI's native OpenTelemetry hook would
        # otherwise check its providers on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
        generate_unique_id_function=contract.operation_id,
    )
    problems.install(app)
    contract.install(app)
    docs.install(app)
    # Every route, the playback hot paths included, goes through the same middleware stack.
    # add_middleware wraps what is there, so from the outside in: request context (ids,
    # logs, metrics, security headers: api/middleware.py), CORS, request limits (sizes are checked before
    # anything parses), the hot paths' lane (api/hot_paths.py), then the router.
    if fast_hot_paths:
        app.add_middleware(HotPaths)
    app.add_middleware(RequestLimits)
    origins = get_settings().cors_allowed_origins
    if origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=[
                "Authorization",
                "Content-Type",
                "Idempotency-Key",
                "X-Request-Id",
                "X-Device-Id",  # players send it with every playback request
            ],
            expose_headers=["X-Request-Id", "Content-Language", "Retry-After"],
            # Bearer tokens, not cookies: browsers need no credentialed requests.
            allow_credentials=False,
            max_age=600,
        )
    app.add_middleware(RequestContextMiddleware)
    # The playback hot paths first: routers are matched in order, and a player asks for
    # keys, playlists and media far more often than for anything else.
    app.include_router(playback.router)
    app.include_router(health.router)
    app.include_router(titles.router)
    app.include_router(auth.router)
    app.include_router(account.router)
    app.include_router(studio_catalog.router)
    app.include_router(studio_releases.router)
    app.include_router(studio_tracks.router)
    app.include_router(studio_store_products.router)
    app.include_router(admin.router)
    app.include_router(support.router)
    app.include_router(purchases.router)
    app.include_router(store_purchases.router)
    app.include_router(tickets.router)
    app.include_router(player.router)
    app.include_router(web.router)
    app.include_router(webhooks.router)
    app.include_router(boxoffice.finance)
    app.include_router(boxoffice.studio)
    app.include_router(payment_desk.router)
    app.include_router(screeners.studio)
    app.include_router(screeners.buyer)
    app.include_router(key_exchange.router)
    return app
