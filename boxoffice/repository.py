"""Box-office SQL: FX rates, revenue shares, the ledger and payment events of a day, and
the roll-up's aggregates over them (boxoffice/rollup.py holds the rules that use them)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Date,
    Table,
    and_,
    bindparam,
    case,
    delete,
    exists,
    false,
    func,
    insert,
    literal,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Row
from sqlalchemy.orm import InstrumentedAttribute, Session
from sqlalchemy.sql.elements import BindParameter

from boxoffice.definitions import day_bounds, local_day, territory_zones
from boxoffice.models import (
    DailyConverted,
    DailyTotals,
    FxFetch,
    FxRate,
    QualifiedView,
    RevenueShare,
    RolledWeek,
    RollupWatermark,
    TicketWatch,
    ViewHeartbeat,
    ViewStart,
    WeeklyConverted,
    WeeklyTotals,
)
from catalog.models import Title
from core.hot_sql import HotStatement
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
        select(func.min(DailyTotals.day), func.max(DailyTotals.day)).where(
            DailyTotals.title_id == title_id
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
    # Zones whose day has the same UTC bounds (CET countries, say) share one branch.
    by_bounds: dict[tuple[datetime, datetime], list[str]] = defaultdict(list)
    for country, zone in zones.items():
        by_bounds[day_bounds(day, zone)].append(country)
    branches: list[ColumnElement[bool]] = []
    lows, highs = [], []
    for (start, end), countries in by_bounds.items():
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

    # (provider, currency) -> column of boxoffice_day -> minor units or a ticket count
    money: dict[tuple[str, str], dict[str, int]]
    views: dict[str, int]  # views_started, unique_viewers, qualified_views


def aggregate_day(
    session: Session, day: date, settings: Settings | None = None
) -> dict[tuple[str, str], Cell]:
    """The day's facts grouped by (title, territory), then by payment provider and currency."""
    settings = settings or get_settings()
    cells: dict[tuple[str, str], Cell] = defaultdict(lambda: Cell({}, {}))
    le = LedgerEntry
    money = session.execute(
        select(
            le.title_id,
            le.territory,
            le.provider,
            le.currency,
            le.kind,
            func.count(),
            func.sum(le.amount_minor),
        )
        .where(_in_local_day(day, le.occurred_at, le.territory, settings))
        .group_by(le.title_id, le.territory, le.provider, le.currency, le.kind)
    )
    for title_id, territory, provider, currency, kind, n, total in money:
        row = cells[(title_id, territory)].money.setdefault((provider, currency), {})
        column = LEDGER_COLUMN[LedgerKind(kind)]
        row[column] = row.get(column, 0) + int(total)
        if column == "gross_minor":
            row["tickets_sold"] = row.get("tickets_sold", 0) + int(n)
    fees = session.execute(
        select(
            le.title_id,
            le.territory,
            le.provider,
            le.provider_fee_currency,
            func.sum(le.provider_fee_minor),
        )
        .where(
            _in_local_day(day, le.occurred_at, le.territory, settings),
            le.provider_fee_minor.is_not(None),
            le.provider_fee_currency.is_not(None),
        )
        .group_by(le.title_id, le.territory, le.provider, le.provider_fee_currency)
    )
    for title_id, territory, provider, fee_currency, fee_total in fees:
        row = cells[(title_id, territory)].money.setdefault((provider, str(fee_currency)), {})
        row["fees_minor"] = int(fee_total or 0)
    vs = ViewStart
    starts = session.execute(
        select(vs.title_id, vs.territory, func.count(), func.count(vs.viewer_id.distinct()))
        .where(_in_local_day(day, vs.started_at, vs.territory, settings))
        .group_by(vs.title_id, vs.territory)
    )
    for title_id, territory, n, viewers in starts:
        views = cells[(title_id, territory)].views
        views["views_started"] = int(n)
        views["unique_viewers"] = int(viewers)
    qv = QualifiedView
    qualified = session.execute(
        select(qv.title_id, qv.territory, func.count())
        .where(_in_local_day(day, qv.qualified_at, qv.territory, settings))
        .group_by(qv.title_id, qv.territory)
    )
    for title_id, territory, n in qualified:
        cells[(title_id, territory)].views["qualified_views"] = int(n)
    return cells


