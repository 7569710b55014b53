"""Box-office SQL: FX rates, revenue shares, the ledger and payment events of a day, and
the roll-up's aggregates over them (boxoffice/rollup.py holds the rules that use them)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Table,
    and_,
    case,
    delete,
    false,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Row
from sqlalchemy.orm import InstrumentedAttribute, Session

from boxoffice.definitions import LEDGER_MEASURE, Measure, day_bounds, local_day, territory_zones
from boxoffice.models import (
    DailyFigure,
    FxRate,
    QualifiedView,
    RevenueShare,
    RollupWatermark,
    TicketWatch,
    ViewHeartbeat,
    ViewStart,
)
from catalog.models import Title
from core.scope import StudioScope
from core.settings import Settings, get_settings
from payments.models import LedgerEntry, LedgerKind, PaymentEvent


def fx_rates_on(session: Session, day: date) -> Sequence[FxRate]:
    return session.scalars(select(FxRate).where(FxRate.day == day).order_by(FxRate.currency)).all()


def title_exists(session: Session, title_id: str) -> bool:
    return session.get(Title, title_id) is not None


def rolled_up_days(session: Session, title_id: str) -> tuple[date | None, date | None]:
    """The first and last day a title has roll-up rows for (None, None without any)."""
    first, last = session.execute(
        select(func.min(DailyFigure.day), func.max(DailyFigure.day)).where(
            DailyFigure.title_id == title_id
        )
    ).one()
    return first, last


def get_revenue_share(session: Session, title_id: str, territory: str) -> RevenueShare:
    return session.get_one(RevenueShare, (title_id, territory))


def revenue_shares(session: Session, title_id: str) -> list[RevenueShare]:
    return list(
        session.scalars(
            select(RevenueShare)
            .where(RevenueShare.title_id == title_id)
            .order_by(RevenueShare.territory)
        )
    )


def ledger_entries(
    session: Session, provider: str, start: datetime, end: datetime
) -> Sequence[LedgerEntry]:
    return session.scalars(
        select(LedgerEntry).where(
            LedgerEntry.provider == provider,
            LedgerEntry.occurred_at >= start,
            LedgerEntry.occurred_at < end,
        )
    ).all()


def sandbox_events(session: Session, start: datetime, end: datetime) -> Sequence[PaymentEvent]:
    return session.scalars(
        select(PaymentEvent).where(
            PaymentEvent.provider == "sandbox",
            PaymentEvent.provider_created_at >= start,
            PaymentEvent.provider_created_at < end,
        )
    ).all()


# --- roll-up ------------------------------------------------------------------------------


def upsert(
    session: Session,
    model: type[Any],
    values: dict[str, Any],
    key: list[str],
    update: dict[str, Any],
) -> None:
    table = cast(Table, model.__table__)
    dialect = session.get_bind().dialect.name
    ins: Any = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = ins(table).values(**values)
    session.execute(stmt.on_conflict_do_update(index_elements=key, set_=update))


def _in_local_day(
    day: date,
    column: InstrumentedAttribute[datetime],
    territory: InstrumentedAttribute[str],
    settings: Settings,
) -> ColumnElement[bool]:
    """Rows whose time falls on ``day`` in their territory's own zone. Each territory is in
    exactly one branch, so grouping by territory afterwards is exact (distinct counts too);
    the outer range lets the time index do the work."""
    zones = territory_zones(settings)
    by_zone: dict[str, list[str]] = defaultdict(list)
    for country, zone in zones.items():
        by_zone[zone].append(country)
    branches: list[ColumnElement[bool]] = []
    lows, highs = [], []
    for zone, countries in by_zone.items():
        start, end = day_bounds(day, zone)
        lows.append(start)
        highs.append(end)
        branches.append(and_(territory.in_(sorted(countries)), column >= start, column < end))
    start, end = day_bounds(day, settings.boxoffice_default_timezone)
    lows.append(start)
    highs.append(end)
    branches.append(and_(territory.not_in(sorted(zones)), column >= start, column < end))
    return and_(column >= min(lows), column < max(highs), or_(false(), *branches))


@dataclass
class Cell:
    """One (title, territory) on the day being rolled up."""

    money: dict[tuple[str, str], int]  # (measure, currency) -> minor units
    counts: dict[str, int]


def aggregate_day(
    session: Session, day: date, settings: Settings | None = None
) -> dict[tuple[str, str], Cell]:
    settings = settings or get_settings()
    cells: dict[tuple[str, str], Cell] = defaultdict(lambda: Cell({}, {}))
    le = LedgerEntry
    money = session.execute(
        select(
            le.title_id, le.territory, le.currency, le.kind, func.count(), func.sum(le.amount_minor)
        )
        .where(_in_local_day(day, le.occurred_at, le.territory, settings))
        .group_by(le.title_id, le.territory, le.currency, le.kind)
    )
    for title_id, territory, currency, kind, n, total in money:
        cell = cells[(title_id, territory)]
        measure = LEDGER_MEASURE[LedgerKind(kind)]
        cell.money[(measure.value, currency)] = int(total)
        if measure is Measure.gross:
            cell.counts[Measure.tickets_sold.value] = int(n)
    fees = session.execute(
        select(le.title_id, le.territory, le.provider_fee_currency, func.sum(le.provider_fee_minor))
        .where(
            _in_local_day(day, le.occurred_at, le.territory, settings),
            le.provider_fee_minor.is_not(None),
            le.provider_fee_currency.is_not(None),
        )
        .group_by(le.title_id, le.territory, le.provider_fee_currency)
    )
    for title_id, territory, fee_currency, fee_total in fees:
        cells[(title_id, territory)].money[(Measure.fees.value, str(fee_currency))] = int(
            fee_total or 0
        )
    vs = ViewStart
    starts = session.execute(
        select(vs.title_id, vs.territory, func.count(), func.count(vs.viewer_id.distinct()))
        .where(_in_local_day(day, vs.started_at, vs.territory, settings))
        .group_by(vs.title_id, vs.territory)
    )
    for title_id, territory, n, viewers in starts:
        counts = cells[(title_id, territory)].counts
        counts[Measure.views_started.value] = int(n)
        counts[Measure.unique_viewers.value] = int(viewers)
    qv = QualifiedView
    qualified = session.execute(
        select(qv.title_id, qv.territory, func.count())
        .where(_in_local_day(day, qv.qualified_at, qv.territory, settings))
        .group_by(qv.title_id, qv.territory)
    )
    for title_id, territory, n in qualified:
        cells[(title_id, territory)].counts[Measure.qualified_views.value] = int(n)
    return cells


def rates_for(session: Session, day: date) -> dict[str, tuple[Decimal, date]]:
    """Units per EUR of each currency that has a rate for ``day``, with the day the rate is
    from (EUR is 1 on any day)."""
    rates = {
        r.currency: (Decimal(r.per_eur), r.day)
        for r in session.scalars(select(FxRate).where(FxRate.day == day))
    }
    rates.setdefault("EUR", (Decimal(1), day))
    return rates


def share_percents(
    session: Session, settings: Settings
) -> tuple[dict[tuple[str, str], Decimal], Decimal]:
    shares = {
        (s.title_id, s.territory): Decimal(s.studio_share_bps) / 100
        for s in session.scalars(select(RevenueShare))
    }
    return shares, Decimal(str(settings.boxoffice_default_studio_share_percent))


def days_touched_since(session: Session, since: datetime, settings: Settings) -> set[date]:
    """Local days of facts written at or after ``since`` (whenever they happened)."""
    days: set[date] = set()
    sources: Iterable[tuple[Any, Any, Any]] = (
        (LedgerEntry.territory, LedgerEntry.occurred_at, LedgerEntry.created_at),
        (ViewStart.territory, ViewStart.started_at, ViewStart.created_at),
        (QualifiedView.territory, QualifiedView.qualified_at, QualifiedView.created_at),
    )
    for territory, happened, written in sources:
        spans = session.execute(
            select(territory, func.min(happened), func.max(happened))
            .where(written >= since)
            .group_by(territory)
        )
        for country, first, last in spans:
            day, end = local_day(first, country, settings), local_day(last, country, settings)
            while day <= end:
                days.add(day)
                day += timedelta(days=1)
    return days


def replace_day(session: Session, day: date, rows: list[dict[str, Any]]) -> None:
    """``day``'s roll-up rows, all replaced by ``rows``."""
    session.execute(delete(DailyFigure).where(DailyFigure.day == day))
    if rows:
        session.execute(insert(DailyFigure), rows)


