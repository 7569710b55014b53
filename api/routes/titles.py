"""Viewer catalog: what is on sale in the caller's country right now, in the caller's
language, with the local price."""

from __future__ import annotations

import mimetypes
from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from fastapi.responses import FileResponse, RedirectResponse

from api.catalog_schemas import (
    CollectionRead,
    PriceRead,
    TitlePage,
    TitleRead,
    collection_read,
    title_facts,
)
from api.contract import PUBLIC, problems
from api.deps import Locales, PageParams, ReadDb, RequestCountry
from catalog import service as catalog
from catalog.models import Title
from core.db import utcnow
from core.errors import NotFound
from core.storage import get_store

router = APIRouter(prefix="/v1", tags=["catalog"])


def title_read(
    title: Title, offer: catalog.Offer, locales: Sequence[str], *, playable: bool
) -> TitleRead:
    text = catalog.localize(title, locales)
    return TitleRead(
        id=title.id,
        slug=title.slug,
        locale=text.locale,
        name=text.name,
        synopsis=text.synopsis,
        tagline=text.tagline,
        artwork_url=text.artwork_url,
        artwork_key=text.artwork_key,
        **title_facts(title),
        price=PriceRead(
            amount_minor=offer.price_minor,
            currency=offer.currency,
            country=offer.country,
            available_until=offer.window_ends_at,
        ),
        playable=playable,
    )


def _language_headers(response: Response, used: Sequence[str]) -> None:
    # Content-Language may list several tags: a page can mix locales when some titles lack
    # the preferred one. Vary tells caches that the body depends on Accept-Language.
    tags = list(dict.fromkeys(used))
    if tags:
        response.headers["Content-Language"] = ", ".join(tags)
    response.headers["Vary"] = "Accept-Language"


@router.get(
    "/titles",
    summary="Titles on sale in your country now",
    description=(
        "Only titles that can be bought in the caller's country at this moment, each with the "
        "local price. Metadata in the negotiated locale (Accept-Language or `lang`); the "
        "Content-Language header names the locale(s) used. Unknown country: empty list."
    ),
    response_model=TitlePage,
    responses=problems(
        "country_unknown", "not_licensed_in_country", "outside_licence_window", "invalid_locale"
    ),
    openapi_extra={"security": PUBLIC},
)
def list_titles(
    session: ReadDb,
    page: PageParams,
    country: RequestCountry,
    locales: Locales,
    response: Response,
    q: Annotated[str | None, Query(max_length=200, description="Search text")] = None,
    genre: Annotated[str | None, Query(max_length=40, description="Genre slug")] = None,
    language: Annotated[
        str | None,
        Query(max_length=35, description="Original, audio or subtitle language (BCP 47)"),
    ] = None,
    collection: Annotated[
        str | None, Query(max_length=120, description="Collection id or slug")
    ] = None,
) -> TitlePage:
    items, total = catalog.list_on_sale(
        session,
        country=country,
        at=utcnow(),
        offset=page.offset,
        limit=page.limit,
        filters=catalog.CatalogQuery(
            query=q, genre=genre, language=language, collection=collection
        ),
    )
    playable = catalog.playable_title_ids(session, [t.id for t, _ in items])
    reads = [title_read(t, offer, locales, playable=t.id in playable) for t, offer in items]
    _language_headers(response, [r.locale for r in reads])
    return TitlePage(
        items=reads, total=total, offset=page.offset, limit=page.limit, country=country
    )


@router.get(
    "/titles/{title_id}",
    summary="One title, if on sale in your country now",
    description=(
        "403 with `country_unknown`, `not_licensed_in_country` or `outside_licence_window` "
        "when it cannot be bought here now; 404 `title_not_found` when it does not exist."
    ),
    response_model=TitleRead,
    responses=problems("title_not_found", "invalid_locale"),
    openapi_extra={"security": PUBLIC},
)
def get_title(
    session: ReadDb,
    title_id: str,
    country: RequestCountry,
    locales: Locales,
    response: Response,
) -> TitleRead:
    offer = catalog.offer_for(session, title_id, country, utcnow())
    read = title_read(
        catalog.get_title(session, title_id),
        offer,
        locales,
        playable=bool(catalog.playable_title_ids(session, [title_id])),
    )
    _language_headers(response, [read.locale])
    return read


