"""Studio catalog: a studio manages its own titles, localizations, licence windows, prices
and collections. Another studio's title or collection answers 404, exactly like one that
does not exist."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Request, Response
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session

from accounts import service as accounts
from api.catalog_schemas import collection_read as viewer_collection_read
from api.catalog_schemas import title_facts
from api.contract import problems
from api.deps import CallerScope, DbSession, PageParams, ReadDb, StudioUser
from api.studio_catalog_schemas import (
    CollectionCreate,
    CollectionWrite,
    LocalizationPut,
    LocalizationRead,
    MemberPut,
    PriceIn,
    PricePut,
    StudioCollectionRead,
    StudioTitlePage,
    StudioTitleRead,
    TitleCreate,
    TitleUpdate,
    WindowCreate,
    WindowPriceRead,
    WindowRead,
    WindowUpdate,
)
from catalog import artwork as artworks
from catalog import service as catalog
from catalog.models import Collection, LicenceWindow, Title
from core.db import unit_of_work
from core.errors import InvalidInput
from core.scope import StudioScope

router = APIRouter(prefix="/v1/studio", tags=["studio catalog"])


# --- mapping --------------------------------------------------------------------------------


def window_read(window: LicenceWindow) -> WindowRead:
    return WindowRead(
        id=window.id,
        territory_mode=window.territory_mode,
        countries=sorted(window.countries),
        starts_at=window.starts_at,
        ends_at=window.ends_at,
        prices=[
            WindowPriceRead(country=p.country, amount_minor=p.price_minor, currency=p.currency)
            for p in window.prices
        ],
    )


def title_read(title: Title) -> StudioTitleRead:
    return StudioTitleRead(
        id=title.id,
        studio_id=title.studio_id,
        slug=title.slug,
        **title_facts(title),
        created_at=title.created_at,
        localizations=[LocalizationRead.model_validate(loc) for loc in title.localizations],
        windows=[window_read(w) for w in title.windows],
    )


def collection_read(collection: Collection) -> StudioCollectionRead:
    return StudioCollectionRead(
        **viewer_collection_read(collection).model_dump(),
        territory_mode=collection.territory_mode,
        countries=sorted(collection.countries),
        restricts=collection.restricts,
        title_ids=[m.title_id for m in collection.members],
    )


def _studio_window(
    session: Session, scope: StudioScope, title_id: str, window_id: str
) -> LicenceWindow:
    return catalog.get_window(session, catalog.studio_title(session, scope, title_id), window_id)


def _reload(session: DbSession, title_id: str) -> StudioTitleRead:
    session.expire_all()
    return title_read(catalog.get_title(session, title_id))


# --- titles ---------------------------------------------------------------------------------


@router.post(
    "/titles",
    summary="Create a title",
    status_code=201,
    response_model=StudioTitleRead,
    responses=problems(
        "invalid_genre",
        "invalid_locale",
        "invalid_runtime",
        "invalid_slug",
        "invalid_storage_key",
        "slug_taken",
        "studio_not_found",
        "studio_required",
        "studio_mismatch",
        "title_not_found",
    ),
)
def create_title(
    session: DbSession, _: StudioUser, scope: CallerScope, body: TitleCreate
) -> StudioTitleRead:
    """A new title of your studio (admins name the studio). It is not on sale until a licence window with prices opens."""
    studio_id = scope.owner(body.studio_id)
    accounts.get_studio(session, studio_id)  # an admin may name a studio that does not exist
    title = catalog.create_title(
        session,
        studio_id=studio_id,
        slug=body.slug,
        original_title=body.original_title,
        original_language=body.original_language,
        runtime_seconds=body.runtime_seconds,
        genres=body.genres,
        trailer_url=body.trailer_url,
        trailer_key=body.trailer_key,
    )
    return _reload(session, title.id)


@router.get(
    "/titles",
    summary="Your studio's titles",
    response_model=StudioTitlePage,
    responses=problems("invalid_locale"),
)
def list_titles(
    session: ReadDb, _: StudioUser, scope: CallerScope, page: PageParams
) -> StudioTitlePage:
    """Every title of your studio, on sale or not, newest first."""
    rows, total = catalog.list_studio_titles(session, scope, offset=page.offset, limit=page.limit)
    return StudioTitlePage(
        items=[title_read(t) for t in rows],
        total=total,
        offset=page.offset,
        limit=page.limit,
    )


@router.get(
    "/titles/{title_id}",
    summary="One of your titles",
    response_model=StudioTitleRead,
    responses=problems("title_not_found", "invalid_locale"),
)
def get_title(session: ReadDb, _: StudioUser, scope: CallerScope, title_id: str) -> StudioTitleRead:
    """A title of your studio with its localizations, windows and prices."""
    return title_read(catalog.studio_title(session, scope, title_id))


@router.patch(
    "/titles/{title_id}",
    summary="Change a title's details",
    response_model=StudioTitleRead,
    responses=problems(
        "invalid_genre",
        "invalid_locale",
        "invalid_runtime",
        "invalid_storage_key",
        "title_not_found",
    ),
)
def update_title(
    session: DbSession, _: StudioUser, scope: CallerScope, title_id: str, body: TitleUpdate
) -> StudioTitleRead:
    """Only the fields sent change."""
    title = catalog.studio_title(session, scope, title_id)
    catalog.update_title(
        session,
        title,
        catalog.TitleChanges(
            original_title=body.original_title,
            original_language=body.original_language,
            runtime_seconds=body.runtime_seconds,
            genres=body.genres,
            trailer_url=body.trailer_url,
            trailer_key=body.trailer_key,
            clear_trailer=body.clear_trailer,
        ),
    )
    return _reload(session, title_id)


@router.put(
    "/titles/{title_id}/localizations/{locale}",
    summary="Set a title's metadata in one locale",
    response_model=LocalizationRead,
    responses=problems("invalid_locale", "invalid_storage_key", "name_empty", "title_not_found"),
)
def put_localization(
    session: DbSession,
    _: StudioUser,
    scope: CallerScope,
    title_id: str,
    locale: str,
    body: LocalizationPut,
) -> LocalizationRead:
    """Title, synopsis and poster in one BCP 47 locale; viewers get the best match of their languages."""
    title = catalog.studio_title(session, scope, title_id)
    row = catalog.put_localization(
        session,
        title,
        locale,
        name=body.name,
        synopsis=body.synopsis,
        tagline=body.tagline,
        artwork_url=body.artwork_url,
        artwork_key=body.artwork_key,
    )
    return LocalizationRead.model_validate(row)


@router.delete(
    "/titles/{title_id}/localizations/{locale}",
    summary="Remove a title's metadata in one locale",
    status_code=204,
    responses=problems("invalid_locale", "localization_not_found", "title_not_found"),
)
def delete_localization(
    session: DbSession, _: StudioUser, scope: CallerScope, title_id: str, locale: str
) -> Response:
    """Viewers asking for this locale fall back to the next best one."""
    catalog.delete_localization(session, catalog.studio_title(session, scope, title_id), locale)
    return Response(status_code=204)


_ARTWORK_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            kind: {"schema": {"type": "string", "format": "binary"}}
            for kind in artworks.ACCEPTED_TYPES
        },
    }
}


@router.put(
    "/titles/{title_id}/localizations/{locale}/artwork",
    summary="Upload the poster of a title in one locale (JPEG, PNG or WebP)",
    response_model=LocalizationRead,
    openapi_extra=_ARTWORK_BODY,
    responses=problems(
        "artwork_too_large",
        "artwork_type_unsupported",
        "invalid_locale",
        "localization_not_found",
        "title_not_found",
    ),
)
async def put_artwork(
    request: Request,
    _: StudioUser,
    scope: CallerScope,
    title_id: str,
    locale: str,
    content_type: Annotated[str | None, Header()] = None,
) -> LocalizationRead:
    """The image's bytes as the body, its type in Content-Type (checked against the file's first bytes); at most 10 MB. Replaces an artwork URL."""
    data = bytearray()
    async for chunk in request.stream():
        data.extend(chunk)
        if len(data) > artworks.MAX_ARTWORK_BYTES:
            raise artworks.ArtworkTooLarge("artwork may be at most 10 MB")

    def store() -> LocalizationRead:
        # Its own transaction, after the body arrived: no database lock while bytes stream.
        with unit_of_work() as session:
            title = catalog.studio_title(session, scope, title_id)
            row = artworks.store_artwork(session, title, locale, bytes(data), content_type)
            return LocalizationRead.model_validate(row)

    return await run_in_threadpool(store)


@router.get(
    "/titles/{title_id}/localizations/{locale}/artwork",
    summary="The uploaded poster of a title in one locale",
    response_class=Response,
    responses={
        **problems(
            "artwork_not_found", "invalid_locale", "localization_not_found", "title_not_found"
        ),
        200: {
            "content": {kind: {} for kind in artworks.ACCEPTED_TYPES},
            "description": "The image",
        },
    },
)
def get_artwork(
    session: ReadDb, _: StudioUser, scope: CallerScope, title_id: str, locale: str
) -> Response:
    """The image as stored, for previews in the studio portal."""
    image = artworks.artwork(catalog.studio_title(session, scope, title_id), locale)
    return Response(
        image.data, media_type=image.content_type, headers={"Cache-Control": "private, no-cache"}
    )


# --- windows and prices ---------------------------------------------------------------------


def _prices(prices: list[PriceIn]) -> dict[str, tuple[int, str]]:
    out: dict[str, tuple[int, str]] = {}
    for price in prices:
        country = price.country.upper()
        if country in out:
            raise InvalidInput(f"two prices for {country}", code="duplicate_price")
        out[country] = (price.amount_minor, price.currency)
    return out


@router.post(
    "/titles/{title_id}/windows",
    summary="Add a licence window (territories, dates, prices)",
    status_code=201,
    response_model=WindowRead,
    responses=problems(
        "duplicate_price",
        "end_before_start",
        "naive_datetime",
        "price_not_chargeable",
        "price_not_positive",
        "price_outside_territory",
        "price_too_high",
        "territories_empty",
        "title_not_found",
        "unknown_country",
        "unknown_currency",
        "window_overlap",
    ),
)
def create_window(
    session: DbSession, _: StudioUser, scope: CallerScope, title_id: str, body: WindowCreate
) -> WindowRead:
    """Where and when the title may be sold and played, and at what price per country. Windows of a title may not overlap in a country."""
    title = catalog.studio_title(session, scope, title_id)
    window = catalog.add_window(
        session,
        title,
        territory_mode=body.territory_mode,
        countries=body.countries,
        starts_at=body.starts_at,
        ends_at=body.ends_at,
        prices=_prices(body.prices),
    )
    return window_read(window)


@router.patch(
    "/titles/{title_id}/windows/{window_id}",
    summary="Change a licence window's territories or dates",
    response_model=WindowRead,
    responses=problems(
        "end_before_start",
        "naive_datetime",
        "price_outside_territory",
        "territories_empty",
        "title_not_found",
        "unknown_country",
        "window_not_found",
        "window_overlap",
    ),
)
def update_window(
    session: DbSession,
    _: StudioUser,
    scope: CallerScope,
    title_id: str,
    window_id: str,
    body: WindowUpdate,
) -> WindowRead:
    """Tickets already sold keep their rental rules; new sales follow the new window."""
    window = catalog.update_window(
        session,
        _studio_window(session, scope, title_id, window_id),
        territory_mode=body.territory_mode,
        countries=body.countries,
        starts_at=body.starts_at,
        ends_at=body.ends_at,
    )
    return window_read(window)


@router.delete(
    "/titles/{title_id}/windows/{window_id}",
    summary="Delete a licence window and its prices",
    status_code=204,
    responses=problems("title_not_found", "window_not_found"),
)
def delete_window(
    session: DbSession, _: StudioUser, scope: CallerScope, title_id: str, window_id: str
) -> Response:
    """The title stops being sold in the window's territories (tickets already sold stay valid until their window closes)."""
    catalog.delete_window(session, _studio_window(session, scope, title_id, window_id))
    return Response(status_code=204)


