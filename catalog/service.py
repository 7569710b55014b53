"""Catalog rules. Other packages call the catalog through this module.

Availability (``offer_for``, ``offers_for``, ``Offer``) is defined in
:mod:`catalog.availability` and re-exported here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from catalog import repository
from catalog.availability import (
    CountryUnknown,
    NotLicensedInCountry,
    Offer,
    OutsideLicenceWindow,
    Territories,
    TitleNotFound,
    collection_gate,
    offer_for,
    offers_for,
)
from catalog.locales import canonical_locale, negotiate
from catalog.models import (
    AssetKind,
    AssetStatus,
    Collection,
    CollectionTerritory,
    CollectionTitle,
    LicenceTerritory,
    LicenceWindow,
    Release,
    ReleaseAsset,
    ReleaseStatus,
    TerritoryMode,
    TerritoryPrice,
    Title,
    TitleGenre,
    TitleLocalization,
    TitleTrackLanguage,
    TrackKind,
)
from catalog.repository import TitleFilter
from catalog.search import fold
from core.db import utcnow
from core.errors import Conflict, InvalidInput, NotFound
from core.geo import is_country, is_currency, known_countries
from core.money import amount_step
from core.outbox import enqueue
from core.scope import StudioScope
from core.storage import check_key

__all__ = [
    "INDEX_JOB",
    "CountryUnknown",
    "Localized",
    "NotLicensedInCountry",
    "Offer",
    "OutsideLicenceWindow",
    "TitleNotFound",
    "offer_for",
    "offers_for",
]

INDEX_JOB = "catalog.title.index"
_SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_GENRE = re.compile(r"^[a-z][a-z0-9-]{1,39}$")
MAX_PRICE_MINOR = 100_000_000  # a million dollars for a ticket is a typo, not a price


# --- validation ------------------------------------------------------------------------------


def _slug(slug: str) -> str:
    if not _SLUG.match(slug) or len(slug) > 120:
        raise InvalidInput("slug must be lower-case words joined by '-'", code="invalid_slug")
    return slug


def _country(code: str, field: str = "country") -> str:
    upper = code.strip().upper()
    if not is_country(upper):
        raise InvalidInput(
            f"{code!r} is not an ISO 3166-1 alpha-2 country code",
            code="unknown_country",
            field=field,
        )
    return upper


def _countries(codes: Iterable[str]) -> frozenset[str]:
    return frozenset(_country(c, "countries") for c in codes)


def _currency(code: str) -> str:
    upper = code.strip().upper()
    if not is_currency(upper):
        raise InvalidInput(f"{code!r} is not an ISO 4217 currency code", code="unknown_currency")
    return upper


def _price(price_minor: int, currency: str) -> int:
    if price_minor <= 0:
        raise InvalidInput("a price must be above zero", code="price_not_positive")
    if price_minor > MAX_PRICE_MINOR:
        raise InvalidInput("that price is implausibly high", code="price_too_high")
    step = amount_step(currency)
    if price_minor % step:
        # The payment provider refuses such amounts (ISK in whole krónur sent as two
        # decimals, three-decimal currencies in tens): say so when the price is set, not
        # when a viewer tries to pay.
        raise InvalidInput(
            f"{currency} prices must be a multiple of {step} minor units",
            code="price_not_chargeable",
        )
    return price_minor


def _aware(value: datetime, field: str) -> datetime:
    if value.tzinfo is None:
        raise InvalidInput(f"{field} needs a time zone (UTC)", code="naive_datetime")
    return value


def _interval(starts_at: datetime, ends_at: datetime) -> None:
    _aware(starts_at, "starts_at")
    _aware(ends_at, "ends_at")
    if ends_at <= starts_at:
        raise InvalidInput("the window must end after it starts", code="end_before_start")


def _territories(mode: TerritoryMode, countries: frozenset[str]) -> Territories:
    if mode is TerritoryMode.listed and not countries:
        raise InvalidInput("list at least one country", code="territories_empty")
    return Territories(mode, countries)


def _intersects(a: Territories, b: Territories) -> bool:
    listed, excepted = TerritoryMode.listed, TerritoryMode.worldwide_except
    if a.mode is listed and b.mode is listed:
        return bool(a.countries & b.countries)
    if a.mode is listed and b.mode is excepted:
        return bool(a.countries - b.countries)
    if a.mode is excepted and b.mode is listed:
        return bool(b.countries - a.countries)
    return bool(known_countries() - a.countries - b.countries)


def _genres(genres: Iterable[str]) -> list[str]:
    out = []
    for genre in genres:
        g = genre.strip().lower()
        if not _GENRE.match(g):
            raise InvalidInput(f"{genre!r} is not a genre slug", code="invalid_genre")
        out.append(g)
    return sorted(set(out))


# --- titles ---------------------------------------------------------------------------------


def create_title(
    session: Session,
    *,
    studio_id: str,
    slug: str,
    original_title: str,
    original_language: str,
    runtime_seconds: int | None = None,
    genres: Sequence[str] = (),
    trailer_url: str | None = None,
    trailer_key: str | None = None,
) -> Title:
    _slug(slug)
    if repository.get_title_by_slug(session, slug) is not None:
        raise Conflict(f"slug {slug!r} is taken", code="slug_taken")
    if runtime_seconds is not None and runtime_seconds <= 0:
        raise InvalidInput("runtime must be positive", code="invalid_runtime")
    if trailer_key is not None:
        # Refused when saved, not only when served; a new title's id (and so its trailer
        # folder) does not exist yet: set the trailer once the file is in that folder.
        check_key(trailer_key)
        raise InvalidInput(
            "set trailer_key after creating the title, to a file under trailers/<title id>/",
            code="invalid_storage_key",
        )
    title = Title(
        studio_id=studio_id,
        slug=slug,
        original_title=original_title,
        original_language=canonical_locale(original_language),
        runtime_seconds=runtime_seconds,
        trailer_url=trailer_url,
        trailer_key=trailer_key,
        genres=[TitleGenre(genre=g) for g in _genres(genres)],
    )
    session.add(title)
    session.flush()
    _reindex(session, title)
    return title


@dataclass(frozen=True)
class TitleChanges:
    """Fields a studio may change; ``None`` leaves a field as it is (use ``clear_*``)."""

    original_title: str | None = None
    original_language: str | None = None
    runtime_seconds: int | None = None
    genres: Sequence[str] | None = None
    trailer_url: str | None = None
    trailer_key: str | None = None
    clear_trailer: bool = False


def update_title(session: Session, title: Title, changes: TitleChanges) -> Title:
    if changes.original_title is not None:
        title.original_title = changes.original_title
    if changes.original_language is not None:
        title.original_language = canonical_locale(changes.original_language)
    if changes.runtime_seconds is not None:
        if changes.runtime_seconds <= 0:
            raise InvalidInput("runtime must be positive", code="invalid_runtime")
        title.runtime_seconds = changes.runtime_seconds
    if changes.genres is not None:
        wanted = _genres(changes.genres)
        title.genres[:] = [g for g in title.genres if g.genre in wanted]
        have = {g.genre for g in title.genres}
        title.genres.extend(TitleGenre(genre=g) for g in wanted if g not in have)
    if changes.clear_trailer:
        title.trailer_url = title.trailer_key = None
    if changes.trailer_url is not None:
        title.trailer_url = changes.trailer_url
    if changes.trailer_key is not None:
        title.trailer_key = _owned_key(changes.trailer_key, trailer_prefix(title.id))
    session.flush()
    _reindex(session, title)
    return title


def trailer_prefix(title_id: str) -> str:
    return f"trailers/{title_id}/"


def artwork_prefix(title_id: str) -> str:
    return f"artwork/{title_id}/"


def _owned_key(key: str, prefix: str) -> str:
    """A title's stored file must lie under that title's own folder (``prefix``). The public
    trailer and artwork routes serve these keys to anyone where the title is on sale, so a
    key a studio could point anywhere would publish any object in storage: another
    studio's master, unencrypted chunks, the forensic references."""
    check_key(key)
    if not key.startswith(prefix):
        raise InvalidInput(
            f"a stored file of this title must be under {prefix}", code="invalid_storage_key"
        )
    return key


