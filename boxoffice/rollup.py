"""Daily roll-ups: one (title, territory, local day)'s figures, recomputed from the facts.

Recomputing a day deletes its rows and inserts fresh ones in the caller's one transaction,
so a report (one statement, one snapshot) sees either the old or the new rows, never both,
and re-running a day gives the same numbers. Two roll-ups of the same day are serialised by
the UPSERT on its ``boxoffice_rolled_day`` row. Late facts land on the day they *happened*:
:func:`rollup_pending` finds the days touched by rows *written* since the last run.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from boxoffice.definitions import (
    Measure,
    convert_minor,
    share_of,
)
from boxoffice.models import (
    RolledDay,
    RollupWatermark,
)
from boxoffice.repository import (
    Cell,
    aggregate_day,
    days_touched_since,
    lock_watermark,
    rates_for,
    replace_day,
    rolled_days,
    share_percents,
    upsert,
)
from core.db import utcnow
from core.settings import Settings, get_settings

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


def _converted(
    cell: Cell, rates: dict[str, Decimal], reporting: str, share_percent: Decimal
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
    rates = {currency: rate for currency, (rate, _) in rates_for(session, day).items()}
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
    replace_day(session, day, rows)
    session.flush()
    return len(rows)


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
    days = sorted(rolled_days(session, first, last, title_id))
    for day in days:
        rollup_day(session, day)
    return days