# The boxoffice_day column each kind of ledger entry adds to.
LEDGER_COLUMN: dict[LedgerKind, str] = {
    LedgerKind.sale: "gross_minor",
    LedgerKind.refund: "refunds_minor",
    LedgerKind.chargeback: "chargebacks_minor",
    LedgerKind.chargeback_reversal: "chargeback_reversals_minor",
}


def rates_between(session: Session, first: date, last: date) -> Sequence[tuple[date, str, str]]:
    """Every stored (day, currency, units per EUR) with ``first <= day <= last``."""
    return [
        (d, c, r)
        for d, c, r in session.execute(
            select(FxRate.day, FxRate.currency, FxRate.per_eur)
            .where(FxRate.day >= first, FxRate.day <= last)
            .order_by(FxRate.day)
        )
    ]


def latest_rate_day(session: Session) -> date | None:
    return session.scalar(select(func.max(FxRate.day)))


def get_fx_fetch(session: Session, source: str) -> FxFetch | None:
    return session.get(FxFetch, source)


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


def replace_day(
    session: Session, day: date, totals: list[dict[str, Any]], converted: list[dict[str, Any]]
) -> None:
    """``day``'s roll-up rows, all replaced: a re-run or a retried job writes the same rows
    again, it never adds to them."""
    session.execute(delete(DailyTotals).where(DailyTotals.day == day))
    session.execute(delete(DailyConverted).where(DailyConverted.day == day))
    if totals:
        session.execute(insert(DailyTotals), totals)
    if converted:
        session.execute(insert(DailyConverted), converted)


def week_of(day: date) -> date:
    """The Monday of ``day``'s ISO week: the key of its ``boxoffice_week`` rows."""
    return day - timedelta(days=day.weekday())


def refresh_week(session: Session, week: date, now: datetime) -> None:
    """Rewrite one week's sums from its seven days' rows, after taking the week's lock row:
    a second roll-up touching the same week waits here for this one's commit, then sums
    the days as they are committed (PostgreSQL's READ COMMITTED gives each statement a
    fresh snapshot), so a week never misses a day rolled up beside it."""
    upsert(session, RolledWeek, {"week": week, "computed_at": now}, ["week"], {"computed_at": now})
    end = week + timedelta(days=6)
    for daily, weekly, columns in (
        (DailyTotals, WeeklyTotals, ("title_id", "territory", "provider", "currency")),
        (
            DailyConverted,
            WeeklyConverted,
            ("title_id", "territory", "provider", "reporting_currency"),
        ),
    ):
        sums = TOTALS_COLUMNS if daily is DailyTotals else CONVERTED_COLUMNS
        session.execute(delete(weekly).where(weekly.week == week))
        keys = [getattr(daily, c) for c in columns]
        session.execute(
            insert(weekly).from_select(
                ["week", *columns, *sums],
                select(
                    literal(week, Date).label("week"),
                    *keys,
                    *(func.sum(getattr(daily, c)) for c in sums),
                )
                .where(daily.day >= week, daily.day <= end)
                .group_by(*keys),
            )
        )


def lock_watermark(session: Session, name: str) -> RollupWatermark | None:
    return session.get(RollupWatermark, name, with_for_update=True)


def rolled_days(session: Session, first: date, last: date, title_id: str | None) -> list[date]:
    """Days in [first, last] that already have roll-up rows (of one title, if given)."""
    stmt = (
        select(DailyTotals.day).where(DailyTotals.day >= first, DailyTotals.day <= last).distinct()
    )
    if title_id is not None:
        stmt = stmt.where(DailyTotals.title_id == title_id)
    return list(session.scalars(stmt))


# --- reports ------------------------------------------------------------------------------


def title_in_scope(session: Session, title_id: str, scope: StudioScope) -> bool:
    found = session.scalar(
        select(Title.id).where(Title.id == title_id, scope.where(Title.studio_id))
    )
    return found is not None


