"""Availability: who may buy or play what, where and when, and for how much."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from catalog import service as catalog
from catalog.availability import CollectionGate, Territories, WindowTerms, decide
from catalog.models import TerritoryMode
from core.db import unit_of_work, utcnow
from core.errors import AppError
from core.geo import known_countries
from tests.helpers import create_licensed_title, create_studio

BASE = datetime(2030, 1, 1, tzinfo=UTC)
COUNTRIES = ["US", "CA", "FR", "CN", "JP"]
ALL = known_countries()


def hours(n: int) -> datetime:
    return BASE + timedelta(hours=n)


def outcome(fn: object) -> str | tuple[int, str, str, datetime]:
    """An offer's essentials, or the error code."""
    try:
        offer = fn()  # type: ignore[operator]
    except AppError as exc:
        return exc.code
    return (offer.price_minor, offer.currency, offer.window_id, offer.window_ends_at)


# --- a deliberately naive reference model ----------------------------------------------------


def covered(mode: TerritoryMode, countries: frozenset[str]) -> frozenset[str]:
    return countries if mode is TerritoryMode.listed else ALL - countries


def reference(
    windows: list[WindowTerms], gates: list[CollectionGate], country: str | None, at: datetime
) -> str | tuple[int, str, str, datetime]:
    if country is None:
        return "country_unknown"
    mine = [w for w in windows if country in covered(w.territories.mode, w.territories.countries)]
    if not mine:
        return "not_licensed_in_country"
    now = sorted(
        (w for w in mine if w.starts_at <= at and not at >= w.ends_at),
        key=lambda w: (w.starts_at, w.id),
    )
    if not now:
        return "outside_licence_window"
    window = now[0]
    if country not in window.prices:
        return "not_licensed_in_country"
    end = window.ends_at
    if gates:
        in_place = [
            g
            for g in gates
            if g.territories is None
            or country in covered(g.territories.mode, g.territories.countries)
        ]
        open_now = [
            g
            for g in in_place
            if (g.starts_at is None or g.starts_at <= at) and (g.ends_at is None or at < g.ends_at)
        ]
        if not in_place:
            return "not_licensed_in_country"
        if not open_now:
            return "outside_licence_window"
        if None not in [g.ends_at for g in open_now]:
            end = min(end, max(g.ends_at for g in open_now if g.ends_at))
    price, currency = window.prices[country]
    return (price, currency, window.id, end)


territories = st.builds(
    Territories,
    st.sampled_from(list(TerritoryMode)),
    st.frozensets(st.sampled_from(COUNTRIES), max_size=3),
)


@st.composite
def window_terms(draw: st.DrawFn) -> WindowTerms:
    start = draw(st.integers(-50, 50))
    length = draw(st.integers(1, 60))
    terr = draw(territories)
    priced = draw(st.frozensets(st.sampled_from(COUNTRIES)))
    return WindowTerms(
        id=uuid.uuid4().hex,
        territories=terr,
        starts_at=hours(start),
        ends_at=hours(start + length),
        prices={c: (100 + i, "USD") for i, c in enumerate(sorted(priced))},
    )


@st.composite
def gates(draw: st.DrawFn) -> CollectionGate:
    start = draw(st.none() | st.integers(-50, 50))
    end = draw(st.none() | st.integers(1, 60))
    return CollectionGate(
        territories=draw(st.none() | territories),
        starts_at=None if start is None else hours(start),
        ends_at=None if end is None else hours((-60 if start is None else start) + end),
    )


@given(
    windows=st.lists(window_terms(), max_size=4),
    collection_gates=st.lists(gates(), max_size=2),
    country=st.none() | st.sampled_from([*COUNTRIES, "DE"]),
    at=st.integers(-60, 120).map(hours),
)
@settings(max_examples=600, deadline=None)
def test_decide_agrees_with_the_reference_model(
    windows: list[WindowTerms],
    collection_gates: list[CollectionGate],
    country: str | None,
    at: datetime,
) -> None:
    expected = reference(windows, collection_gates, country, at)
    assert outcome(lambda: decide("t", windows, collection_gates, country, at)) == expected


@given(window=window_terms(), country=st.sampled_from(COUNTRIES))
def test_a_window_is_half_open(window: WindowTerms, country: str) -> None:
    assume_priced = window.territories.covers(country) and country in window.prices
    at_start = outcome(lambda: decide("t", [window], [], country, window.starts_at))
    at_end = outcome(lambda: decide("t", [window], [], country, window.ends_at))
    if assume_priced:
        assert isinstance(at_start, tuple)
    assert at_end in {"outside_licence_window", "not_licensed_in_country"}


# --- through the database ------------------------------------------------------------------


def test_offer_for_a_licensed_title_gives_the_local_price(db: None) -> None:
    title = create_licensed_title(create_studio().id)
    with unit_of_work() as session:
        offer = catalog.offer_for(session, title.id, "CA", utcnow())
    assert (offer.country, offer.price_minor, offer.currency) == ("CA", 1599, "CAD")
    assert offer.window_ends_at > utcnow() + timedelta(days=119)


