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

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session

from catalog import repository
from catalog.models import (
    Collection,
    LicenceWindow,
    TerritoryMode,
)
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
