"""The one answer to "may title T be sold or played in country C at time t, and for how much?".

Catalog listing, purchase and playback all ask :func:`offer_for` (or, for a page of titles,
:func:`offers_for`), so a title can never be listed where it cannot be bought, or bought where
it cannot be played. The rule, in full (also in docs/catalog.md):

1. The country must be known (``country_unknown`` otherwise).
2. Exactly one licence window of the title covers the country and contains ``at``
   (windows are half-open ``[starts_at, ends_at)``; windows of a title never overlap in
   both time and territory). No window covering the country at all: ``not_licensed_in_country``;
   windows cover it but none now: ``outside_licence_window``.
3. That window has a price for the country (``not_licensed_in_country`` otherwise: licensed
   but not offered there).
4. If the title belongs to collections that *restrict* (have a time window or territories),
   at least one of them must allow the country at ``at`` (a festival section gates its
   titles). Collections that restrict nothing never gate.

The offer ends when the window ends, or earlier when the allowing collections end sooner.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import event
from sqlalchemy.orm import Session

from catalog import repository
from catalog.models import (
    Collection,
    CollectionTerritory,
    CollectionTitle,
    LicenceTerritory,
    LicenceWindow,
    TerritoryMode,
    TerritoryPrice,
)
from core import changes
from core.changes import WatchedCache
from core.db import read_only
from core.errors import Forbidden, NotFound


@dataclass(frozen=True)
class Offer:
    title_id: str
    country: str  # ISO 3166-1 alpha-2
    price_minor: int
    currency: str  # ISO 4217
    window_id: str
    window_ends_at: datetime


class TitleNotFound(NotFound):
    code = "title_not_found"


class CountryUnknown(Forbidden):
    code = "country_unknown"


class NotLicensedInCountry(Forbidden):
    code = "not_licensed_in_country"


class OutsideLicenceWindow(Forbidden):
    code = "outside_licence_window"


Unavailable = CountryUnknown | NotLicensedInCountry | OutsideLicenceWindow


@dataclass(frozen=True)
class Territories:
    """A territory set: exactly ``countries``, or the whole world except them."""

    mode: TerritoryMode
    countries: frozenset[str]

    def covers(self, country: str) -> bool:
        listed = country in self.countries
        return listed if self.mode is TerritoryMode.listed else not listed


@dataclass(frozen=True)
class WindowTerms:
    id: str
    territories: Territories
    starts_at: datetime
    ends_at: datetime
    prices: Mapping[str, tuple[int, str]] = field(default_factory=dict)

    def contains(self, at: datetime) -> bool:
        return self.starts_at <= at < self.ends_at


@dataclass(frozen=True)
class CollectionGate:
    """A restricting collection's terms; ``None`` means unrestricted on that axis."""

    territories: Territories | None
    starts_at: datetime | None
    ends_at: datetime | None

    def covers(self, country: str) -> bool:
        return self.territories is None or self.territories.covers(country)

    def contains(self, at: datetime) -> bool:
        return (self.starts_at is None or self.starts_at <= at) and (
            self.ends_at is None or at < self.ends_at
        )


def decide(
    title_id: str,
    windows: Sequence[WindowTerms],
    gates: Sequence[CollectionGate],
    country: str | None,
    at: datetime,
) -> Offer:
    """The rule itself, on plain values (no database): an :class:`Offer` or an error."""
    if at.tzinfo is None:
        raise ValueError("at must be timezone-aware")
    if not country:
        raise CountryUnknown("we could not tell which country you are in")
    country = country.upper()
    covering = [w for w in windows if w.territories.covers(country)]
    if not covering:
        raise NotLicensedInCountry(f"this title is not licensed in {country}")
    current = [w for w in covering if w.contains(at)]
    if not current:
        raise OutsideLicenceWindow(f"this title is not available in {country} at this time")
    # Several would mean overlapping windows, which the service refuses to store; the earliest
    # start wins so that the answer stays deterministic even on hand-edited data.
    window = min(current, key=lambda w: (w.starts_at, w.id))
    price = window.prices.get(country)
    if price is None:
        raise NotLicensedInCountry(f"this title is not offered for sale in {country}")
    ends_at = window.ends_at
    if gates:
        allowing = [g for g in gates if g.covers(country) and g.contains(at)]
        if not allowing:
            if any(g.covers(country) for g in gates):
                raise OutsideLicenceWindow(
                    f"this title's collection is not open in {country} at this time"
                )
            raise NotLicensedInCountry(f"this title's collection is not offered in {country}")
        if all(g.ends_at is not None for g in allowing):
            ends_at = min(ends_at, max(g.ends_at for g in allowing if g.ends_at is not None))
    return Offer(
        title_id=title_id,
        country=country,
        price_minor=price[0],
        currency=price[1],
        window_id=window.id,
        window_ends_at=ends_at,
    )


def window_terms(window: LicenceWindow) -> WindowTerms:
    return WindowTerms(
        id=window.id,
        territories=Territories(window.territory_mode, window.countries),
        starts_at=window.starts_at,
        ends_at=window.ends_at,
        prices={p.country: (p.price_minor, p.currency) for p in window.prices},
    )


