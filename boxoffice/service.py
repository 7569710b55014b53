"""Box office as other packages and the API use it. Definitions: boxoffice/definitions.py."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy.orm import Session

from boxoffice import repository
from boxoffice.definitions import territory_zone
from boxoffice.ecb import FetchResult
from boxoffice.ecb import fetch_rates as fetch_ecb_rates
from boxoffice.fx import FxLoad, load_rates, parse_ecb_csv, rate_on, rates_on
from boxoffice.models import RevenueShare
from boxoffice.repository import upsert
from boxoffice.rollup import rollup_day, rollup_days, rollup_pending, rollup_range
from boxoffice.views import record_heartbeat, record_view_started
from core.db import utcnow
from core.errors import InvalidInput, NotFound
from core.outbox import enqueue
from core.settings import get_settings

__all__ = [
    "FetchResult",
    "FxLoad",
    "fetch_ecb_rates",
    "load_rates",
    "parse_ecb_csv",
    "rate_on",
    "rates_on",
    "record_heartbeat",
    "record_view_started",
    "revenue_shares",
    "rollup_day",
    "rollup_days",
    "rollup_pending",
    "rollup_range",
    "set_revenue_share",
    "territory_zone",
]


def set_revenue_share(
    session: Session,
    *,
    title_id: str,
    territory: str | None,
    studio_share_percent: Decimal,
    by: str | None,
) -> RevenueShare:
    """Set the studio's share of net for a title (optionally one territory). Converted
    figures of days already rolled up are recomputed by a job."""
    if not repository.title_exists(session, title_id):
        raise NotFound("no such title", code="title_not_found")
    bps = studio_share_percent * 100
    if not Decimal(0) <= bps <= Decimal(10000) or bps != bps.to_integral_value():
        raise InvalidInput(
            "studio_share_percent must be 0-100 with at most two decimals",
            code="revenue_share_invalid",
        )
    code = (territory or "").upper()
    if code and (len(code) != 2 or not code.isalpha()):
        raise InvalidInput("territory must be ISO 3166-1 alpha-2", code="territory_invalid")
    now = utcnow()
    values = {"studio_share_bps": int(bps), "updated_at": now, "updated_by": by}
    upsert(
        session,
        RevenueShare,
        {"title_id": title_id, "territory": code} | values,
        ["title_id", "territory"],
        values,
    )
    first, last = repository.rolled_up_days(session, title_id)
    if first is not None and last is not None:
        enqueue(
            session,
            "boxoffice.rollup.range",
            first=first.isoformat(),
            last=last.isoformat(),
            title_id=title_id,
        )
    session.flush()
    return repository.get_revenue_share(session, title_id, code)


def revenue_shares(session: Session, title_id: str) -> tuple[list[RevenueShare], Decimal]:
    """A title's shares, and the default that applies where it has none."""
    rows = repository.revenue_shares(session, title_id)
    return rows, Decimal(str(get_settings().boxoffice_default_studio_share_percent))
