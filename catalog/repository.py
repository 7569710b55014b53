"""All catalog SQL."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, and_, exists, func, or_, select
from sqlalchemy.orm import Session, aliased, selectinload

from catalog.models import (
    Collection,
    CollectionTerritory,
    CollectionTitle,
    LicenceTerritory,
    LicenceWindow,
    Release,
    ReleaseAsset,
    ReleaseStatus,
    ReleaseTrack,
    StoreProduct,
    TerritoryMode,
    TerritoryPrice,
    Title,
    TitleGenre,
    TitleTrackLanguage,
)
from core.db import page_of
from core.scope import StudioScope


def get_title(session: Session, title_id: str) -> Title | None:
    return session.get(Title, title_id)


# Everything a title page shows, in a fixed number of queries however many titles load.
TITLE_FULL = (
    selectinload(Title.localizations),
    selectinload(Title.genres),
    selectinload(Title.tracks),
    selectinload(Title.windows).selectinload(LicenceWindow.territories),
    selectinload(Title.windows).selectinload(LicenceWindow.prices),
)


def get_title_full(session: Session, title_id: str) -> Title | None:
    return session.scalar(select(Title).where(Title.id == title_id).options(*TITLE_FULL))


def get_studio_title(session: Session, scope: StudioScope, title_id: str) -> Title | None:
    return session.scalar(
        select(Title).where(Title.id == title_id, scope.where(Title.studio_id)).options(*TITLE_FULL)
    )


def get_title_by_slug(session: Session, slug: str) -> Title | None:
    return session.scalar(select(Title).where(Title.slug == slug))


def get_window(session: Session, window_id: str) -> LicenceWindow | None:
    return session.scalar(
        select(LicenceWindow)
        .where(LicenceWindow.id == window_id)
        .options(selectinload(LicenceWindow.territories), selectinload(LicenceWindow.prices))
    )


def windows_of(session: Session, title_id: str) -> Sequence[LicenceWindow]:
    return session.scalars(
        select(LicenceWindow)
        .where(LicenceWindow.title_id == title_id)
        .options(selectinload(LicenceWindow.territories), selectinload(LicenceWindow.prices))
        .order_by(LicenceWindow.starts_at, LicenceWindow.id)
    ).all()


def get_collection(session: Session, collection_id: str) -> Collection | None:
    return session.scalar(
        select(Collection)
        .where(Collection.id == collection_id)
        .options(selectinload(Collection.territories), selectinload(Collection.members))
    )


def get_studio_collection(
    session: Session, scope: StudioScope, collection_id: str
) -> Collection | None:
    return session.scalar(
        select(Collection)
        .where(Collection.id == collection_id, scope.where(Collection.studio_id))
        .options(selectinload(Collection.territories), selectinload(Collection.members))
    )


def get_collection_by_slug(session: Session, slug: str) -> Collection | None:
    return session.scalar(select(Collection).where(Collection.slug == slug))


def list_collections(session: Session, scope: StudioScope) -> Sequence[Collection]:
    return session.scalars(
        select(Collection)
        .where(scope.where(Collection.studio_id))
        .options(selectinload(Collection.territories), selectinload(Collection.members))
        .order_by(Collection.name, Collection.id)
    ).all()


def licensing_terms(
    session: Session, title_ids: Sequence[str]
) -> tuple[dict[str, list[LicenceWindow]], dict[str, list[Collection]]]:
    """Every window (with territories and prices) and every collection of the titles."""
    windows: dict[str, list[LicenceWindow]] = {}
    for window in session.scalars(
        select(LicenceWindow)
        .where(LicenceWindow.title_id.in_(title_ids))
        .options(selectinload(LicenceWindow.territories), selectinload(LicenceWindow.prices))
    ):
        windows.setdefault(window.title_id, []).append(window)
    collections: dict[str, list[Collection]] = {}
    rows = session.execute(
        select(CollectionTitle.title_id, Collection)
        .join(Collection, Collection.id == CollectionTitle.collection_id)
        .where(CollectionTitle.title_id.in_(title_ids))
        .options(selectinload(Collection.territories))
    )
    for title_id, collection in rows:
        collections.setdefault(title_id, []).append(collection)
    return windows, collections


# --- what is on sale: the SQL twin of catalog.availability.decide ---------------------------
# The listing filters and paginates in SQL, then prices the page with decide(); a
# property-based test holds this filter and decide() to the same answer.


def _window_covers(
    window: type[LicenceWindow], country: str | ColumnElement[str]
) -> ColumnElement[bool]:
    listed = exists().where(
        LicenceTerritory.window_id == window.id, LicenceTerritory.country == country
    )
    return or_(
        and_(window.territory_mode == TerritoryMode.listed, listed),
        and_(window.territory_mode == TerritoryMode.worldwide_except, ~listed),
    )


def on_sale_clause(
    country: str | ColumnElement[str], at: datetime | ColumnElement[datetime]
) -> ColumnElement[bool]:
    """True for titles that :func:`catalog.availability.decide` would offer in ``country``
    (values, or bind parameters of a statement built once)."""
    window = aliased(LicenceWindow)
    price = aliased(TerritoryPrice)
    # Among windows covering the country now, decide() uses the earliest start; with the
    # no-overlap rule there is only ever one, so "some covering window has a price" agrees.
    licensed = exists(
        select(window.id)
        .join(price, and_(price.window_id == window.id, price.country == country))
        .where(
            window.title_id == Title.id,
            window.starts_at <= at,
            window.ends_at > at,
            _window_covers(window, country),
        )
    )
    member = aliased(CollectionTitle)
    gate = aliased(Collection)
    restricts = or_(
        gate.starts_at.is_not(None), gate.ends_at.is_not(None), gate.territory_mode.is_not(None)
    )
    listed = exists().where(
        CollectionTerritory.collection_id == gate.id, CollectionTerritory.country == country
    )
    allows = and_(
        or_(gate.starts_at.is_(None), gate.starts_at <= at),
        or_(gate.ends_at.is_(None), gate.ends_at > at),
        or_(
            gate.territory_mode.is_(None),
            and_(gate.territory_mode == TerritoryMode.listed, listed),
            and_(gate.territory_mode == TerritoryMode.worldwide_except, ~listed),
        ),
    )
    gated = select(member.title_id).join(gate, gate.id == member.collection_id)
    not_gated = ~exists(gated.where(member.title_id == Title.id, restricts))
    gate_open = exists(gated.where(member.title_id == Title.id, restricts, allows))
    return and_(licensed, or_(not_gated, gate_open))


@dataclass(frozen=True)
class TitleFilter:
    country: str | None = None  # None: no availability filter (studio views)
    at: datetime | None = None
    scope: StudioScope | None = None  # None: no studio filter (the viewer catalog)
    query: str | None = None  # already folded
    genre: str | None = None
    language: str | None = None
    collection_id: str | None = None

    def clauses(self) -> list[ColumnElement[bool]]:
        out: list[ColumnElement[bool]] = []
        if self.country is not None and self.at is not None:
            out.append(on_sale_clause(self.country, self.at))
        if self.scope is not None:
            out.append(self.scope.where(Title.studio_id))
        if self.query:
            out.append(Title.search_text.contains(self.query, autoescape=True))
        if self.genre:
            out.append(
                exists().where(TitleGenre.title_id == Title.id, TitleGenre.genre == self.genre)
            )
        if self.language:
            # "zh" matches zh, zh-Hant and zh-Hant-TW; original language or any track.
            lang = self.language
            prefix = lang + "-"
            out.append(
                or_(
                    Title.original_language == lang,
                    Title.original_language.startswith(prefix, autoescape=True),
                    exists().where(
                        TitleTrackLanguage.title_id == Title.id,
                        or_(
                            TitleTrackLanguage.language == lang,
                            TitleTrackLanguage.language.startswith(prefix, autoescape=True),
                        ),
                    ),
                )
            )
        if self.collection_id:
            out.append(
                exists().where(
                    CollectionTitle.title_id == Title.id,
                    CollectionTitle.collection_id == self.collection_id,
                )
            )
        return out


def list_titles(
    session: Session, where: TitleFilter, *, offset: int, limit: int, full: bool = False
) -> Sequence[Title]:
    """A page of titles; ``full`` also loads windows with territories and prices."""
    light = (
        selectinload(Title.localizations),
        selectinload(Title.genres),
        selectinload(Title.tracks),
    )
    stmt = (
        select(Title)
        .where(*where.clauses())
        .options(*(TITLE_FULL if full else light))
        .order_by(Title.created_at.desc(), Title.id)
        .offset(offset)
        .limit(limit)
    )
    return session.scalars(stmt).all()


def count_titles(session: Session, where: TitleFilter) -> int:
    stmt = select(func.count()).select_from(Title).where(*where.clauses())
    return int(session.scalar(stmt) or 0)


# --- releases ---------------------------------------------------------------------------------


def find_release(session: Session, release_id: str, *, for_update: bool = False) -> Release | None:
    stmt = select(Release).where(Release.id == release_id)
    if for_update:
        stmt = stmt.with_for_update()
    return session.scalar(stmt)


def find_studio_release(session: Session, release_id: str, scope: StudioScope) -> Release | None:
    return session.scalar(
        select(Release).where(Release.id == release_id, scope.where(Release.studio_id))
    )


def list_releases(
    session: Session, *, scope: StudioScope, title_id: str | None, offset: int, limit: int
) -> Sequence[Release]:
    stmt = (
        select(Release)
        .where(scope.where(Release.studio_id))
        .order_by(Release.created_at.desc(), Release.id)
        .offset(offset)
        .limit(limit)
    )
    if title_id is not None:
        stmt = stmt.where(Release.title_id == title_id)
    return session.scalars(stmt).all()


def assets_of(session: Session, release_ids: Sequence[str]) -> dict[str, list[ReleaseAsset]]:
    """The assets of several releases in one query (a page of releases)."""
    found: dict[str, list[ReleaseAsset]] = {release_id: [] for release_id in release_ids}
    for asset in session.scalars(
        select(ReleaseAsset)
        .where(ReleaseAsset.release_id.in_(release_ids))
        .order_by(ReleaseAsset.created_at, ReleaseAsset.id)
    ):
        found[asset.release_id].append(asset)
    return found


def playable_title_ids(session: Session, title_ids: Sequence[str]) -> set[str]:
    """Which of these titles have a ready release (one query for a whole catalog page)."""
    if not title_ids:
        return set()
    return set(
        session.scalars(
            select(Release.title_id)
            .where(Release.title_id.in_(title_ids), Release.status == ReleaseStatus.ready)
            .distinct()
        )
    )


def newest_ready_release(session: Session, title_id: str) -> Release | None:
    return session.scalar(
        select(Release)
        .where(Release.title_id == title_id, Release.status == ReleaseStatus.ready)
        .order_by(Release.ready_at.desc())
        .limit(1)
    )


def release_tracks(session: Session, release_id: str) -> Sequence[ReleaseTrack]:
    return session.scalars(
        select(ReleaseTrack)
        .where(ReleaseTrack.release_id == release_id)
        .order_by(ReleaseTrack.position, ReleaseTrack.id)
    ).all()


def find_track(session: Session, track_id: str) -> ReleaseTrack | None:
    return session.get(ReleaseTrack, track_id)


# --- store products (catalog/store_products.py) --------------------------------------------


def store_products_of(session: Session, title_id: str) -> Sequence[StoreProduct]:
    return session.scalars(
        select(StoreProduct)
        .where(StoreProduct.title_id == title_id)
        .order_by(StoreProduct.store, StoreProduct.territory)
    ).all()


def get_store_product(
    session: Session, title_id: str, store: str, territory: str
) -> StoreProduct | None:
    return session.scalar(
        select(StoreProduct).where(
            StoreProduct.title_id == title_id,
            StoreProduct.store == store,
            StoreProduct.territory == territory,
        )
    )


def find_store_product(
    session: Session, store: str, product_id: str, territory: str
) -> StoreProduct | None:
    return session.scalar(
        select(StoreProduct).where(
            StoreProduct.store == store,
            StoreProduct.product_id == product_id,
            StoreProduct.territory == territory,
        )
    )


def delete_store_product(session: Session, row: StoreProduct) -> None:
    session.delete(row)
    session.flush()


def failed_releases(session: Session, offset: int, limit: int) -> tuple[list[Release], int]:
    """Releases whose last transcode run failed, most recent failure first."""
    stmt = select(Release).where(Release.status == ReleaseStatus.failed)
    return page_of(session, stmt, (Release.status_changed_at.desc(), Release.id), offset, limit)