# The dimensions a report may group the roll-up by, and the columns it sums.
DIMENSIONS = ("day", "title", "territory", "provider", "currency", "reporting_currency")
TOTALS_COLUMNS = (
    "tickets_sold",
    "gross_minor",
    "refunds_minor",
    "chargebacks_minor",
    "chargeback_reversals_minor",
    "fees_minor",
    "views_started",
    "unique_viewers",
    "qualified_views",
)
CONVERTED_COLUMNS = (
    "gross_minor",
    "refunds_minor",
    "chargebacks_minor",
    "fees_minor",
    "net_minor",
    "studio_payable_minor",
    "unconverted",
)


@dataclass(frozen=True)
class RollupFilter:
    """Which roll-up rows a report reads: local days ``date_from``..``date_to`` inclusive,
    optionally some titles, territories and providers, always within ``scope``."""

    date_from: date
    date_to: date
    scope: StudioScope
    title_ids: Sequence[str] = ()
    territories: Sequence[str] = ()
    providers: Sequence[str] = ()


_Model = type[DailyTotals] | type[DailyConverted] | type[WeeklyTotals] | type[WeeklyConverted]


def _rollup_conditions(model: _Model, where: RollupFilter) -> list[ColumnElement[bool]]:
    """The filter's titles, territories, providers and scope (the period is the caller's)."""
    conditions: list[ColumnElement[bool]] = []
    if where.title_ids:
        conditions.append(model.title_id.in_(where.title_ids))
    if where.territories:
        conditions.append(model.territory.in_([t.upper() for t in where.territories]))
    if where.providers:
        conditions.append(model.provider.in_(where.providers))
    if not where.scope.every:
        conditions.append(
            model.title_id.in_(select(Title.id).where(where.scope.where(Title.studio_id)))
        )
    return conditions


def whole_weeks(first: date, last: date) -> tuple[date, date] | None:
    """The Mondays of the first and last ISO weeks lying wholly in [first, last], if any."""
    start = first + timedelta(days=(7 - first.weekday()) % 7)
    end = week_of(last + timedelta(days=1)) - timedelta(days=7)
    return (start, end) if start <= end else None


def _period_parts(
    daily: type[DailyTotals] | type[DailyConverted],
    weekly: type[WeeklyTotals] | type[WeeklyConverted],
    where: RollupFilter,
    by_day: bool,
) -> list[tuple[_Model, ColumnElement[bool]]]:
    """Which table covers which part of the range: daily rows for the days outside whole
    weeks (or for everything when grouping by day), weekly rows for the whole weeks."""
    weeks = None if by_day else whole_weeks(where.date_from, where.date_to)
    if weeks is None:
        return [(daily, and_(daily.day >= where.date_from, daily.day <= where.date_to))]
    first_monday, last_monday = weeks
    parts: list[tuple[_Model, ColumnElement[bool]]] = [
        (weekly, and_(weekly.week >= first_monday, weekly.week <= last_monday))
    ]
    if where.date_from < first_monday:
        parts.append((daily, and_(daily.day >= where.date_from, daily.day < first_monday)))
    after = last_monday + timedelta(days=7)
    if after <= where.date_to:
        parts.append((daily, and_(daily.day >= after, daily.day <= where.date_to)))
    return parts


def _dimension(model: _Model, name: str) -> Any:
    if name not in DIMENSIONS:
        raise ValueError(f"unknown roll-up dimension {name!r}")
    if name == "title":
        return model.title_id.label("title")
    if name == "currency" and not hasattr(model, "currency"):
        raise ValueError("converted figures are grouped by reporting currency, not by currency")
    return getattr(model, name).label(name)