def stored_trailer(session: Session, title_id: str, country: str | None, at: datetime) -> str:
    """The storage key of a title's free trailer, where the title is on sale now.

    The trailer is free to watch wherever the title can be bought (so it follows the same
    licence as the film, never wider); raises what ``offer_for`` raises, or
    ``trailer_not_found`` when the title has no stored trailer (it may have a public
    ``trailer_url`` instead, which the catalog shows as it is).
    """
    offer_for(session, title_id, country, at)
    key = get_title(session, title_id).trailer_key
    if key is None or not key.startswith(trailer_prefix(title_id)):
        raise NotFound("this title has no stored trailer", code="trailer_not_found")
    return key


def stored_artwork(
    session: Session,
    title_id: str,
    country: str | None,
    at: datetime,
    preferences: Sequence[str],
) -> str:
    """The storage key of a title's artwork in the caller's locale (the same negotiation as
    the title's text), where the title is on sale now; ``artwork_not_found`` when that
    locale's artwork is a public ``artwork_url`` or missing."""
    offer_for(session, title_id, country, at)
    key = localize(get_title(session, title_id), preferences).artwork_key
    if key is None or not key.startswith(artwork_prefix(title_id)):
        raise NotFound("this title has no stored artwork in this locale", code="artwork_not_found")
    return key