@router.put(
    "/titles/{title_id}/windows/{window_id}/prices/{country}",
    summary="Set the price in one country of a window",
    response_model=WindowRead,
    responses=problems(
        "price_not_chargeable",
        "price_not_positive",
        "price_outside_territory",
        "price_too_high",
        "title_not_found",
        "unknown_country",
        "unknown_currency",
        "window_not_found",
    ),
)
def put_price(
    session: DbSession,
    _: StudioUser,
    scope: CallerScope,
    title_id: str,
    window_id: str,
    country: str,
    body: PricePut,
) -> WindowRead:
    """A price in minor units of an ISO 4217 currency, for one country of the window."""
    window = _studio_window(session, scope, title_id, window_id)
    catalog.set_price(session, window, country, body.amount_minor, body.currency)
    return window_read(window)


@router.delete(
    "/titles/{title_id}/windows/{window_id}/prices/{country}",
    summary="Stop selling in one country of a window",
    response_model=WindowRead,
    responses=problems("price_not_found", "title_not_found", "unknown_country", "window_not_found"),
)
def delete_price(
    session: DbSession,
    _: StudioUser,
    scope: CallerScope,
    title_id: str,
    window_id: str,
    country: str,
) -> WindowRead:
    """The title stops being sold in that country of the window."""
    window = _studio_window(session, scope, title_id, window_id)
    catalog.delete_price(session, window, country)
    return window_read(window)