def _sums_by(
    session: Session,
    daily: type[DailyTotals] | type[DailyConverted],
    weekly: type[WeeklyTotals] | type[WeeklyConverted],
    dimensions: Sequence[str],
    sums: Sequence[str],
    where: RollupFilter,
    extra: Callable[[_Model], list[ColumnElement[bool]]] = lambda _: [],
) -> list[Row[Any]]:
    """One statement: the rows of each part of the range (UNION ALL), summed by dimension."""
    parts = []
    for model, period in _period_parts(daily, weekly, where, "day" in dimensions):
        parts.append(
            select(
                *(_dimension(model, d) for d in dimensions),
                *(getattr(model, c).label(c) for c in sums),
            ).where(period, *_rollup_conditions(model, where), *extra(model))
        )
    rows = parts[0].subquery() if len(parts) == 1 else union_all(*parts).subquery()
    dims = [rows.c[d] for d in dimensions]
    stmt = select(*dims, *(func.sum(rows.c[c]).label(c) for c in sums))
    if dims:
        stmt = stmt.group_by(*dims)
    return _rows(session.execute(stmt).all())


def totals_by(
    session: Session, dimensions: Sequence[str], where: RollupFilter
) -> Sequence[Row[Any]]:
    """``SELECT <dimensions>, sum(<every TOTALS_COLUMNS>) … GROUP BY <dimensions>`` over the
    roll-up: each row has the dimensions by name (``day``, ``title``, ``territory``,
    ``provider``, ``currency``) and the sums by column name. View counts are on rows whose
    provider and currency are ''. Without ``day`` among the dimensions, whole ISO weeks of
    the range are read from the weekly sums (one statement, one snapshot)."""
    return _sums_by(session, DailyTotals, WeeklyTotals, dimensions, TOTALS_COLUMNS, where)


def converted_by(
    session: Session,
    dimensions: Sequence[str],
    where: RollupFilter,
    reporting_currencies: Sequence[str] = (),
) -> Sequence[Row[Any]]:
    """The converted twin of :func:`totals_by`, grouped by ``dimensions`` (any but
    ``currency``) and ``reporting_currency``; ``unconverted`` counts the (day, title,
    territory, provider) cells that lacked a rate."""

    def currencies(model: _Model) -> list[ColumnElement[bool]]:
        if not reporting_currencies:
            return []
        return [cast(Any, model).reporting_currency.in_(reporting_currencies)]

    return _sums_by(
        session,
        DailyConverted,
        WeeklyConverted,
        [*dimensions, "reporting_currency"],
        CONVERTED_COLUMNS,
        where,
        currencies,
    )


def money_days(session: Session, where: RollupFilter) -> Sequence[Row[date, str]]:
    """(day, currency) pairs that hold money among the filtered rows."""
    return session.execute(
        select(DailyTotals.day, DailyTotals.currency)
        .where(
            DailyTotals.day >= where.date_from,
            DailyTotals.day <= where.date_to,
            *_rollup_conditions(DailyTotals, where),
            DailyTotals.currency != "",
        )
        .distinct()
    ).all()


def title_names(session: Session, ids: list[str]) -> dict[str, str]:
    if not ids:
        return {}
    rows = session.execute(select(Title.id, Title.original_title).where(Title.id.in_(ids)))
    return {title_id: name for title_id, name in rows}


