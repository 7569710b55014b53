"""Security headers on every response, as one pure ASGI middleware.

- Every response: ``X-Content-Type-Options: nosniff`` (a playlist or a problem body is never
  run as a script by a browser that guesses types), and HSTS when the API is served over TLS
  (the request came in as https, or ``base_url`` is https: TLS ends at our proxy).
- HTML pages (``/play``, ``/docs``, ``/redoc``): a Content-Security-Policy that names where code may come
  from, ``frame-ancestors 'none'`` and ``X-Frame-Options: DENY`` (no clickjacking of the
  sign-in form), ``Referrer-Policy: no-referrer`` (signed media URLs never leak in Referer).

/docs (Swagger UI) and /redoc load their assets from this process (api/routes/docs.py) and
start with an inline script; ReDoc runs a worker from a ``blob:`` URL. /play serves everything itself; hls.js plays from
``blob:`` MediaSource URLs and fetches playlists and segments from us or the media CDN
(S3, CloudFront), hence ``connect-src 'self' https:``.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.settings import get_settings

_PLAYER_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; media-src 'self' blob:; worker-src 'self' blob:; "
    "connect-src 'self' https:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_DOCS_CSP = (
    "default-src 'none'; script-src 'self' 'unsafe-inline'; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; "
    "worker-src 'self' blob:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_NOSNIFF = (b"x-content-type-options", b"nosniff")
_HSTS = (b"strict-transport-security", b"max-age=31536000; includeSubDomains")
_HTML_EXTRA = [(b"x-frame-options", b"DENY"), (b"referrer-policy", b"no-referrer")]


def html_policy(path: str) -> bytes:
    return (
        _DOCS_CSP if path.startswith("/docs") or path.startswith("/redoc") else _PLAYER_CSP
    ).encode()


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._tls_everywhere: bool | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self._tls_everywhere is None:
            self._tls_everywhere = get_settings().base_url.startswith("https://")
        tls = self._tls_everywhere or scope.get("scheme") == "https"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {name.lower() for name, _ in headers}
                if b"x-content-type-options" not in names:
                    headers.append(_NOSNIFF)
                if tls:
                    headers.append(_HSTS)
                content_type = next((v for n, v in headers if n.lower() == b"content-type"), b"")
                if content_type.startswith(b"text/html"):
                    headers.append((b"content-security-policy", html_policy(scope["path"])))
                    headers.extend(_HTML_EXTRA)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