def get_title(session: Session, title_id: str) -> Title:
    title = repository.get_title_full(session, title_id)
    if title is None:
        raise TitleNotFound("no such title")
    return title


def studio_title(session: Session, scope: StudioScope, title_id: str) -> Title:
    """A title in the caller's scope; another studio's is indistinguishable from none (404)."""
    title = repository.get_studio_title(session, scope, title_id)
    if title is None:
        raise TitleNotFound("no such title")
    return title


def put_localization(
    session: Session,
    title: Title,
    locale: str,
    *,
    name: str,
    synopsis: str | None = None,
    tagline: str | None = None,
    artwork_url: str | None = None,
    artwork_key: str | None = None,
) -> TitleLocalization:
    """Create or replace the title's metadata in one locale."""
    tag = canonical_locale(locale)
    if not name.strip():
        raise InvalidInput("a localized name cannot be empty", code="name_empty")
    row = next((loc for loc in title.localizations if loc.locale == tag), None)
    if row is None:
        row = TitleLocalization(locale=tag, name=name)
        title.localizations.append(row)
    row.name = name.strip()
    row.synopsis = synopsis
    row.tagline = tagline
    row.artwork_url = artwork_url
    row.artwork_key = (
        None if artwork_key is None else _owned_key(artwork_key, artwork_prefix(title.id))
    )
    session.flush()
    _reindex(session, title)
    return row


def delete_localization(session: Session, title: Title, locale: str) -> None:
    tag = canonical_locale(locale)
    row = next((loc for loc in title.localizations if loc.locale == tag), None)
    if row is None:
        raise NotFound(f"no {tag} metadata for this title", code="localization_not_found")
    title.localizations.remove(row)
    session.flush()
    _reindex(session, title)


def set_track_languages(
    session: Session, title_id: str, *, audio: Sequence[str], subtitles: Sequence[str]
) -> None:
    """Record the languages a title can be heard and read in (replaces what was there).
    Transcoding calls this when a release's tracks are packaged."""
    title = get_title(session, title_id)
    wanted = {(TrackKind.audio, canonical_locale(t)) for t in audio} | {
        (TrackKind.subtitle, canonical_locale(t)) for t in subtitles
    }
    title.tracks[:] = [t for t in title.tracks if (t.kind, t.language) in wanted]
    have = {(t.kind, t.language) for t in title.tracks}
    title.tracks.extend(
        TitleTrackLanguage(kind=kind, language=lang) for kind, lang in sorted(wanted - have)
    )
    session.flush()


