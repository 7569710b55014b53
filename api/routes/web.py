"""The web apps: the studio portal (/studio), the viewer storefront (/store) and the office
for finance and support (/office).

Each app is one HTML shell plus ES modules and CSS under ``web/`` in the repository, served by
this process (never a CDN). The apps are clients of the public API like the mobile apps: they
hold no privilege of their own, sign in through /v1/auth and call /v1 with a bearer token.

The shell's ``<html lang>`` is the best match of the caller's Accept-Language among the UI's
languages (``UI_LOCALES``); the app's scripts read it and load ``web/i18n/<app>/<lang>.json``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from html import escape
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, HTMLResponse

from api.contract import PUBLIC, problems
from catalog.locales import negotiate, parse_accept_language
from core.errors import NotFound
from core.settings import get_settings

router = APIRouter(tags=["web"])

WEB_ROOT = Path(__file__).resolve().parent.parent.parent / "web"
# The languages the UI text is written in (web/i18n/<app>/<lang>.json); English is the fallback.
UI_LOCALES = ("en", "zh-Hans", "zh-Hant", "ru", "es", "it")
_TYPES = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".woff2": "font/woff2",
}
# Assets change with a deploy, not per request: a short cache keeps reloads cheap and a new
# release visible within minutes.
_ASSET_CACHE = {"Cache-Control": "public, max-age=300"}
_NO_CACHE = {"Cache-Control": "no-cache", "Vary": "Accept-Language"}


def ui_locale(accept_language: str | None) -> str:
    """The UI language for an Accept-Language header (RFC 4647 lookup; English if none fits)."""
    return negotiate(parse_accept_language(accept_language), UI_LOCALES) or "en"


def app_return_link(url: str | None, schemes: Sequence[str]) -> str | None:
    """The storefront's ``?return=`` link back into a mobile app, if it may be followed: an
    app URL (``pocketcinema://title/...``) whose scheme is configured
    (``store_return_schemes``); never a web page, so /store cannot redirect to another site."""
    if not url or len(url) > 2000 or any(ch.isspace() or ord(ch) < 32 for ch in url):
        return None
    scheme, sep, _ = url.partition(":")
    return url if sep and scheme.lower() in schemes else None


def _shell(app: str, request: Request, extra: str = "") -> HTMLResponse:
    html = (WEB_ROOT / app / "index.html").read_text(encoding="utf-8")
    locale = ui_locale(request.headers.get("accept-language"))
    # The shells are written with lang="en"; only attributes of <html> are added, never markup.
    return HTMLResponse(
        html.replace('<html lang="en"', f'<html lang="{locale}"{extra}', 1), headers=_NO_CACHE
    )


def _store_attributes(request: Request) -> str:
    # The link-out from a mobile app (US): where "back to the app" leads after a purchase.
    link = app_return_link(request.query_params.get("return"), get_settings().store_return_schemes)
    return f' data-return="{escape(link, quote=True)}"' if link else ""


_PAGE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/html": {}}, "description": "The app's HTML shell"}
}
# app -> (summary, description): each app's shell is its own documented operation.
_APP_PAGES = {
    "studio": (
        "The studio portal",
        "Titles, releases, uploads, transcoding, windows and prices, box office, webhooks.",
    ),
    "store": (
        "The viewer storefront",
        "The localized catalog, title pages, buying, playing, continue watching, the account. "
        "`?return=<app URL>` (the link-out from a mobile app): after a purchase the page offers "
        "a link back into the app, only when the URL's scheme is one of "
        "`POCKETCINEMA_STORE_RETURN_SCHEMES`; anything else is ignored.",
    ),
    "office": (
        "The office for finance and support",
        "Reports, reconciliation and FX for finance; look-ups, refunds and failures for support.",
    ),
}


def _page(app: str) -> Callable[[Request], HTMLResponse]:
    def page(request: Request) -> HTMLResponse:
        return _shell(app, request, _store_attributes(request) if app == "store" else "")

    return page


APPS = tuple(_APP_PAGES)

for _app, (_summary, _description) in _APP_PAGES.items():
    router.add_api_route(
        f"/{_app}",
        _page(_app),
        methods=["GET"],
        name=f"{_app}_page",
        operation_id=f"web_{_app}_page",
        summary=_summary,
        description=_description,
        response_class=HTMLResponse,
        responses=_PAGE,
        openapi_extra={"security": PUBLIC},
    )


@router.get(
    "/web/{path:path}",
    summary="A web app's asset (script, style sheet, UI text, image)",
    response_class=FileResponse,
    responses={
        **problems("web_asset_not_found"),
        200: {
            "content": {
                **{t: {} for t in sorted(set(_TYPES.values())) if t != "application/json"},
                # UI texts: web/i18n/<app>/<lang>.json, message key to text.
                "application/json": {
                    "schema": {"type": "object", "additionalProperties": {"type": "string"}}
                },
            },
            "description": "The asset",
        },
    },
    openapi_extra={"security": PUBLIC},
)
def web_asset(
    path: str = PathParam(max_length=200, pattern=r"^[A-Za-z0-9_./-]+$"),
) -> FileResponse:
    """Files under ``web/`` of known types only; no directory listings, nothing outside it."""
    target = (WEB_ROOT / path).resolve()
    media_type = _TYPES.get(target.suffix)
    if media_type is None or not target.is_relative_to(WEB_ROOT) or not target.is_file():
        raise NotFound("no such web asset", code="web_asset_not_found")
    return FileResponse(target, media_type=media_type, headers=_ASSET_CACHE)
