"""Liveness, readiness and metrics for orchestrators and Prometheus."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Header
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from api import metrics as business_metrics
from api.contract import METRICS_TOKEN, PUBLIC, problems
from api.health_schemas import Readiness
from core.db import ping_database
from core.errors import NotAuthenticated, NotFound
from core.metrics import bearer_ok
from core.queue import check_broker
from core.settings import Mode, get_settings
from core.storage import get_store

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="The process is alive", openapi_extra={"security": PUBLIC})
async def healthz() -> dict[str, str]:
    """Liveness: answers while the process serves requests; checks nothing else."""
    return {"status": "ok"}


def _check_database() -> None:
    ping_database()


@router.get(
    "/readyz",
    summary="Database, broker and storage are reachable",
    responses={**problems("not_ready"), 200: {"model": Readiness}},
    openapi_extra={"security": PUBLIC},
)
async def readyz() -> JSONResponse:
    """Readiness: the database, the job broker and object storage answer. 503 names the one that failed."""
    checks: dict[str, Any] = {}
    failing = []
    for name, check in (
        ("database", _check_database),
        ("broker", check_broker),
        ("storage", lambda: get_store().check()),
    ):
        try:
            await asyncio.wait_for(asyncio.to_thread(check), timeout=5)
            checks[name] = "ok"
        except Exception as exc:
            checks[name] = f"{type(exc).__name__}: {exc}"[:300]
            failing.append(name)
    if failing:
        body = {
            "type": "https://pocketcinema.dev/problems/not_ready",
            "title": "Not ready",
            "status": 503,
            "code": "not_ready",
            "detail": f"unreachable: {', '.join(failing)}",
            "failing": failing,
            "checks": checks,
        }
        return JSONResponse(body, status_code=503, media_type="application/problem+json")
    return JSONResponse({"status": "ready", "checks": checks})


@router.get(
    "/metrics",
    summary="Prometheus metrics: HTTP, business figures, jobs (docs/operations.md)",
    response_class=Response,
    responses={
        **problems("metrics_unauthorized", (404, "not_found")),
        200: {"content": {"text/plain": {}}, "description": "Prometheus text format"},
    },
    openapi_extra={"security": METRICS_TOKEN},
)
async def metrics(authorization: Annotated[str | None, Header()] = None) -> Response:
    """Prometheus text format. With `METRICS_TOKEN` set it needs `Authorization: Bearer <token>`; in production without one it is only served on the metrics port."""
    settings = get_settings()
    token = settings.metrics_token.get_secret_value()
    if token:
        if not bearer_ok(authorization, token):
            raise NotAuthenticated(
                "send Authorization: Bearer <POCKETCINEMA_METRICS_TOKEN>",
                code="metrics_unauthorized",
            )
    elif settings.mode is Mode.production:
        # Production starts without a token only when metrics have their own port; this
        # public port then says nothing about the business.
        raise NotFound("metrics are served on POCKETCINEMA_METRICS_PORT", code="not_found")
    body = await asyncio.to_thread(business_metrics.render)  # reads the database
    return Response(body, media_type=CONTENT_TYPE_LATEST)