def raw_totals(session: Session, start: datetime, end: datetime) -> Sequence[Row[Any]]:
    """The same figures straight from the facts, for ``start <= time < end``, grouped by
    (title, territory, provider, currency): the GROUP BY the roll-up replaces, kept as the
    reference the tests and the benchmark compare it with."""
    le = LedgerEntry
    kind_sum = {
        "gross_minor": LedgerKind.sale,
        "refunds_minor": LedgerKind.refund,
        "chargebacks_minor": LedgerKind.chargeback,
        "chargeback_reversals_minor": LedgerKind.chargeback_reversal,
    }
    in_range = and_(le.occurred_at >= start, le.occurred_at < end)
    money = (
        select(
            le.title_id.label("title"),
            le.territory.label("territory"),
            le.provider.label("provider"),
            le.currency.label("currency"),
            func.count().filter(le.kind == LedgerKind.sale).label("tickets_sold"),
            *(
                func.coalesce(func.sum(le.amount_minor).filter(le.kind == k), 0).label(c)
                for c, k in kind_sum.items()
            ),
        )
        .where(in_range)
        .group_by(le.title_id, le.territory, le.provider, le.currency)
    )
    fees = (
        select(
            le.title_id.label("title"),
            le.territory.label("territory"),
            le.provider.label("provider"),
            le.provider_fee_currency.label("currency"),
            func.sum(le.provider_fee_minor).label("fees_minor"),
        )
        .where(in_range, le.provider_fee_minor.is_not(None), le.provider_fee_currency.is_not(None))
        .group_by(le.title_id, le.territory, le.provider, le.provider_fee_currency)
    )
    vs, qv = ViewStart, QualifiedView
    starts = (
        select(
            vs.title_id.label("title"),
            vs.territory.label("territory"),
            func.count().label("views_started"),
            func.count(vs.viewer_id.distinct()).label("unique_viewers"),
        )
        .where(vs.started_at >= start, vs.started_at < end)
        .group_by(vs.title_id, vs.territory)
    )
    qualified = (
        select(
            qv.title_id.label("title"),
            qv.territory.label("territory"),
            func.count().label("qualified_views"),
        )
        .where(qv.qualified_at >= start, qv.qualified_at < end)
        .group_by(qv.title_id, qv.territory)
    )
    return [
        *_rows(session.execute(money).all()),
        *_rows(session.execute(fees).all()),
        *_rows(session.execute(starts).all()),
        *_rows(session.execute(qualified).all()),
    ]


def _rows(rows: Sequence[Any]) -> list[Row[Any]]:
    """Result rows read by column name (their tuple type varies with the dimensions)."""
    return cast(list[Row[Any]], list(rows))


# --- views: heartbeats, the ticket's watch row, qualified views -----------------------------


# --- the heartbeat's statements ---------------------------------------------------------------
# A heartbeat is the most frequent write of the service. Its statements are compiled once per
# dialect with bind parameters and run on the driver's cursor in the session's transaction
# (core.hot_sql): no ORM, no per-call compile-cache work.


def _dialect_insert(dialect: str) -> Any:
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


_WATCH_COLUMNS = (
    "ticket_id",
    "title_id",
    "territory",
    "watched_seconds",
    "intervals",
    "updated_at",
)


def _lock_watch_statement(dialect: str) -> Any:
    table = cast(Table, TicketWatch.__table__)
    stmt = _dialect_insert(dialect)(table).values(
        {table.c[name]: bindparam(name) for name in _WATCH_COLUMNS}
    )
    return stmt.on_conflict_do_update(
        index_elements=[table.c.ticket_id], set_={"ticket_id": stmt.excluded.ticket_id}
    ).returning(table.c.intervals, table.c.latest_at)


_LOCK_WATCH = HotStatement(_lock_watch_statement)


def lock_watch(
    session: Session, ticket_id: str, title_id: str, territory: str, now: datetime
) -> tuple[list[list[int]], datetime | None]:
    """Create or lock the ticket's ``ticket_watch`` row and return its current state.

    One UPSERT whose conflict branch rewrites a column with its own value: on PostgreSQL that
    takes the row lock (a second device's heartbeat waits here for the first one's commit and
    then reads its result); on SQLite the transaction already holds the database write lock.
    """
    intervals, latest_at = _LOCK_WATCH.one(
        session.connection(),
        {
            "ticket_id": ticket_id,
            "title_id": title_id,
            "territory": territory,
            "watched_seconds": 0.0,
            "intervals": [],
            "updated_at": now,
        },
    )
    return list(intervals), latest_at


def _heartbeat_starts_statement(_dialect: str) -> Any:
    ticket_id: BindParameter[str] = bindparam("ticket_id")
    session_id: BindParameter[str] = bindparam("session_id")
    return select(
        select(func.min(ViewStart.started_at))
        .where(ViewStart.ticket_id == ticket_id)
        .scalar_subquery(),
        select(ViewStart.started_at)
        .where(ViewStart.playback_session_id == session_id)
        .scalar_subquery(),
        select(func.max(ViewHeartbeat.at))
        .where(ViewHeartbeat.playback_session_id == session_id)
        .scalar_subquery(),
    )


