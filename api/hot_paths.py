"""The playback hot paths' lane: keys, playlists and media served without the router.

A player asks for keys, playlists and media far more often than for anything else, and each
answer is a grant check and a memory read (docs/playback.md). Through the framework's
router such a request paid more for dispatch (route matching over every route, the
exception and exit-stack layers, the request/response wrappers) than for its own work. This
lane is one pure ASGI layer, the innermost of the app's middleware (``api/app.py``): every
request has already passed request id, access log, metrics, security headers, CORS and the
request limits when it gets here, exactly as it would on its way to the router.

It is built from the declared routes (``api/routes/playback.py``, :data:`HOT_ENDPOINTS`):
their path templates, compiled with the declared parameter patterns, and their endpoint
functions, called with the same arguments. What it does not match (another method, a path
parameter outside its declared pattern, any other route) goes on to the router, where the
declared route validates and answers as usual. An :class:`AppError` is answered by the same
function as the app's exception handler; anything else propagates to the framework's error
middleware, as from a route. ``tests/playback/test_fast_routes.py`` compares status, every
header and body with the router's answers.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from api.problems import app_error_response
from api.routes import playback
from core.errors import AppError

Endpoint = Callable[..., Awaitable[Response]]
_PARAM = re.compile(r"{(\w+)(?::\w+)?}")


def _pattern(path: str) -> re.Pattern[str]:
    """A declared path template as a regular expression, each parameter held to the
    pattern its declaration validates (``playback.HOT_PARAMETERS``)."""
    parts: list[str] = []
    last = 0
    for match in _PARAM.finditer(path):
        parts.append(re.escape(path[last : match.start()]))
        parts.append(f"(?P<{match[1]}>{playback.HOT_PARAMETERS[match[1]]})")
        last = match.end()
    parts.append(re.escape(path[last:]))
    return re.compile("".join(parts) + r"\Z")


class HotPaths:
    """Serves the declared hot routes of ``router`` (GET) directly; everything else goes
    to ``app``."""

    def __init__(self, app: ASGIApp, routes: list[APIRoute] | None = None) -> None:
        self.app = app
        declared = routes if routes is not None else playback.hot_routes()
        self.routes: list[tuple[re.Pattern[str], APIRoute, Endpoint]] = [
            (_pattern(route.path), route, route.endpoint) for route in declared
        ]
        self.prefix = _common_prefix([route.path for route in declared])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path.startswith(self.prefix):
            for pattern, route, endpoint in self.routes:
                match = pattern.match(path)
                if match is not None:
                    await self._serve(scope, receive, send, route, endpoint, match.groupdict())
                    return
        await self.app(scope, receive, send)

    async def _serve(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        route: APIRoute,
        endpoint: Endpoint,
        params: dict[str, Any],
    ) -> None:
        scope["route"] = route  # logs and metrics label by the declared template
        scope["path_params"] = params
        request = Request(scope, receive, send)
        try:
            response = await endpoint(request, **params)
        except AppError as refused:
            response = app_error_response(request, refused)
        await response(scope, receive, send)


def _common_prefix(paths: list[str]) -> str:
    prefix = paths[0].split("{", 1)[0] if paths else "/"
    for path in paths[1:]:
        head = path.split("{", 1)[0]
        while not head.startswith(prefix):
            prefix = prefix[:-1]
    return prefix
