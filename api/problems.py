"""RFC 9457 problem+json for every error, each with a stable ``code``."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from core.errors import AppError
from core.logs import request_id_var

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"


class Problem(BaseModel):
    """The body of every error response."""

    type: str = Field(default="about:blank")
    title: str
    status: int
    detail: str
    code: str = Field(description="Stable machine-readable code; apps branch on this.")
    instance: str | None = None
    request_id: str | None = None
    errors: list[dict[str, Any]] | None = Field(
        default=None, description="For invalid_input: each field that failed, and why."
    )


def problem_response(
    status: int, code: str, title: str, detail: str, request: Request, **extra: Any
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"https://pocketcinema.dev/problems/{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
        "instance": request.url.path,
        "request_id": request_id_var.get(),
        **extra,
    }
    headers = {"Cache-Control": "no-store"}
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


_HTTP_CODES = {
    400: "bad_request",
    401: "not_authenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


def app_error_response(request: Request, exc: AppError) -> JSONResponse:
    return problem_response(exc.status, exc.code, exc.title, exc.detail, request, **exc.extra)


def committed_problem(request: Request, exc: AppError) -> JSONResponse:
    """For a refusal whose bookkeeping (a failed attempt, a revoked family, a wrong code
    counted) must outlive it: the route *returns* this instead of raising, so the request's
    transaction commits first."""
    return app_error_response(request, exc)


def internal_error_response(request: Request) -> JSONResponse:
    """For an exception nobody expected; call it inside the ``except`` (it logs the trace)."""
    log.exception("unhandled error")
    return problem_response(
        500,
        "internal_error",
        "Internal error",
        "something went wrong on our side; quote the request id",
        request,
    )


def install(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def _app_error(request: Request, exc: AppError) -> JSONResponse:
        return app_error_response(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {
                "field": ".".join(str(p) for p in err.get("loc", ()) if p != "body"),
                "location": str(err.get("loc", ("body",))[0]),
                "message": err.get("msg", ""),
                "type": err.get("type", ""),
            }
            for err in exc.errors()
        ]
        fields = ", ".join(e["field"] or e["location"] for e in errors)
        return problem_response(
            422,
            "invalid_input",
            "Invalid input",
            f"fix these fields: {fields}",
            request,
            errors=errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        return problem_response(
            exc.status_code, code, code.replace("_", " ").capitalize(), str(exc.detail), request
        )

    @app.exception_handler(PoolTimeout)
    async def _pool_busy(request: Request, exc: PoolTimeout) -> JSONResponse:
        # Every pooled connection stayed busy for POCKETCINEMA_DATABASE_POOL_TIMEOUT_SECONDS:
        # the process is past what its pool carries. Nothing was written; try again.
        log.warning("database pool exhausted: %s", exc)
        response = problem_response(
            503,
            "database_busy",
            "Service busy",
            "the service is at capacity; retry after the delay in Retry-After",
            request,
        )
        response.headers["Retry-After"] = "1"
        return response

    @app.exception_handler(DBAPIError)
    async def _database_lost(request: Request, exc: DBAPIError) -> JSONResponse:
        # The pool has no pre-ping (a round trip per checkout, docs/playback.md): after a
        # database restart the first statement on each stale connection finds it dead.
        # SQLAlchemy then drops every pooled connection, so a retry gets a fresh one; the
        # caller is told to retry instead of seeing a 500. Any other database error is one.
        if not exc.connection_invalidated:
            return internal_error_response(request)
        log.warning("database connection lost: %s", exc)
        response = problem_response(
            503,
            "database_busy",
            "Service busy",
            "the connection to the database was lost; retry after the delay in Retry-After",
            request,
        )
        response.headers["Retry-After"] = "1"
        return response

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        return internal_error_response(request)