def lock_watermark(session: Session, name: str) -> RollupWatermark | None:
    return session.get(RollupWatermark, name, with_for_update=True)


def rolled_days(session: Session, first: date, last: date, title_id: str | None) -> list[date]:
    """Days in [first, last] that already have roll-up rows (of one title, if given)."""
    stmt = select(DailyFigure.day.distinct()).where(
        DailyFigure.day >= first, DailyFigure.day <= last
    )
    if title_id is not None:
        stmt = stmt.where(DailyFigure.title_id == title_id)
    return list(session.scalars(stmt))


# --- reports ------------------------------------------------------------------------------


def title_in_scope(session: Session, title_id: str, scope: StudioScope) -> bool:
    found = session.scalar(
        select(Title.id).where(Title.id == title_id, scope.where(Title.studio_id))
    )
    return found is not None


def figure_conditions(
    date_from: date,
    date_to: date,
    title_ids: Sequence[str],
    territories: Sequence[str],
    scope: StudioScope,
) -> list[ColumnElement[bool]]:
    """Roll-up rows of a report: the days, titles and territories asked for, in scope."""
    conditions: list[ColumnElement[bool]] = [
        DailyFigure.day >= date_from,
        DailyFigure.day <= date_to,
    ]
    if title_ids:
        conditions.append(DailyFigure.title_id.in_(title_ids))
    if territories:
        conditions.append(DailyFigure.territory.in_([t.upper() for t in territories]))
    if not scope.every:
        conditions.append(
            DailyFigure.title_id.in_(select(Title.id).where(scope.where(Title.studio_id)))
        )
    return conditions