# --- collections ----------------------------------------------------------------------------


@router.post(
    "/collections",
    summary="Create a collection (festival section)",
    status_code=201,
    response_model=StudioCollectionRead,
    responses=problems(
        "end_before_start",
        "invalid_slug",
        "naive_datetime",
        "slug_taken",
        "territories_empty",
        "territory_mode_required",
        "unknown_country",
        "studio_not_found",
        "studio_required",
        "studio_mismatch",
    ),
)
def create_collection(
    session: DbSession, _: StudioUser, scope: CallerScope, body: CollectionCreate
) -> StudioCollectionRead:
    """A festival section: its own window and territories restrict where its titles are sold."""
    collection = catalog.create_collection(
        session,
        studio_id=scope.owner(),
        slug=body.slug,
        name=body.name,
        description=body.description,
        starts_at=body.starts_at,
        ends_at=body.ends_at,
        territory_mode=body.territory_mode,
        countries=body.countries,
    )
    return collection_read(collection)


@router.get(
    "/collections", summary="Your studio's collections", response_model=list[StudioCollectionRead]
)
def list_collections(
    session: ReadDb, _: StudioUser, scope: CallerScope
) -> list[StudioCollectionRead]:
    """Every collection of your studio."""
    return [collection_read(c) for c in catalog.list_collections(session, scope)]


