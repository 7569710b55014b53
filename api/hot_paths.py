"""The playback hot paths' lane: keys, playlists, media and the decisions (heartbeats and
grant refreshes) served without the router.

A player asks for these far more often than for anything else: keys, playlists and media
are a grant check and a memory read, a heartbeat is 120 of a viewer's ~146 requests an hour
(docs/playback.md). Through the framework's router such a request paid for dispatch (route
matching over every route, the exception and exit-stack layers, the request/response
wrappers, dependency solving) a large share of its cost. This
lane is one pure ASGI layer, the innermost of the app's middleware (``api/app.py``): every
request has already passed request id, access log, metrics, security headers, CORS and the
request limits when it gets here, exactly as it would on its way to the router.

It is built from the declared routes (``api/routes/playback.py``, :data:`HOT_ENDPOINTS`):
their path templates, compiled with the declared parameter patterns, and their endpoint
functions, called with the same arguments. A decision's JSON body is parsed and validated
with the declared body model (``playback.HOT_BODIES``) the way the framework does it
(``json.loads``, then the model); a body the lane does not accept as it is (another content
type, malformed JSON, a value out of range, a missing body) goes to the router with the body
replayed, so every refusal of a bad request comes from the framework itself. What it does
not match (another method, a path parameter outside its declared pattern, any other route)
goes on to the router, where the declared route validates and answers as usual. An error
the app has a handler for (a refusal, a busy pool) is answered by that handler, as the
framework's exception middleware would; anything else propagates to the framework's error
middleware, as from a route. ``tests/playback/test_fast_routes.py`` compares status, every
header and body with the router's answers.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, cast

from fastapi.routing import APIRoute
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from api.limits import body_within, replay_body
from api.routes import playback
from core.settings import get_settings

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


class _Hot:
    """One declared hot route as the lane serves it."""

    def __init__(self, route: APIRoute) -> None:
        self.pattern = _pattern(route.path)
        self.route = route
        self.endpoint: Endpoint = route.endpoint
        self.methods = route.methods or {"GET"}
        self.body: tuple[type[BaseModel], bool] | None = playback.HOT_BODIES.get(route.endpoint)


class HotPaths:
    """Serves the declared hot routes of ``router`` (GET, and POST for the decisions)
    directly; everything else goes to ``app``."""

    def __init__(self, app: ASGIApp, routes: list[APIRoute] | None = None) -> None:
        self.app = app
        declared = routes if routes is not None else playback.hot_routes()
        self.routes = [_Hot(route) for route in declared]
        self.prefix = _common_prefix([route.path for route in declared])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("GET", "POST"):
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path.startswith(self.prefix):
            for hot in self.routes:
                if scope["method"] not in hot.methods:
                    continue
                match = hot.pattern.match(path)
                if match is not None:
                    params: dict[str, Any] = match.groupdict()
                    if hot.body is not None:
                        await self._decide(scope, receive, send, hot, hot.body, params)
                    else:
                        await self._serve(scope, receive, send, hot, params)
                    return
        await self.app(scope, receive, send)

    async def _decide(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        hot: _Hot,
        body: tuple[type[BaseModel], bool],
        params: dict[str, Any],
    ) -> None:
        """A decision: its body parsed here, or the request handed to the router as sent."""
        model, optional = body
        # The request limits, outside this layer, have capped and depth-checked it already;
        # the cap again here so the lane never depends on their being installed.
        cap = get_settings().max_json_body_bytes
        raw = await body_within(scope, receive, send, cap)
        if raw is None:
            return
        parsed = _parse_body(scope, raw, model, optional)
        if parsed is _UNPARSED:
            await self.app(scope, replay_body(raw, receive), send)
            return
        params["body"] = parsed
        await self._serve(scope, receive, send, hot, params)

    async def _serve(
        self, scope: Scope, receive: Receive, send: Send, hot: _Hot, params: dict[str, Any]
    ) -> None:
        scope["route"] = hot.route  # logs and metrics label by the declared template
        scope["path_params"] = {k: v for k, v in params.items() if k != "body"}
        request = Request(scope, receive, send)
        try:
            response = await hot.endpoint(request, **params)
        except Exception as error:
            handler = _handler_for(scope, error)
            if handler is None:
                raise  # to the framework's error middleware, as from a route
            response = await handler(request, error)
        await response(scope, receive, send)


Handler = Callable[[Request, Exception], Awaitable[Response]]


def _handler_for(scope: Scope, error: Exception) -> Handler | None:
    """The app's exception handler for ``error`` (refusals, a busy pool…), found as the
    framework's exception middleware finds it, by the error's class hierarchy. Catch-all
    handlers (``Exception``, 500) belong to the outer error middleware and are not used."""
    handlers: dict[Any, Any] = getattr(scope.get("app"), "exception_handlers", {})
    for cls in type(error).__mro__:
        if cls is Exception:
            return None
        handler = handlers.get(cls)
        if handler is not None:
            if not inspect.iscoroutinefunction(handler):
                return partial(run_in_threadpool, handler)
            return cast(Handler, handler)
    return None


_UNPARSED = object()


def _parse_body(scope: Scope, raw: bytes, model: type[BaseModel], optional: bool) -> Any:
    """The body as the declared route would see it, or ``_UNPARSED`` when the lane leaves
    the answer to the router (anything but a plain JSON body the model accepts)."""
    if not raw:
        return None if optional else _UNPARSED
    content_type = next((v for k, v in scope["headers"] if k == b"content-type"), None)
    if content_type is None or content_type.split(b";")[0].strip().lower() != b"application/json":
        return _UNPARSED
    try:
        value = json.loads(raw)
        if value is None and optional:
            return None
        return model.model_validate(value)
    except ValueError:  # malformed JSON, or the model's ValidationError (a ValueError)
        return _UNPARSED


def _common_prefix(paths: list[str]) -> str:
    prefix = paths[0].split("{", 1)[0] if paths else "/"
    for path in paths[1:]:
        head = path.split("{", 1)[0]
        while not head.startswith(prefix):
            prefix = prefix[:-1]
    return prefix
