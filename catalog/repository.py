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
    ReleaseTrack,
    TerritoryMode,
    TerritoryPrice,
    Title,
    TitleGenre,
    TitleTrackLanguage,
)


def get_title(session: Session, title_id: str) -> Title | None:
    return session.get(Title, title_id)


def get_title_full(session: Session, title_id: str) -> Title | None:
    return session.scalar(
        select(Title)
        .where(Title.id == title_id)
        .options(
            selectinload(Title.localizations),
            selectinload(Title.genres),
            selectinload(Title.tracks),
            selectinload(Title.windows).selectinload(LicenceWindow.territories),
            selectinload(Title.windows).selectinload(LicenceWindow.prices),
        )
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


def get_collection_by_slug(session: Session, slug: str) -> Collection | None:
    return session.scalar(select(Collection).where(Collection.slug == slug))


def list_collections(session: Session, *, studio_id: str | None = None) -> Sequence[Collection]:
    stmt = select(Collection).options(selectinload(Collection.territories))
    if studio_id is not None:
        stmt = stmt.where(Collection.studio_id == studio_id)
    return session.scalars(stmt.order_by(Collection.name, Collection.id)).all()


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


def _window_covers(window: type[LicenceWindow], country: str) -> ColumnElement[bool]:
    listed = exists().where(
        LicenceTerritory.window_id == window.id, LicenceTerritory.country == country
    )
    return or_(
        and_(window.territory_mode == TerritoryMode.listed, listed),
        and_(window.territory_mode == TerritoryMode.worldwide_except, ~listed),
    )


def on_sale_clause(country: str, at: datetime) -> ColumnElement[bool]:
    """True for titles that :func:`catalog.availability.decide` would offer in ``country``."""
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
    studio_id: str | None = None
    query: str | None = None  # already folded
    genre: str | None = None
    language: str | None = None
    collection_id: str | None = None

    def clauses(self) -> list[ColumnElement[bool]]:
        out: list[ColumnElement[bool]] = []
        if self.country is not None and self.at is not None:
            out.append(on_sale_clause(self.country, self.at))
        if self.studio_id is not None:
            out.append(Title.studio_id == self.studio_id)
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
    session: Session, where: TitleFilter, *, offset: int, limit: int
) -> Sequence[Title]:
    stmt = (
        select(Title)
        .where(*where.clauses())
        .options(
            selectinload(Title.localizations),
            selectinload(Title.genres),
            selectinload(Title.tracks),
        )
        .order_by(Title.created_at.desc(), Title.id)
        .offset(offset)
        .limit(limit)
    )
    return session.scalars(stmt).all()


def count_titles(session: Session, where: TitleFilter) -> int:
    stmt = select(func.count()).select_from(Title).where(*where.clauses())
    return int(session.scalar(stmt) or 0)


def release_tracks(session: Session, release_id: str) -> Sequence[ReleaseTrack]:
    return session.scalars(
        select(ReleaseTrack)
        .where(ReleaseTrack.release_id == release_id)
        .order_by(ReleaseTrack.position, ReleaseTrack.id)
    ).all()