@router.put(
    "/collections/{collection_id}",
    summary="Replace a collection's name, window and territories",
    response_model=StudioCollectionRead,
    responses=problems(
        "collection_not_found",
        "end_before_start",
        "naive_datetime",
        "territories_empty",
        "territory_mode_required",
        "unknown_country",
    ),
)
def replace_collection(
    session: DbSession, _: StudioUser, scope: CallerScope, collection_id: str, body: CollectionWrite
) -> StudioCollectionRead:
    """The whole collection is replaced by what is sent."""
    collection = catalog.studio_collection(session, scope, collection_id)
    catalog.update_collection(
        session,
        collection,
        name=body.name,
        description=body.description,
        starts_at=body.starts_at,
        ends_at=body.ends_at,
        territory_mode=body.territory_mode,
        countries=body.countries,
        replace_terms=True,
    )
    return collection_read(collection)


@router.put(
    "/collections/{collection_id}/titles/{title_id}",
    summary="Put one of your titles in a collection",
    response_model=StudioCollectionRead,
    responses=problems("collection_not_found", "title_not_found"),
)
def add_member(
    session: DbSession,
    _: StudioUser,
    scope: CallerScope,
    collection_id: str,
    title_id: str,
    body: MemberPut | None = None,
) -> StudioCollectionRead:
    """Adding a title twice changes nothing."""
    collection = catalog.studio_collection(session, scope, collection_id)
    title = catalog.studio_title(session, scope, title_id)
    catalog.add_to_collection(session, collection, title, body.position if body else 0)
    return collection_read(collection)


@router.delete(
    "/collections/{collection_id}/titles/{title_id}",
    summary="Take a title out of a collection",
    response_model=StudioCollectionRead,
    responses=problems("collection_not_found", "title_not_found", "title_not_in_collection"),
)
def remove_member(
    session: DbSession, _: StudioUser, scope: CallerScope, collection_id: str, title_id: str
) -> StudioCollectionRead:
    """The title is no longer restricted by the collection."""
    collection = catalog.studio_collection(session, scope, collection_id)
    title = catalog.studio_title(session, scope, title_id)
    catalog.remove_from_collection(session, collection, title)
    return collection_read(collection)
