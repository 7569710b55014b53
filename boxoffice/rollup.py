"""Daily roll-ups: one (title, territory, local day)'s figures, recomputed from the facts.

Recomputing a day deletes its rows and inserts fresh ones in the caller's one transaction,
so a report (one statement, one snapshot) sees either the old or the new rows, never both,
and re-running a day gives the same numbers. Two roll-ups of the same day are serialised by
the UPSERT on its ``boxoffice_rolled_day`` row. Late facts land on the day they *happened*:
:func:`rollup_pending` finds the days touched by rows *written* since the last run.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, and_, delete, false, func, insert, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import InstrumentedAttribute, Session

from boxoffice.definitions import (
    LEDGER_MEASURE,
    Measure,
    convert_minor,
    day_bounds,
    local_day,
    share_of,
    territory_zones,
)
from boxoffice.models import (
    DailyFigure,
    FxRate,
    QualifiedView,
    RevenueShare,
    RolledDay,
    RollupWatermark,
    ViewStart,
)
from core.db import utcnow
from core.settings import Settings, get_settings
from payments.models import LedgerEntry, LedgerKind

log = logging.getLogger(__name__)

# Converted figures are stored under these measures, with the reporting currency.
FX_GROSS, FX_REFUNDS, FX_CHARGEBACKS, FX_FEES, FX_NET, FX_PAYABLE, FX_MISSING = (
    "fx_gross",
    "fx_refunds",
    "fx_chargebacks",
    "fx_fees",
    "fx_net",
    "fx_studio_payable",
    "fx_missing",  # 1 per (title, territory, day) whose amounts lack a rate: not converted
)
WATERMARK = "rollup"


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
class _Cell:
    """One (title, territory) on the day being rolled up."""

    money: dict[tuple[str, str], int]  # (measure, currency) -> minor units
    counts: dict[str, int]


def aggregate_day(
    session: Session, day: date, settings: Settings | None = None
) -> dict[tuple[str, str], _Cell]:
    settings = settings or get_settings()
    cells: dict[tuple[str, str], _Cell] = defaultdict(lambda: _Cell({}, {}))
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


def _converted(
    cell: _Cell, rates: dict[str, Decimal], reporting: str, share_percent: Decimal
) -> dict[str, int] | None:
    """The cell's money in ``reporting``, each amount converted with the day's rate and
    rounded once; None when a rate is missing (never guessed)."""
    needed = {currency for (_, currency) in cell.money} | {reporting}
    if any(c not in rates for c in needed):
        return None
    out = dict.fromkeys((FX_GROSS, FX_REFUNDS, FX_CHARGEBACKS, FX_FEES), 0)
    target = {
        Measure.gross.value: FX_GROSS,
        Measure.refunds.value: FX_REFUNDS,
        Measure.chargebacks.value: FX_CHARGEBACKS,
        Measure.chargeback_reversals.value: FX_CHARGEBACKS,
        Measure.fees.value: FX_FEES,
    }
    for (measure, currency), amount in cell.money.items():
        out[target[measure]] += convert_minor(
            amount,
            rate_from=rates[currency],
            rate_to=rates[reporting],
            from_currency=currency,
            to_currency=reporting,
        )
    out[FX_NET] = out[FX_GROSS] + out[FX_REFUNDS] + out[FX_CHARGEBACKS] - out[FX_FEES]
    out[FX_PAYABLE] = share_of(out[FX_NET], share_percent)
    return out


def rates_for(session: Session, day: date) -> dict[str, Decimal]:
    rates = {
        r.currency: Decimal(r.per_eur)
        for r in session.scalars(select(FxRate).where(FxRate.day == day))
    }
    rates.setdefault("EUR", Decimal(1))
    return rates


def share_percents(
    session: Session, settings: Settings
) -> tuple[dict[tuple[str, str], Decimal], Decimal]:
    shares = {
        (s.title_id, s.territory): Decimal(s.studio_share_bps) / 100
        for s in session.scalars(select(RevenueShare))
    }
    return shares, Decimal(str(settings.boxoffice_default_studio_share_percent))


def rollup_day(session: Session, day: date, settings: Settings | None = None) -> int:
    """Replace ``day``'s rows with freshly computed ones; returns how many rows it wrote."""
    settings = settings or get_settings()
    now = utcnow()
    # Taken first: a second roll-up of this day waits here until this one commits.
    upsert(
        session,
        RolledDay,
        {"day": day, "computed_at": now, "runs": 1},
        ["day"],
        {"computed_at": now, "runs": RolledDay.__table__.c.runs + 1},
    )
    cells = aggregate_day(session, day, settings)
    rates = rates_for(session, day)
    shares, default_share = share_percents(session, settings)
    rows: list[dict[str, Any]] = []
    for (title_id, territory), cell in cells.items():
        base = {"day": day, "title_id": title_id, "territory": territory}
        for measure, n in cell.counts.items():
            rows.append(base | {"measure": measure, "currency": "", "value": n})
        for (measure, currency), amount in cell.money.items():
            rows.append(base | {"measure": measure, "currency": currency, "value": amount})
        if not cell.money:
            continue
        share = shares.get((title_id, territory), shares.get((title_id, ""), default_share))
        for reporting in settings.boxoffice_reporting_currencies:
            converted = _converted(cell, rates, reporting, share)
            if converted is None:
                rows.append(base | {"measure": FX_MISSING, "currency": reporting, "value": 1})
                continue
            rows.extend(
                base | {"measure": m, "currency": reporting, "value": v}
                for m, v in converted.items()
            )
    session.execute(delete(DailyFigure).where(DailyFigure.day == day))
    if rows:
        session.execute(insert(DailyFigure), rows)
    session.flush()
    return len(rows)


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


def rollup_pending(session: Session, now: datetime | None = None) -> list[date]:
    """Roll up every day touched by facts written since the previous run (minus the
    overlap); returns the days. The periodic job of the worker pool."""
    settings = get_settings()
    now = now or utcnow()
    mark = session.get(RollupWatermark, WATERMARK, with_for_update=True)
    since = (mark.value if mark else datetime(1970, 1, 1, tzinfo=UTC)) - timedelta(
        seconds=settings.boxoffice_rollup_overlap_seconds
    )
    days = sorted(days_touched_since(session, since, settings))
    for day in days:
        rollup_day(session, day, settings)
    upsert(session, RollupWatermark, {"name": WATERMARK, "value": now}, ["name"], {"value": now})
    if days:
        log.info("box office rolled up", extra={"days": [d.isoformat() for d in days]})
    return days


def rollup_range(
    session: Session, first: date, last: date, title_id: str | None = None
) -> list[date]:
    """Re-roll days in [first, last] that already have rows (after new FX rates or a revenue
    share change: converted figures depend on them)."""
    stmt = select(DailyFigure.day.distinct()).where(
        DailyFigure.day >= first, DailyFigure.day <= last
    )
    if title_id is not None:
        stmt = stmt.where(DailyFigure.title_id == title_id)
    days = sorted(session.scalars(stmt))
    for day in days:
        rollup_day(session, day)
    return days