def _reindex(session: Session, title: Title) -> None:
    # Search text is derived in the background so that a burst of studio edits does not
    # slow their requests; the outbox guarantees the job exists iff the change does.
    enqueue(session, INDEX_JOB, title_id=title.id)


def index_title(session: Session, title_id: str) -> None:
    title = repository.get_title_full(session, title_id)
    if title is None:
        return  # deleted since; nothing to index
    parts = [title.original_title, title.slug.replace("-", " ")]
    for loc in title.localizations:
        parts.extend(p for p in (loc.name, loc.tagline, loc.synopsis) if p)
    title.search_text = fold(" ".join(parts))
    title.indexed_at = utcnow()


# --- licence windows and prices -----------------------------------------------------------


def _check_no_overlap(
    session: Session,
    title_id: str,
    territories: Territories,
    starts_at: datetime,
    ends_at: datetime,
    ignore_window_id: str | None = None,
) -> None:
    for other in repository.windows_of(session, title_id):
        if other.id == ignore_window_id:
            continue
        overlaps_in_time = starts_at < other.ends_at and other.starts_at < ends_at
        if overlaps_in_time and _intersects(
            territories, Territories(other.territory_mode, other.countries)
        ):
            raise InvalidInput(
                "this window overlaps another window of the title in time and territory",
                code="window_overlap",
                window_id=other.id,
            )


def _check_price_in_territory(territories: Territories, country: str) -> None:
    if not territories.covers(country):
        raise InvalidInput(
            f"{country} is not in this window's territories", code="price_outside_territory"
        )


def add_window(
    session: Session,
    title: Title,
    *,
    territory_mode: TerritoryMode,
    countries: Iterable[str],
    starts_at: datetime,
    ends_at: datetime,
    prices: Mapping[str, tuple[int, str]] | None = None,
) -> LicenceWindow:
    """A new licence window, optionally with its prices (country -> (minor units, currency))."""
    _interval(starts_at, ends_at)
    territories = _territories(territory_mode, _countries(countries))
    _check_no_overlap(session, title.id, territories, starts_at, ends_at)
    window = LicenceWindow(
        title_id=title.id,
        territory_mode=territory_mode,
        starts_at=starts_at,
        ends_at=ends_at,
        territories=[LicenceTerritory(country=c) for c in sorted(territories.countries)],
    )
    for country, (price_minor, currency) in (prices or {}).items():
        code = _country(country)
        _check_price_in_territory(territories, code)
        window.prices.append(
            TerritoryPrice(
                country=code,
                price_minor=_price(price_minor, _currency(currency)),
                currency=_currency(currency),
            )
        )
    session.add(window)
    session.flush()
    return window


def get_window(session: Session, title: Title, window_id: str) -> LicenceWindow:
    window = repository.get_window(session, window_id)
    if window is None or window.title_id != title.id:
        raise NotFound("no such licence window", code="window_not_found")
    return window


def update_window(
    session: Session,
    window: LicenceWindow,
    *,
    territory_mode: TerritoryMode | None = None,
    countries: Iterable[str] | None = None,
    starts_at: datetime | None = None,
    ends_at: datetime | None = None,
) -> LicenceWindow:
    mode = territory_mode or window.territory_mode
    codes = _countries(countries) if countries is not None else window.countries
    start = starts_at or window.starts_at
    end = ends_at or window.ends_at
    _interval(start, end)
    territories = _territories(mode, codes)
    _check_no_overlap(session, window.title_id, territories, start, end, ignore_window_id=window.id)
    for price in window.prices:
        if not territories.covers(price.country):
            raise InvalidInput(
                f"{price.country} has a price but would leave the territories; "
                "delete its price first",
                code="price_outside_territory",
            )
    window.territory_mode = mode
    window.starts_at, window.ends_at = start, end
    if codes != window.countries:
        window.territories[:] = [t for t in window.territories if t.country in codes]
        have = window.countries
        window.territories.extend(LicenceTerritory(country=c) for c in sorted(codes - have))
    session.flush()
    return window


def delete_window(session: Session, window: LicenceWindow) -> None:
    session.delete(window)
    session.flush()