def collection_gate(collection: Collection) -> CollectionGate:
    mode = collection.territory_mode
    return CollectionGate(
        territories=None if mode is None else Territories(mode, collection.countries),
        starts_at=collection.starts_at,
        ends_at=collection.ends_at,
    )


def offer_for(session: Session, title_id: str, country: str | None, at: datetime) -> Offer:
    """May ``title_id`` be sold / played in ``country`` at ``at``, and for how much?

    Raises ``TitleNotFound`` (404 ``title_not_found``), ``CountryUnknown`` (403
    ``country_unknown``), ``NotLicensedInCountry`` (403 ``not_licensed_in_country``) or
    ``OutsideLicenceWindow`` (403 ``outside_licence_window``).
    """
    if repository.get_title(session, title_id) is None:
        raise TitleNotFound("no such title")
    windows, collections = repository.licensing_terms(session, [title_id])
    return decide(
        title_id,
        [window_terms(w) for w in windows.get(title_id, [])],
        [collection_gate(c) for c in collections.get(title_id, []) if c.restricts],
        country,
        at,
    )


# Playback re-checks the licence on every key and playlist request. Windows and collections
# change rarely, so those checks read the title's terms from a cache that the change feed
# empties on every licensing edit, from any process (core/changes.py). The decision is
# made for the request's own country and time on every call (see TitleTerms.offer).
LICENSING_TOPIC = "licensing"


@dataclass
class TitleTerms:
    """One title's licensing terms, and the offers already decided from them by country.

    :func:`decide` depends on the time only through comparisons with window and collection
    starts and ends, so its answer is the same everywhere between two consecutive such
    boundaries. An offer is remembered with that span and reused only inside it: the same
    answer as deciding again, for a dictionary lookup. Refusals are always decided afresh.
    """

    title_id: str
    windows: list[WindowTerms]
    gates: list[CollectionGate]
    boundaries: list[datetime] = field(init=False)
    offers: dict[str, tuple[datetime | None, datetime | None, Offer]] = field(
        init=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        moments = {m for w in self.windows for m in (w.starts_at, w.ends_at)}
        moments |= {m for g in self.gates for m in (g.starts_at, g.ends_at) if m is not None}
        self.boundaries = sorted(moments)

    def offer(self, country: str | None, at: datetime) -> Offer:
        hit = self.offers.get(country) if country else None
        if hit is not None and (hit[0] is None or hit[0] <= at) and (hit[1] is None or at < hit[1]):
            return hit[2]
        offer = decide(self.title_id, self.windows, self.gates, country, at)
        after = bisect.bisect_right(self.boundaries, at)
        since = self.boundaries[after - 1] if after else None
        until = self.boundaries[after] if after < len(self.boundaries) else None
        if country:
            self.offers[country] = (since, until, offer)
        return offer


_terms_cache: WatchedCache[TitleTerms | None] = WatchedCache([LICENSING_TOPIC])


def offer_for_playback(
    title_id: str, country: str | None, at: datetime, *, fresh: bool = False
) -> Offer:
    """:func:`offer_for` for the playback hot path: same answer, terms cached (``fresh``:
    read them from the database again first)."""

    def load() -> TitleTerms | None:
        with read_only() as session:
            if repository.get_title(session, title_id) is None:
                return None
            windows, collections = repository.licensing_terms(session, [title_id])
            return TitleTerms(
                title_id,
                [window_terms(w) for w in windows.get(title_id, [])],
                [collection_gate(c) for c in collections.get(title_id, []) if c.restricts],
            )

    if fresh:
        _terms_cache.forget(title_id)
    terms = _terms_cache.get(title_id, load)
    if terms is None:
        raise TitleNotFound("no such title")
    return terms.offer(country, at)


_LICENSING_ROWS = (
    LicenceWindow,
    LicenceTerritory,
    TerritoryPrice,
    Collection,
    CollectionTerritory,
    CollectionTitle,
)


@event.listens_for(Session, "after_flush")
def _publish_licence_edits(session: Session, _context: object) -> None:
    # Every process's next playback check sees the edit once it commits. A collection edit
    # can touch many titles, so the notice says "licensing changed", not which title.
    if any(
        isinstance(o, _LICENSING_ROWS) for o in (*session.new, *session.dirty, *session.deleted)
    ):
        changes.publish(session, LICENSING_TOPIC, None)


def offers_for(
    session: Session, title_ids: Iterable[str], country: str | None, at: datetime
) -> dict[str, Offer]:
    """Offers for many titles at once (two queries); titles not on sale are left out."""
    ids = list(title_ids)
    if not ids or not country:
        return {}
    windows, collections = repository.licensing_terms(session, ids)
    offers: dict[str, Offer] = {}
    for title_id in ids:
        try:
            offers[title_id] = decide(
                title_id,
                [window_terms(w) for w in windows.get(title_id, [])],
                [collection_gate(c) for c in collections.get(title_id, []) if c.restricts],
                country,
                at,
            )
        except (CountryUnknown, NotLicensedInCountry, OutsideLicenceWindow):
            continue
    return offers
