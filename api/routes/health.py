"""Liveness, readiness and metrics for orchestrators and Prometheus."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from core.db import ping_database
from core.queue import check_broker
from core.storage import get_store

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="The process is alive")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


def _check_database() -> None:
    ping_database()


@router.get(
    "/readyz",
    summary="Database, broker and storage are reachable",
    responses={503: {"description": "A dependency is down; `failing` names it"}},
)
async def readyz() -> JSONResponse:
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


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