def heartbeat_starts(
    session: Session, ticket_id: str, playback_session_id: str
) -> tuple[datetime | None, datetime | None, datetime | None]:
    """In one statement: the ticket's first view start, this session's start, and this
    session's previous heartbeat (each an index probe)."""
    first_start, session_start, previous_beat = _HEARTBEAT_STARTS.one(
        session.connection(), {"ticket_id": ticket_id, "session_id": playback_session_id}
    )
    return first_start, session_start, previous_beat


_HEARTBEAT_STARTS = HotStatement(_heartbeat_starts_statement)


def title_runtime(session: Session, title_id: str) -> int | None:
    return session.scalar(select(Title.runtime_seconds).where(Title.id == title_id))


def _heartbeat_insert(dialect: str) -> Any:
    table = cast(Table, ViewHeartbeat.__table__)
    return (
        _dialect_insert(dialect)(table)
        .values({table.c[name]: bindparam(name) for name in _HEARTBEAT_COLUMNS})
        .on_conflict_do_nothing(index_elements=["playback_session_id", "seq"])
        .returning(table.c.id)
    )


_HEARTBEAT_INSERT = HotStatement(_heartbeat_insert)


def insert_heartbeat(session: Session, values: dict[str, Any]) -> bool:
    """Store one heartbeat once: False when (session, seq) is already stored."""
    return _HEARTBEAT_INSERT.first(session.connection(), values) is not None


def _save_watch_statement(_dialect: str = "") -> Any:
    return (
        update(TicketWatch)
        .where(TicketWatch.ticket_id == bindparam("b_ticket_id"))
        .values(
            intervals=bindparam("b_intervals"),
            watched_seconds=bindparam("b_watched_seconds"),
            latest_at=bindparam("b_latest_at"),
            updated_at=bindparam("b_now"),
        )
    )


_HEARTBEAT_COLUMNS = (
    "id",
    "playback_session_id",
    "seq",
    "ticket_id",
    "reported_seconds",
    "credited_seconds",
    "position_seconds",
    "covered_from_ms",
    "covered_to_ms",
    "outside_territory",
    "at",
    "created_at",
)


def _store_heartbeat_statement(_dialect: str) -> Any:
    """PostgreSQL: the heartbeat row and, only if it was new, the ticket's watch row, in one
    statement (one round trip instead of two on the busiest write path)."""
    table = cast(Table, ViewHeartbeat.__table__)
    stored = (
        postgresql.insert(table)
        .values({table.c[name]: bindparam(f"h_{name}") for name in _HEARTBEAT_COLUMNS})
        .on_conflict_do_nothing(index_elements=["playback_session_id", "seq"])
        .returning(table.c.id)
        .cte("stored")
    )
    return (
        _save_watch_statement().where(exists(select(stored.c.id))).returning(TicketWatch.ticket_id)
    )


def store_heartbeat(
    session: Session,
    values: dict[str, Any],
    *,
    intervals: Sequence[Sequence[int]],
    watched_seconds: float,
    latest_at: datetime | None,
    now: datetime,
) -> bool:
    """Store one heartbeat once and, with it, the ticket's new watched state (the caller
    holds the watch row's lock: :func:`lock_watch`). False, and nothing written, when
    (session, seq) is already stored."""
    watch = {
        "b_ticket_id": values["ticket_id"],
        "b_intervals": intervals,
        "b_watched_seconds": watched_seconds,
        "b_latest_at": latest_at,
        "b_now": now,
    }
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        row = _STORE_HEARTBEAT.first(
            connection, {**watch, **{f"h_{name}": values[name] for name in _HEARTBEAT_COLUMNS}}
        )
        return row is not None
    if not insert_heartbeat(session, values):
        return False
    _SAVE_WATCH.execute(connection, watch)
    return True


_STORE_HEARTBEAT = HotStatement(_store_heartbeat_statement)
_SAVE_WATCH = HotStatement(_save_watch_statement)


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


def ticket_has_qualified_view(session: Session, ticket_id: str) -> bool:
    return (
        session.scalar(select(QualifiedView.id).where(QualifiedView.ticket_id == ticket_id))
        is not None
    )