# A presigned media URL lives long enough to start and seek, not to be passed around.
_PRESIGNED_SECONDS = 600
_SALE_PROBLEMS = (
    "title_not_found",
    "country_unknown",
    "not_licensed_in_country",
    "outside_licence_window",
)
_REDIRECT: dict[int | str, dict[str, Any]] = {
    307: {"description": "Redirect to a presigned URL of the file (S3 storage)"}
}


def _stored_file(key: str, missing: str, fallback_type: str) -> Response:
    """A stored object: served by this process (byte ranges included) from local storage,
    or a 307 to a presigned URL with S3."""
    store = get_store()
    local = store.local_path(key)
    if local is None:
        url = store.presign_get(key, _PRESIGNED_SECONDS)
        if url is None:
            raise NotFound("the file is not in storage", code=missing)
        return RedirectResponse(url, status_code=307)
    if not local.is_file():
        raise NotFound("the file is not in storage", code=missing)
    media_type = mimetypes.guess_type(local.name)[0] or fallback_type
    return FileResponse(local, media_type=media_type, headers={"Cache-Control": "no-cache"})


@router.get(
    "/titles/{title_id}/trailer",
    summary="The title's free trailer, where the title is on sale",
    description=(
        "The stored trailer (`trailer_key`) as video: served by this process (byte ranges "
        "for seeking) or, with S3 storage, a 307 redirect to a presigned URL. Free to watch "
        "wherever the title can be bought now; a title whose trailer is a public "
        "`trailer_url` answers 404 `trailer_not_found` here (use that URL)."
    ),
    response_class=FileResponse,
    responses={
        **problems("trailer_not_found", *_SALE_PROBLEMS),
        200: {"content": {"video/mp4": {}}, "description": "The trailer"},
        **_REDIRECT,
    },
    openapi_extra={"security": PUBLIC},
)
def get_trailer(session: ReadDb, title_id: str, country: RequestCountry) -> Response:
    key = catalog.stored_trailer(session, title_id, country, utcnow())
    return _stored_file(key, "trailer_not_found", "video/mp4")


@router.get(
    "/titles/{title_id}/artwork",
    summary="The title's stored artwork in your language, where the title is on sale",
    description=(
        "The artwork stored for the negotiated locale (`artwork_key`, the same locale as the "
        "title's text: `lang` or Accept-Language): served by this process or, with S3 "
        "storage, a 307 redirect to a presigned URL. A locale whose artwork is a public "
        "`artwork_url` answers 404 `artwork_not_found` here (use that URL)."
    ),
    response_class=FileResponse,
    responses={
        **problems("artwork_not_found", "invalid_locale", *_SALE_PROBLEMS),
        200: {
            "content": {"image/jpeg": {}, "image/png": {}, "image/webp": {}},
            "description": "The artwork",
        },
        **_REDIRECT,
    },
    openapi_extra={"security": PUBLIC},
)
def get_artwork(
    session: ReadDb, title_id: str, country: RequestCountry, locales: Locales
) -> Response:
    key = catalog.stored_artwork(session, title_id, country, utcnow(), locales)
    return _stored_file(key, "artwork_not_found", "image/jpeg")


@router.get(
    "/collections",
    summary="Collections open in your country now",
    description="Festival sections and shelves; list their titles with `/v1/titles?collection=`.",
    response_model=list[CollectionRead],
    responses=problems("invalid_locale"),
    openapi_extra={"security": PUBLIC},
)
def list_collections(session: ReadDb, country: RequestCountry) -> list[CollectionRead]:
    return [collection_read(c) for c in catalog.open_collections(session, country, utcnow())]