def title_names(session: Session, ids: list[str]) -> dict[str, str]:
    if not ids:
        return {}
    rows = session.execute(select(Title.id, Title.original_title).where(Title.id.in_(ids)))
    return {title_id: name for title_id, name in rows}


def figure_sums(
    session: Session, key_cols: Sequence[Any], conditions: list[ColumnElement[bool]]
) -> Sequence[Any]:
    """(*keys, measure, currency, sum of value) over the rows, grouped by ``key_cols`` (any
    of title_id, territory and day; none for one grand total)."""
    stmt = (
        select(*key_cols, DailyFigure.measure, DailyFigure.currency, func.sum(DailyFigure.value))
        .where(and_(*conditions))
        .group_by(*key_cols, DailyFigure.measure, DailyFigure.currency)
    )
    return session.execute(stmt).all()


def figure_territories(session: Session, conditions: list[ColumnElement[bool]]) -> list[str]:
    return list(session.scalars(select(DailyFigure.territory).where(and_(*conditions)).distinct()))


def money_days(
    session: Session, conditions: list[ColumnElement[bool]], measures: list[str]
) -> Sequence[Row[date, str]]:
    """(day, currency) pairs that hold money among the rows."""
    return session.execute(
        select(DailyFigure.day, DailyFigure.currency)
        .where(and_(*conditions), DailyFigure.measure.in_(measures))
        .distinct()
    ).all()


def rates_held(session: Session, first: date, last: date) -> set[tuple[date, str]]:
    return set(
        (d, c)
        for d, c in session.execute(
            select(FxRate.day, FxRate.currency).where(FxRate.day >= first, FxRate.day <= last)
        )
    )


def daily_sums(
    session: Session,
    conditions: list[ColumnElement[bool]],
    money_measures: list[str],
    currency: str,
    count_measure: str,
) -> Sequence[Row[str, date, str, int]]:
    """(title, day, measure, sum) of ``money_measures`` in ``currency`` and of
    ``count_measure``, per title and day."""
    stmt = (
        select(
            DailyFigure.title_id, DailyFigure.day, DailyFigure.measure, func.sum(DailyFigure.value)
        )
        .where(
            and_(*conditions),
            ((DailyFigure.measure.in_(money_measures)) & (DailyFigure.currency == currency))
            | (DailyFigure.measure == count_measure),
        )
        .group_by(DailyFigure.title_id, DailyFigure.day, DailyFigure.measure)
    )
    return session.execute(stmt).all()


# --- views: heartbeats, the ticket's watch row, qualified views -----------------------------


