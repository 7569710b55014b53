"""Limits before work: every request is measured before anything parses it.

One pure ASGI middleware, in front of the router (every route, the playback hot paths too):

- **Headers**: more than ``max_request_headers`` lines, a line longer than
  ``max_header_line_bytes`` or more than ``max_header_bytes`` in all: 431.
- **Bodies**, by route class: JSON routes (the default), webhook routes, upload parts and the
  FX CSV import each have a cap. A ``Content-Length`` over the cap is refused before one byte
  is read; a body without one (chunked) is counted while it arrives and refused the moment it
  passes the cap: 413. The server never holds more than the cap.
- **JSON depth**: a JSON body nested deeper than ``max_json_depth`` is refused (400) before
  any parser sees it; Python's parser would otherwise recurse until it fails.

Refusals are the same problem+json as everywhere, with codes ``headers_too_large``,
``payload_too_large`` and ``json_too_deep``. JSON and webhook bodies are small by the caps
above, so they are read whole here and handed on; parts and CSV files stream through.
"""

from __future__ import annotations

import json
import re
from array import array
from dataclasses import dataclass
from itertools import accumulate

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from catalog.artwork import MAX_ARTWORK_BYTES
from core.logs import request_id_var
from core.settings import Settings, get_settings

PROBLEM_JSON = b"application/problem+json"
_UPLOAD_PART = re.compile(r"^/v1/studio/uploads/[^/]+/parts/[^/]+$")
_ARTWORK = re.compile(r"^/v1/studio/titles/[^/]+/localizations/[^/]+/artwork$")
_FX_IMPORT = "/v1/finance/fx-rates"
_WEBHOOKS = "/v1/webhooks/"
_NO_BODY = frozenset({"GET", "HEAD", "OPTIONS"})


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` while a streamed body passes its cap. An HTTPException so that
    the framework answers it (413 problem+json) instead of treating it as a crash."""

    def __init__(self, cap: int) -> None:
        super().__init__(413, f"the request body may be at most {cap} bytes")


@dataclass(frozen=True)
class Caps:
    json: int
    webhook: int
    upload_part: int
    fx_import: int
    headers: int
    header_bytes: int
    header_line: int
    json_depth: int
    artwork: int = MAX_ARTWORK_BYTES

    @classmethod
    def from_settings(cls, settings: Settings) -> Caps:
        return cls(
            json=settings.max_json_body_bytes,
            webhook=settings.max_webhook_body_bytes,
            # A part is at most the upload's part size, which is at most this setting.
            upload_part=settings.multipart_part_size,
            fx_import=10 * 1024 * 1024,  # the route's own limit (api/routes/boxoffice.py)
            artwork=MAX_ARTWORK_BYTES,  # images, checked by type in catalog/artwork.py
            headers=settings.max_request_headers,
            header_bytes=settings.max_header_bytes,
            header_line=settings.max_header_line_bytes,
            json_depth=settings.max_json_depth,
        )

    def body_cap(self, method: str, path: str) -> tuple[int, bool]:
        """The cap for this route, and whether the body is buffered and depth-checked."""
        if path.startswith(_WEBHOOKS):
            return self.webhook, True
        if method == "PUT" and _UPLOAD_PART.match(path):
            return self.upload_part, False
        if method == "POST" and path == _FX_IMPORT:
            return self.fx_import, False
        if method == "PUT" and _ARTWORK.match(path):
            return self.artwork, False
        return self.json, True


class RequestLimits:
    def __init__(self, app: ASGIApp, caps: Caps | None = None) -> None:
        self.app = app
        self._caps = caps

    @property
    def caps(self) -> Caps:
        if self._caps is None:
            self._caps = Caps.from_settings(get_settings())
        return self._caps

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        caps = self.caps
        headers = scope["headers"]
        length_header: bytes | None = None
        total = 0
        for name, value in headers:
            size = len(name) + len(value)
            total += size
            if size > caps.header_line:
                await _refuse(send, scope, 431, "headers_too_large", "a header line is too long")
                return
            if name == b"content-length":
                length_header = value
        if len(headers) > caps.headers or total > caps.header_bytes:
            await _refuse(
                send,
                scope,
                431,
                "headers_too_large",
                f"send at most {caps.headers} headers and {caps.header_bytes} bytes of them",
            )
            return
        method = scope["method"]
        cap, buffered = caps.body_cap(method, scope["path"])
        if length_header is not None:
            try:
                declared = int(length_header)
            except ValueError:
                declared = -1
            if declared < 0:
                await _refuse(send, scope, 400, "bad_request", "Content-Length is not a number")
                return
            if declared > cap:
                await _refuse_too_large(send, scope, cap)
                return
        if method in _NO_BODY and length_header is None:
            await self.app(scope, receive, send)
            return
        if not buffered:
            await self.app(scope, _counting(receive, cap), send)
            return
        body = await body_within(scope, receive, send, cap)
        if body is None:
            return
        if body and json_depth_exceeds(body, caps.json_depth):
            await _refuse(
                send,
                scope,
                400,
                "json_too_deep",
                f"JSON may nest at most {caps.json_depth} levels",
            )
            return
        await self.app(scope, replay_body(body, receive), send)


def _counting(receive: Receive, cap: int) -> Receive:
    received = 0

    async def counted() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > cap:
                raise BodyTooLarge(cap)
        return message

    return counted


async def read_body(receive: Receive, cap: int | None = None) -> bytes | None:
    """The whole body, or None as soon as it passes ``cap`` (the rest is never read).
    Raises ``ClientDisconnect`` if the client goes away before the end: a partial body must
    never reach a route as if it were whole."""
    chunks: list[bytes] = []
    received = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise ClientDisconnect
        chunk = message.get("body", b"")
        received += len(chunk)
        if cap is not None and received > cap:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def body_within(scope: Scope, receive: Receive, send: Send, cap: int) -> bytes | None:
    """The whole body, or None once the request is dealt with: answered 413 when it passes
    ``cap``, or dropped when the client went away before its end (nobody to answer, and
    nothing of the request is run)."""
    try:
        body = await read_body(receive, cap)
    except ClientDisconnect:
        return None
    if body is None:
        await _refuse_too_large(send, scope, cap)
    return body


def replay_body(body: bytes, receive: Receive) -> Receive:
    """``receive`` with a body already read given back first."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # later calls wait for the disconnect, as the server's would

    return replay


# Escapes first (so an escaped quote cannot end a string), then strings, which may contain
# brackets; both expressions run in linear time on any input.
_JSON_ESCAPE = re.compile(rb"\\.", re.DOTALL)
_JSON_STRING = re.compile(rb'"[^"]*"')
_NOT_BRACKETS = re.compile(rb"[^\[\]{}]+")
# Opening brackets become +1, closing ones -1 (as signed bytes), for a running sum in C.
_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")


def json_depth_exceeds(body: bytes, limit: int) -> bool:
    """Whether the body nests brackets deeper than ``limit``, decided on the raw bytes
    without recursion: strip escapes, strings and everything but brackets (regular
    expressions), then take the running sum of +1/-1 steps (``itertools.accumulate``, in C):
    its maximum is the depth. Not JSON at all: False (the parser will say what is wrong)."""
    stripped = body.lstrip()
    if stripped[:1] not in (b"{", b"[") or stripped.count(b"[") + stripped.count(b"{") <= limit:
        return False  # most bodies: a few brackets, decided without any expression
    brackets = _NOT_BRACKETS.sub(b"", _JSON_STRING.sub(b"", _JSON_ESCAPE.sub(b"", stripped)))
    steps = array("b", brackets.translate(_STEPS))
    depth = 0
    for start in range(0, len(steps), _CHUNK):
        # In chunks, so a deep opening is found without summing the whole megabyte.
        sums = list(accumulate(steps[start : start + _CHUNK], initial=depth))
        if max(sums) > limit:
            return True
        if min(sums) < 0:
            return False  # a bracket closed that never opened: not JSON
        depth = sums[-1]
    return False


_CHUNK = 64 * 1024


async def _refuse_too_large(send: Send, scope: Scope, cap: int) -> None:
    await _refuse(
        send, scope, 413, "payload_too_large", f"the request body may be at most {cap} bytes"
    )


async def _refuse(send: Send, scope: Scope, status: int, code: str, detail: str) -> None:
    title = {400: "Bad request", 413: "Payload too large", 431: "Headers too large"}[status]
    body = json.dumps(
        {
            "type": f"https://pocketcinema.dev/problems/{code}",
            "title": title,
            "status": status,
            "detail": detail,
            "code": code,
            "instance": scope.get("path", ""),
            "request_id": request_id_var.get(),
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", PROBLEM_JSON),
                (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-store"),
                # The rest of the request is not read; the connection cannot be reused.
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
