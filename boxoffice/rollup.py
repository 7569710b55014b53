"""Daily roll-ups: one local day's figures per (title, territory, payment provider,
currency), recomputed from the facts.

Recomputing a day deletes its rows and inserts fresh ones in the caller's one transaction,
so a report (one snapshot) sees either the old or the new rows, never both, and re-running
a day -- a retried job, two workers, a crash before commit -- gives the same rows, never
twice the numbers. Two roll-ups of the same day are serialised by the UPSERT on its
``boxoffice_rolled_day`` row. Late facts land on the day they *happened*:
:func:`rollup_pending` finds the days touched by rows *written* since the last run.

Reports read only these rows (boxoffice/reports.py): ``boxoffice_day`` for counts and local
money, ``boxoffice_day_converted`` for money in each reporting currency.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from boxoffice.definitions import convert_minor, share_of
from boxoffice.fx import RateUsed, rates_for_day
from boxoffice.models import RolledDay, RollupWatermark
from boxoffice.repository import (
    CONVERTED_COLUMNS,
    TOTALS_COLUMNS,
    Cell,
    aggregate_day,
    days_touched_since,
    lock_watermark,
    refresh_week,
    replace_day,
    rolled_days,
    share_percents,
    upsert,
    week_of,
)
from core.db import utcnow
from core.settings import Settings, get_settings

log = logging.getLogger(__name__)

WATERMARK = "rollup"
# Local money columns and the converted column each one adds to (reversals of chargebacks
# are shown inside chargebacks once converted).
_CONVERTS_TO = {
    "gross_minor": "gross_minor",
    "refunds_minor": "refunds_minor",
    "chargebacks_minor": "chargebacks_minor",
    "chargeback_reversals_minor": "chargebacks_minor",
    "fees_minor": "fees_minor",
}


def converted(
    money: dict[str, dict[str, int]],
    rates: dict[str, RateUsed],
    reporting: str,
    share_percent: Decimal,
) -> dict[str, int] | None:
    """One provider's money of one (title, territory, day) in ``reporting``: ``money`` maps a
    currency to its local columns; each amount is converted with the day's rate and rounded
    once. None when a rate is missing (never guessed beyond the carry-over rule)."""
    needed = set(money) | {reporting}
    if any(c not in rates for c in needed):
        return None
    out = dict.fromkeys(("gross_minor", "refunds_minor", "chargebacks_minor", "fees_minor"), 0)
    for currency, columns in money.items():
        for column, amount in columns.items():
            if column not in _CONVERTS_TO or not amount:
                continue
            out[_CONVERTS_TO[column]] += convert_minor(
                amount,
                rate_from=rates[currency].per_eur,
                rate_to=rates[reporting].per_eur,
                from_currency=currency,
                to_currency=reporting,
            )
    out["net_minor"] = (
        out["gross_minor"] + out["refunds_minor"] + out["chargebacks_minor"] - out["fees_minor"]
    )
    out["studio_payable_minor"] = share_of(out["net_minor"], share_percent)
    return out


def day_rows(
    day: date,
    cells: dict[tuple[str, str], Cell],
    rates: dict[str, RateUsed],
    shares: dict[tuple[str, str], Decimal],
    default_share: Decimal,
    reporting_currencies: list[str],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The ``boxoffice_day`` and ``boxoffice_day_converted`` rows of one day."""
    totals: list[dict[str, Any]] = []
    conv: list[dict[str, Any]] = []
    # Every row names every column: one multi-row INSERT needs the same keys in each.
    zero = dict.fromkeys(TOTALS_COLUMNS, 0)
    for (title_id, territory), cell in cells.items():
        base = {"day": day, "title_id": title_id, "territory": territory}
        if cell.views:
            totals.append(base | {"provider": "", "currency": ""} | zero | cell.views)
        by_provider: dict[str, dict[str, dict[str, int]]] = {}
        for (provider, currency), columns in cell.money.items():
            totals.append(base | {"provider": provider, "currency": currency} | zero | columns)
            by_provider.setdefault(provider, {})[currency] = columns
        share = shares.get((title_id, territory), shares.get((title_id, ""), default_share))
        for provider, money in by_provider.items():
            for reporting in reporting_currencies:
                key = base | {"provider": provider, "reporting_currency": reporting}
                figures = converted(money, rates, reporting, share)
                if figures is None:
                    conv.append(key | dict.fromkeys(CONVERTED_COLUMNS, 0) | {"unconverted": 1})
                else:
                    conv.append(key | figures | {"unconverted": 0})
    return totals, conv


def rollup_day(
    session: Session, day: date, settings: Settings | None = None, *, with_week: bool = True
) -> int:
    """Replace ``day``'s rows with freshly computed ones, and its week's sums (unless the
    caller rewrites the weeks itself after several days); returns how many day rows it
    wrote."""
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
    shares, default_share = share_percents(session, settings)
    totals, conv = day_rows(
        day,
        cells,
        rates_for_day(session, day, settings),
        shares,
        default_share,
        list(settings.boxoffice_reporting_currencies),
    )
    replace_day(session, day, totals, conv)
    if with_week:
        refresh_week(session, week_of(day), now)
    session.flush()
    return len(totals) + len(conv)


def rollup_days(session: Session, days: list[date], settings: Settings | None = None) -> None:
    """Roll up ``days`` (ascending, so two runs take the days' locks in the same order),
    then rewrite each week they touch once."""
    for day in days:
        rollup_day(session, day, settings, with_week=False)
    now = utcnow()
    for week in sorted({week_of(d) for d in days}):
        refresh_week(session, week, now)
    session.flush()


def rollup_pending(session: Session, now: datetime | None = None) -> list[date]:
    """Roll up every day touched by facts written since the previous run (minus the
    overlap); returns the days. The periodic job of the worker pool."""
    settings = get_settings()
    now = now or utcnow()
    mark = lock_watermark(session, WATERMARK)
    since = (mark.value if mark else datetime(1970, 1, 1, tzinfo=UTC)) - timedelta(
        seconds=settings.boxoffice_rollup_overlap_seconds
    )
    days = sorted(days_touched_since(session, since, settings))
    rollup_days(session, days, settings)
    upsert(session, RollupWatermark, {"name": WATERMARK, "value": now}, ["name"], {"value": now})
    if days:
        log.info("box office rolled up", extra={"days": [d.isoformat() for d in days]})
    return days


def rollup_range(
    session: Session, first: date, last: date, title_id: str | None = None
) -> list[date]:
    """Re-roll days in [first, last] that already have rows (after new FX rates or a revenue
    share change: converted figures depend on them)."""
    days = sorted(rolled_days(session, first, last, title_id))
    rollup_days(session, days)
    return days