def set_price(
    session: Session, window: LicenceWindow, country: str, price_minor: int, currency: str
) -> TerritoryPrice:
    code = _country(country)
    _check_price_in_territory(Territories(window.territory_mode, window.countries), code)
    cur = _currency(currency)
    amount = _price(price_minor, cur)
    row = next((p for p in window.prices if p.country == code), None)
    if row is None:
        row = TerritoryPrice(country=code, price_minor=amount, currency=cur)
        window.prices.append(row)
    else:
        row.price_minor, row.currency = amount, cur
    session.flush()
    return row


def delete_price(session: Session, window: LicenceWindow, country: str) -> None:
    code = _country(country)
    row = next((p for p in window.prices if p.country == code), None)
    if row is None:
        raise NotFound(f"no price for {code} in this window", code="price_not_found")
    window.prices.remove(row)
    session.flush()


# --- collections ----------------------------------------------------------------------------


def create_collection(
    session: Session,
    *,
    studio_id: str,
    slug: str,
    name: str,
    description: str | None = None,
    starts_at: datetime | None = None,
    ends_at: datetime | None = None,
    territory_mode: TerritoryMode | None = None,
    countries: Iterable[str] = (),
) -> Collection:
    _slug(slug)
    if repository.get_collection_by_slug(session, slug) is not None:
        raise Conflict(f"slug {slug!r} is taken", code="slug_taken")
    collection = Collection(studio_id=studio_id, slug=slug, name=name, description=description)
    _apply_collection_terms(collection, starts_at, ends_at, territory_mode, countries)
    session.add(collection)
    session.flush()
    return collection


def _apply_collection_terms(
    collection: Collection,
    starts_at: datetime | None,
    ends_at: datetime | None,
    territory_mode: TerritoryMode | None,
    countries: Iterable[str],
) -> None:
    if starts_at is not None:
        _aware(starts_at, "starts_at")
    if ends_at is not None:
        _aware(ends_at, "ends_at")
    if starts_at is not None and ends_at is not None and ends_at <= starts_at:
        raise InvalidInput("the collection must end after it starts", code="end_before_start")
    codes = _countries(countries)
    if territory_mode is not None:
        _territories(territory_mode, codes)
    elif codes:
        raise InvalidInput(
            "countries need a territory_mode (listed or worldwide_except)",
            code="territory_mode_required",
        )
    collection.starts_at, collection.ends_at = starts_at, ends_at
    collection.territory_mode = territory_mode
    collection.territories[:] = [CollectionTerritory(country=c) for c in sorted(codes)]


def update_collection(
    session: Session,
    collection: Collection,
    *,
    name: str | None = None,
    description: str | None = None,
    starts_at: datetime | None = None,
    ends_at: datetime | None = None,
    territory_mode: TerritoryMode | None = None,
    countries: Iterable[str] | None = None,
    replace_terms: bool = False,
) -> Collection:
    """Rename, or with ``replace_terms`` set the collection's window and territories anew
    (``None`` then means "unrestricted")."""
    if name is not None:
        collection.name = name
    if description is not None:
        collection.description = description
    if replace_terms:
        collection.territories.clear()
        session.flush()
        _apply_collection_terms(collection, starts_at, ends_at, territory_mode, countries or ())
    session.flush()
    return collection


def studio_collection(session: Session, scope: StudioScope, collection_id: str) -> Collection:
    collection = repository.get_studio_collection(session, scope, collection_id)
    if collection is None:
        raise NotFound("no such collection", code="collection_not_found")
    return collection


def add_to_collection(
    session: Session, collection: Collection, title: Title, position: int = 0
) -> None:
    member = next((m for m in collection.members if m.title_id == title.id), None)
    if member is None:
        collection.members.append(CollectionTitle(title_id=title.id, position=position))
    else:
        member.position = position
    session.flush()


def remove_from_collection(session: Session, collection: Collection, title: Title) -> None:
    member = next((m for m in collection.members if m.title_id == title.id), None)
    if member is None:
        raise NotFound("the title is not in this collection", code="title_not_in_collection")
    collection.members.remove(member)
    session.flush()


