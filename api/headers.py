"""Security headers on every response (added by the request middleware, api/middleware.py).

- Every response: ``X-Content-Type-Options: nosniff`` (a playlist or a problem body is never
  run as a script by a browser that guesses types), and HSTS when the API is served over TLS
  (the request came in as https, or ``base_url`` is https: TLS ends at our proxy).
- HTML pages (``/play``, the web apps, ``/docs``, ``/redoc``): a Content-Security-Policy that names where code may come
  from, ``frame-ancestors 'none'`` and ``X-Frame-Options: DENY`` (no clickjacking of the
  sign-in form), ``Referrer-Policy: no-referrer`` (signed media URLs never leak in Referer).

/docs (Swagger UI) and /redoc load their assets from this process (api/routes/docs.py) and
start with an inline script; ReDoc runs a worker from a ``blob:`` URL. /play serves everything itself; hls.js plays from
``blob:`` MediaSource URLs and fetches playlists and segments from us or the media CDN
(S3, CloudFront), hence ``connect-src 'self' https:``.
"""

from __future__ import annotations

from collections.abc import Iterable

from core.settings import PaymentProvider, get_settings

_PLAYER_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; media-src 'self' blob:; worker-src 'self' blob:; "
    "connect-src 'self' https:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
# The web apps (/studio, /store, /office): everything from this process; charts and artwork
# previews are shown from ``blob:`` URLs made of authenticated fetches; uploads PUT parts to
# us or to presigned S3 URLs (https:).
_WEB_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data: blob: https:; media-src 'self' blob:; worker-src 'self' blob:; "
    "connect-src 'self' https:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_WEB_APPS = ("/studio", "/store", "/office")
# The storefront also plays trailers from the media CDN or a presigned S3 URL (https:).
_STORE_CSP = _WEB_CSP.replace("media-src 'self' blob:;", "media-src 'self' blob: https:;")
# In production it pays with Stripe's Payment Element: Stripe requires Stripe.js from its
# own domain and runs the card form in its frames. Only then, and only on /store.
_STRIPE_CSP = _STORE_CSP.replace(
    "script-src 'self';", "script-src 'self' https://js.stripe.com;"
).replace(
    "frame-ancestors", "frame-src https://js.stripe.com https://hooks.stripe.com; frame-ancestors"
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
    if path.startswith("/docs") or path.startswith("/redoc"):
        return _DOCS_CSP.encode()
    if path.startswith("/store"):
        stripe = get_settings().payment_provider is PaymentProvider.stripe
        return (_STRIPE_CSP if stripe else _STORE_CSP).encode()
    if path.startswith(_WEB_APPS):
        return _WEB_CSP.encode()
    return _PLAYER_CSP.encode()


def security_headers(
    headers: Iterable[tuple[bytes, bytes]], path: str, tls: bool
) -> list[tuple[bytes, bytes]]:
    """A response's headers with ours added (api/middleware.py calls it for every response)."""
    out = list(headers)
    html = False
    sniff = True
    for name, value in out:
        lowered = name.lower()
        if lowered == b"content-type":
            html = value.startswith(b"text/html")
        elif lowered == b"x-content-type-options":
            sniff = False
    if sniff:
        out.append(_NOSNIFF)
    if tls:
        out.append(_HSTS)
    if html:
        out.append((b"content-security-policy", html_policy(path)))
        out.extend(_HTML_EXTRA)
    return out