def lock_watch(
    session: Session, ticket_id: str, title_id: str, territory: str, now: datetime
) -> tuple[list[list[int]], datetime | None]:
    """Create or lock the ticket's ``ticket_watch`` row and return its current state.

    One UPSERT whose conflict branch rewrites a column with its own value: on PostgreSQL that
    takes the row lock (a second device's heartbeat waits here for the first one's commit and
    then reads its result); on SQLite the transaction already holds the database write lock.
    """
    table = cast(Table, TicketWatch.__table__)
    dialect = session.get_bind().dialect.name
    dialect_insert: Any = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = dialect_insert(table).values(
        ticket_id=ticket_id,
        title_id=title_id,
        territory=territory,
        watched_seconds=0.0,
        intervals=[],
        updated_at=now,
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c.ticket_id], set_={"ticket_id": stmt.excluded.ticket_id}
    ).returning(table.c.intervals, table.c.latest_at)
    intervals, latest_at = session.execute(stmt).one()
    return list(intervals), latest_at


def heartbeat_starts(
    session: Session, ticket_id: str, playback_session_id: str
) -> tuple[datetime | None, datetime | None, datetime | None]:
    """In one statement: the ticket's first view start, this session's start, and this
    session's previous heartbeat (each an index probe)."""
    first_start, session_start, previous_beat = session.execute(
        select(
            select(func.min(ViewStart.started_at))
            .where(ViewStart.ticket_id == ticket_id)
            .scalar_subquery(),
            select(ViewStart.started_at)
            .where(ViewStart.playback_session_id == playback_session_id)
            .scalar_subquery(),
            select(func.max(ViewHeartbeat.at))
            .where(ViewHeartbeat.playback_session_id == playback_session_id)
            .scalar_subquery(),
        )
    ).one()
    return first_start, session_start, previous_beat


def title_runtime(session: Session, title_id: str) -> int | None:
    return session.scalar(select(Title.runtime_seconds).where(Title.id == title_id))


def save_watch(
    session: Session,
    ticket_id: str,
    *,
    intervals: Sequence[Sequence[int]],
    watched_seconds: float,
    latest_at: datetime | None,
    now: datetime,
) -> None:
    session.execute(
        update(TicketWatch)
        .where(TicketWatch.ticket_id == ticket_id)
        .values(
            intervals=intervals,
            watched_seconds=watched_seconds,
            latest_at=latest_at,
            updated_at=now,
        )
    )


def ticket_watched_seconds(session: Session, ticket_id: str) -> float | None:
    return session.scalar(
        select(TicketWatch.watched_seconds).where(TicketWatch.ticket_id == ticket_id)
    )


def covered_ms_from_heartbeats(session: Session, ticket_id: str) -> int:
    """The union of the ticket's heartbeat ranges in milliseconds ("gaps and islands")."""
    hb = ViewHeartbeat
    ordered = (hb.covered_from_ms, hb.covered_to_ms)
    ranges = (
        select(
            hb.covered_from_ms.label("lo"),
            hb.covered_to_ms.label("hi"),
            func.max(hb.covered_to_ms)
            .over(order_by=ordered, rows=(None, -1))
            .label("reach"),  # the furthest end of every range that starts earlier
        )
        .where(hb.ticket_id == ticket_id, hb.covered_to_ms > hb.covered_from_ms)
        .subquery()
    )
    islands = select(
        ranges.c.lo,
        ranges.c.hi,
        func.sum(case((or_(ranges.c.reach.is_(None), ranges.c.lo > ranges.c.reach), 1), else_=0))
        .over(order_by=(ranges.c.lo, ranges.c.hi), rows=(None, 0))
        .label("island"),
    ).subquery()
    spans = (
        select((func.max(islands.c.hi) - func.min(islands.c.lo)).label("span"))
        .group_by(islands.c.island)
        .subquery()
    )
    return int(session.scalar(select(func.coalesce(func.sum(spans.c.span), 0))) or 0)


def stored_intervals(session: Session, ticket_id: str) -> list[list[int]] | None:
    return session.scalar(select(TicketWatch.intervals).where(TicketWatch.ticket_id == ticket_id))


def count_qualified_views(session: Session, after: datetime | None, until: datetime | None) -> int:
    stmt = select(func.count()).select_from(QualifiedView)
    if after is not None:
        stmt = stmt.where(QualifiedView.created_at > after)
    if until is not None:
        stmt = stmt.where(QualifiedView.created_at <= until)
    return int(session.scalar(stmt) or 0)