def list_collections(session: Session, scope: StudioScope) -> Sequence[Collection]:
    return repository.list_collections(session, scope)


def open_collections(session: Session, country: str | None, at: datetime) -> list[Collection]:
    """Collections a viewer in ``country`` can browse at ``at`` (unrestricted ones always)."""
    if not country:
        return []
    out = []
    # Every studio's collections: which ones a viewer may browse is the gate's answer.
    for collection in repository.list_collections(session, StudioScope.all_studios()):
        gate = collection_gate(collection)
        if not collection.restricts or (gate.covers(country.upper()) and gate.contains(at)):
            out.append(collection)
    return out


# --- reading the catalog --------------------------------------------------------------------


@dataclass(frozen=True)
class Localized:
    """A title's metadata in the locale negotiated for the caller."""

    locale: str  # the locale actually used (the original language when nothing matched)
    name: str
    synopsis: str | None
    tagline: str | None
    artwork_url: str | None
    artwork_key: str | None


def localize(title: Title, preferences: Sequence[str]) -> Localized:
    """Metadata along the fallback chain: each preferred tag and its truncations
    (zh-Hant-TW -> zh-Hant -> zh), then English, then the original title."""
    by_locale = {loc.locale: loc for loc in title.localizations}
    chosen = negotiate(preferences, by_locale)
    if chosen is None:
        return Localized(title.original_language, title.original_title, None, None, None, None)
    loc = by_locale[chosen]
    return Localized(chosen, loc.name, loc.synopsis, loc.tagline, loc.artwork_url, loc.artwork_key)


@dataclass(frozen=True)
class CatalogQuery:
    query: str | None = None
    genre: str | None = None
    language: str | None = None
    collection: str | None = None  # id or slug


def list_on_sale(
    session: Session,
    *,
    country: str | None,
    at: datetime,
    offset: int,
    limit: int,
    filters: CatalogQuery = CatalogQuery(),
) -> tuple[list[tuple[Title, Offer]], int]:
    """What a viewer in ``country`` can buy at ``at``, with the local price. An unknown
    country sees nothing."""
    if not country:
        return [], 0
    where = _filter(session, filters, country=country.upper(), at=at)
    if where is None:
        return [], 0
    rows = repository.list_titles(session, where, offset=offset, limit=limit)
    offers = offers_for(session, [t.id for t in rows], country, at)
    # The SQL filter and decide() agree (tested); a row without an offer would mean they
    # drifted, and leaving it out keeps the promise "listed means buyable".
    items = [(t, offers[t.id]) for t in rows if t.id in offers]
    return items, repository.count_titles(session, where)


def list_studio_titles(
    session: Session,
    scope: StudioScope,
    *,
    offset: int,
    limit: int,
    filters: CatalogQuery = CatalogQuery(),
) -> tuple[Sequence[Title], int]:
    """A page of the titles in scope, each fully loaded (windows, prices, territories)."""
    where = _filter(session, filters, scope=scope)
    if where is None:
        return [], 0
    return (
        repository.list_titles(session, where, offset=offset, limit=limit, full=True),
        repository.count_titles(session, where),
    )


def _filter(
    session: Session,
    filters: CatalogQuery,
    *,
    country: str | None = None,
    at: datetime | None = None,
    scope: StudioScope | None = None,
) -> TitleFilter | None:
    collection_id = None
    if filters.collection:
        found = repository.get_collection(session, filters.collection) or (
            repository.get_collection_by_slug(session, filters.collection)
        )
        if found is None:
            return None
        collection_id = found.id
    language = canonical_locale(filters.language) if filters.language else None
    return TitleFilter(
        country=country,
        at=at,
        scope=scope,
        query=fold(filters.query) if filters.query else None,
        genre=filters.genre.strip().lower() if filters.genre else None,
        language=language,
        collection_id=collection_id,
    )


# --- releases ---------------------------------------------------------------------------------


