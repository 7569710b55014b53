"""Direct dispatch: the playback hot routes (content keys, playlists) served without
FastAPI's routing, dependency resolution and Request/Response objects.

A player asks for keys and playlists many times per film, and every viewer at once. Their
work is small (cached entitlement, cached key: docs/playback.md), so matching ~70 routes,
resolving dependencies and building framework objects cost several times the work itself.
For the routes in :data:`api.routes.playback.DIRECT` this middleware matches the path with
one regular expression, reads the request with the same parser the routes use, calls the
same ``*_body`` function the route calls, and sends the bytes with the route's headers.
Whatever it is not sure about (another method, a parameter over its declared limit, a path
under a ``root_path`` mount, which it does not strip) goes on
to the router, which validates and answers as it always does. Errors are the same
problem+json as everywhere.

It sits in front of FastAPI's middleware stack and inside
:class:`api.middleware.RequestContextMiddleware` (see :class:`api.app.PocketCinemaAPI`), so
request ids, access logs and metrics (labelled with the declared route's template) are the
same as for routed calls.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from api.problems import app_error_response, internal_error_response
from core.errors import AppError


@dataclass(frozen=True)
class DirectRoute:
    """``handler(call, **path_params) -> body``. ``pattern`` names the path parameters and
    must enforce the declared ones' patterns; ``path`` is the declared template, which the
    metrics middleware reads from ``scope["route"]`` as it does from a routed call's (a test
    checks it against the OpenAPI document)."""

    path: str
    pattern: re.Pattern[str]
    handler: Callable[..., bytes]
    media_type: str
    headers: Mapping[str, str]
    raw_headers: list[tuple[bytes, bytes]] = field(init=False, compare=False)

    def __post_init__(self) -> None:
        raw = [(b"content-type", self.media_type.encode())]
        raw += [(k.lower().encode(), v.encode()) for k, v in self.headers.items()]
        object.__setattr__(self, "raw_headers", raw)


class DirectDispatch:
    """``parse(scope)`` turns a request into the handlers' first argument, or None to leave
    it to the router; ``prefix`` is what every direct route's path starts with."""

    def __init__(
        self,
        app: ASGIApp,
        prefix: str,
        routes: list[DirectRoute],
        parse: Callable[[Scope], Any],
    ) -> None:
        self.app = app
        self.prefix = prefix
        self.routes = routes
        self.parse = parse

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] == "GET"
            and scope["path"].startswith(self.prefix)
        ):
            for route in self.routes:
                match = route.pattern.match(scope["path"])
                if match is not None:
                    if await self._serve(route, match, scope, receive, send):
                        return
                    break
        await self.app(scope, receive, send)

    async def _serve(
        self, route: DirectRoute, match: re.Match[str], scope: Scope, receive: Receive, send: Send
    ) -> bool:
        scope["route"] = route  # metrics and logs label by the declared template
        scope["path_params"] = params = match.groupdict()
        try:
            call = self.parse(scope)
            if call is None:
                return False
            body = route.handler(call, **params)
        except AppError as exc:
            await app_error_response(Request(scope, receive), exc)(scope, receive, send)
            return True
        except Exception:
            # In front of the framework, so its error middleware is not around us.
            await internal_error_response(Request(scope, receive))(scope, receive, send)
            return True
        headers = [*route.raw_headers, (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        return True