@pytest.mark.parametrize(
    ("country", "shift", "code"),
    [
        (None, timedelta(0), "country_unknown"),
        ("FR", timedelta(0), "not_licensed_in_country"),
        ("US", timedelta(days=200), "outside_licence_window"),
        ("US", -timedelta(days=2), "outside_licence_window"),
    ],
)
def test_offer_for_refuses_with_a_stable_code(
    db: None, country: str | None, shift: timedelta, code: str
) -> None:
    title = create_licensed_title(create_studio().id)
    with unit_of_work() as session, pytest.raises(AppError) as caught:
        catalog.offer_for(session, title.id, country, utcnow() + shift)
    assert caught.value.code == code
    assert caught.value.status == 403


def test_offer_for_an_unknown_title_is_404(db: None) -> None:
    with unit_of_work() as session, pytest.raises(AppError) as caught:
        catalog.offer_for(session, "nope", "US", utcnow())
    assert (caught.value.status, caught.value.code) == (404, "title_not_found")


def test_a_festival_section_gates_its_titles(db: None) -> None:
    """Online Panorama: US and Canada, four months only, although the film's own licence is
    worldwide for a year."""
    studio = create_studio()
    now = utcnow()
    with unit_of_work() as session:
        title = catalog.create_title(
            session,
            studio_id=studio.id,
            slug="panorama-film",
            original_title="Panorama Film",
            original_language="zh-Hant",
        )
        catalog.add_window(
            session,
            title,
            territory_mode=TerritoryMode.worldwide_except,
            countries=[],
            starts_at=now - timedelta(days=1),
            ends_at=now + timedelta(days=365),
            prices={"US": (999, "USD"), "CA": (1299, "CAD"), "FR": (899, "EUR")},
        )
        section = catalog.create_collection(
            session,
            studio_id=studio.id,
            slug="online-panorama",
            name="Online Panorama",
            starts_at=now - timedelta(hours=1),
            ends_at=now + timedelta(days=120),
            territory_mode=TerritoryMode.listed,
            countries=["US", "CA"],
        )
        catalog.add_to_collection(session, section, title)
    with unit_of_work() as session:
        offer = catalog.offer_for(session, title.id, "US", now)
        assert offer.window_ends_at == now + timedelta(days=120)
        assert outcome(lambda: catalog.offer_for(session, title.id, "FR", now)) == (
            "not_licensed_in_country"
        )
        later = now + timedelta(days=150)
        assert outcome(lambda: catalog.offer_for(session, title.id, "US", later)) == (
            "outside_licence_window"
        )


# --- the listing's SQL filter and decide() never disagree ----------------------------------


@st.composite
def stored_windows(draw: st.DrawFn) -> list[tuple[TerritoryMode, list[str], int, int, list[str]]]:
    """Windows that do not overlap in time (so the service accepts them)."""
    count = draw(st.integers(0, 3))
    out = []
    cursor = draw(st.integers(-40, 0))
    for _ in range(count):
        start = cursor + draw(st.integers(0, 10))
        end = start + draw(st.integers(1, 30))
        cursor = end
        mode = draw(st.sampled_from(list(TerritoryMode)))
        countries = sorted(draw(st.frozensets(st.sampled_from(COUNTRIES), min_size=1, max_size=3)))
        covered_here = covered(mode, frozenset(countries)) & set(COUNTRIES)
        priced = sorted(draw(st.frozensets(st.sampled_from(sorted(covered_here) or ["US"]))))
        priced = [c for c in priced if c in covered_here]
        out.append((mode, countries, start, end, priced))
    return out


@given(
    windows=stored_windows(),
    gate=st.none()
    | gates().filter(
        lambda g: (
            g.territories is None
            or g.territories.mode is TerritoryMode.worldwide_except
            or bool(g.territories.countries)
        )
    ),
    country=st.sampled_from(COUNTRIES),
    at=st.integers(-45, 80).map(hours),
)
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_listing_shows_exactly_what_offer_for_sells(
    db: None,
    windows: list[tuple[TerritoryMode, list[str], int, int, list[str]]],
    gate: CollectionGate | None,
    country: str,
    at: datetime,
) -> None:
    slug = "t-" + uuid.uuid4().hex[:12]
    with unit_of_work() as session:
        studio = create_studio_in(session)
        title = catalog.create_title(
            session, studio_id=studio, slug=slug, original_title=slug, original_language="en"
        )
        for mode, countries, start, end, priced in windows:
            catalog.add_window(
                session,
                title,
                territory_mode=mode,
                countries=countries,
                starts_at=hours(start),
                ends_at=hours(end),
                prices={c: (500, "USD") for c in priced},
            )
        if gate is not None:
            section = catalog.create_collection(
                session,
                studio_id=studio,
                slug="c-" + slug,
                name="Section",
                starts_at=gate.starts_at,
                ends_at=gate.ends_at,
                territory_mode=gate.territories.mode if gate.territories else None,
                countries=sorted(gate.territories.countries) if gate.territories else [],
            )
            catalog.add_to_collection(session, section, title)
        title_id = title.id
    with unit_of_work() as session:
        sold = outcome(lambda: catalog.offer_for(session, title_id, country, at))
        listed, _ = catalog.list_on_sale(session, country=country, at=at, offset=0, limit=500)
        assert (title_id in {t.id for t, _ in listed}) == isinstance(sold, tuple)


def create_studio_in(session: object) -> str:
    from accounts import service as accounts

    return accounts.create_studio(session, "S " + uuid.uuid4().hex).id  # type: ignore[arg-type]