def create_release(
    session: Session,
    *,
    title_id: str,
    studio_id: str,
    label: str,
    protection_profile: str | None = None,
) -> Release:
    release = Release(
        title_id=title_id, studio_id=studio_id, label=label, protection_profile=protection_profile
    )
    session.add(release)
    session.flush()
    return release


def get_release(session: Session, release_id: str, *, for_update: bool = False) -> Release:
    release = repository.find_release(session, release_id, for_update=for_update)
    if release is None:
        raise NotFound("no such release", code="release_not_found")
    return release


def get_studio_release(session: Session, release_id: str, scope: StudioScope) -> Release:
    """A studio sees only its own releases; another studio's is "not found", not "forbidden",
    so release ids cannot be probed."""
    release = repository.find_studio_release(session, release_id, scope)
    if release is None:
        raise NotFound("no such release", code="release_not_found")
    return release


def list_releases(
    session: Session, *, scope: StudioScope, title_id: str | None, offset: int, limit: int
) -> Sequence[Release]:
    return repository.list_releases(
        session, scope=scope, title_id=title_id, offset=offset, limit=limit
    )


def assets(session: Session, release_id: str) -> Sequence[ReleaseAsset]:
    return repository.assets_of(session, [release_id])[release_id]


def assets_of(session: Session, release_ids: Sequence[str]) -> dict[str, list[ReleaseAsset]]:
    """The assets of several releases in one query (a page of releases)."""
    return repository.assets_of(session, release_ids)


def add_asset(
    session: Session,
    release: Release,
    *,
    kind: AssetKind,
    language: str | None,
    name: str | None,
    filename: str,
    size_bytes: int,
) -> ReleaseAsset:
    if release.status not in (
        ReleaseStatus.awaiting_upload,
        ReleaseStatus.failed,
        ReleaseStatus.ready,
    ):
        raise Conflict(
            "the release is being transcoded; wait for it to finish", code="release_busy"
        )
    if kind is AssetKind.master and any(
        a.kind is AssetKind.master and a.status is not AssetStatus.rejected
        for a in assets(session, release.id)
    ):
        raise Conflict("this release already has a master", code="master_exists")
    asset = ReleaseAsset(
        release_id=release.id,
        kind=kind,
        language=language,
        name=name,
        filename=filename,
        storage_key="",
        size_bytes=size_bytes,
    )
    session.add(asset)
    session.flush()
    suffix = filename.rsplit(".", 1)[-1].lower() if "." in filename else "bin"
    asset.storage_key = f"releases/{release.id}/assets/{asset.id}.{suffix}"
    return asset


def set_status(
    release: Release,
    status: ReleaseStatus,
    *,
    progress: float = 0.0,
    eta_seconds: int | None = None,
    failure_code: str | None = None,
    failure_reason: str | None = None,
) -> None:
    now = utcnow()
    if release.status is not status:
        release.status_changed_at = now
    release.progress_at = now
    release.status = status
    release.progress = progress
    release.eta_seconds = eta_seconds
    release.failure_code = failure_code
    release.failure_reason = failure_reason
    if status is ReleaseStatus.ready:
        release.ready_at = utcnow()


def add_warning(release: Release, *, code: str, detail: str, step: str) -> None:
    """Record a warning on the release (once per code and detail).

    Assigns a new list rather than appending in place: SQLAlchemy does not track in-place
    changes to a plain JSON column."""
    entry = {"code": code, "detail": detail, "step": step}
    current = list(release.warnings or [])
    if entry not in current:
        release.warnings = [*current, entry]


def clear_warnings(release: Release) -> None:
    release.warnings = []


def playable_title_ids(session: Session, title_ids: Sequence[str]) -> set[str]:
    """Which of these titles have a ready release (one query for a whole catalog page)."""
    return repository.playable_title_ids(session, title_ids)


def playable_release(session: Session, title_id: str) -> Release:
    """The newest ready release of a title: what a ticket holder watches."""
    release = repository.newest_ready_release(session, title_id)
    if release is None:
        raise NotFound("this title has no playable release yet", code="release_not_ready")
    return release
