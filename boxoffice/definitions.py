"""The box-office definitions, in one place. docs/boxoffice.md quotes this module; change
both together.

* **View started**: a playback session's first heartbeat, dated the session's start
  (:func:`boxoffice.views.record_view_started`). One per playback session.
* **Covered content** (a ticket's watched time): the union of the content ranges its
  heartbeats covered, across all its sessions, restarts and devices, never more than the
  wall time since the ticket's first view start nor the runtime; heartbeats from outside
  the session's territory cover nothing. The rule: :func:`boxoffice.coverage.credit_heartbeat`.
* **Qualified view**: a ticket whose covered content reaches :func:`qualify_threshold_seconds`
  (the lesser of ``view_qualify_seconds`` and ``view_qualify_runtime_fraction`` of the
  runtime, for films of any length). At most one per ticket (UNIQUE(ticket_id)), however
  many sessions, devices or retries; it counts on the day its threshold was crossed.
* **Gross**: captured ticket payments (ledger ``sale`` entries) on the day they were
  captured. **Refunds** and **chargebacks** are negative entries on the day they happen; a
  won dispute (``chargeback_reversal``) is positive on its own day. Nothing in the past is
  ever edited. **Net sales** = gross + refunds + chargebacks (+ reversals).
* **Fees**: the payment provider's fees on those entries, in the fee's own currency.
* **Net** = net sales - fees; **studio payable** = net x the title's studio share;
  **platform share** = net - studio payable.
* **Day**: the territory's local calendar day (:func:`territory_zone`).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from enum import StrEnum
from functools import lru_cache
from zoneinfo import ZoneInfo

from core.money import minor_exponent, to_major
from core.settings import Settings, get_settings
from payments.models import LedgerKind

# Where a territory's calendar day is measured when settings do not say otherwise. Countries
# spanning several zones use the zone their national box office reports in by convention
# (US: Pacific, the studios' home; CA: Eastern; AU: Sydney; BR: São Paulo; RU: Moscow).
TERRITORY_ZONES: dict[str, str] = {
    "US": "America/Los_Angeles",
    "CA": "America/Toronto",
    "MX": "America/Mexico_City",
    "BR": "America/Sao_Paulo",
    "AR": "America/Argentina/Buenos_Aires",
    "GB": "Europe/London",
    "IE": "Europe/Dublin",
    "FR": "Europe/Paris",
    "DE": "Europe/Berlin",
    "ES": "Europe/Madrid",
    "IT": "Europe/Rome",
    "NL": "Europe/Amsterdam",
    "SE": "Europe/Stockholm",
    "PL": "Europe/Warsaw",
    "RU": "Europe/Moscow",
    "TR": "Europe/Istanbul",
    "IN": "Asia/Kolkata",
    "CN": "Asia/Shanghai",
    "HK": "Asia/Hong_Kong",
    "TW": "Asia/Taipei",
    "JP": "Asia/Tokyo",
    "KR": "Asia/Seoul",
    "SG": "Asia/Singapore",
    "AU": "Australia/Sydney",
    "NZ": "Pacific/Auckland",
    "ZA": "Africa/Johannesburg",
    "AE": "Asia/Dubai",
}


def territory_zones(settings: Settings | None = None) -> dict[str, str]:
    settings = settings or get_settings()
    return TERRITORY_ZONES | settings.boxoffice_territory_timezones


def territory_zone(territory: str, settings: Settings | None = None) -> str:
    """The IANA zone whose calendar day a territory reports by."""
    settings = settings or get_settings()
    return territory_zones(settings).get(territory.upper(), settings.boxoffice_default_timezone)


def local_day(at: datetime, territory: str, settings: Settings | None = None) -> date:
    return at.astimezone(ZoneInfo(territory_zone(territory, settings))).date()


@lru_cache(maxsize=4096)
def day_bounds(day: date, zone: str) -> tuple[datetime, datetime]:
    """[start, end) of a local calendar day in UTC (23 or 25 hours on DST change days)."""
    tz = ZoneInfo(zone)
    start = datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz).astimezone(UTC)
    return start, end


# --- views -------------------------------------------------------------------------------


def qualify_threshold_seconds(
    runtime_seconds: float | None, settings: Settings | None = None
) -> float:
    """Covered seconds that make a ticket's view qualified: the lesser of the fixed threshold
    and the runtime fraction (a 20-minute short qualifies at 5 minutes of covered content, a
    45-second film at 11.25 s)."""
    settings = settings or get_settings()
    fixed = settings.view_qualify_seconds
    if runtime_seconds is None or runtime_seconds <= 0:
        return fixed
    return min(fixed, runtime_seconds * settings.view_qualify_runtime_fraction)


# --- money -------------------------------------------------------------------------------


class Measure(StrEnum):
    """What one daily roll-up row counts. Money measures are in the row's currency."""

    tickets_sold = "tickets_sold"  # count of sale entries
    gross = "gross"  # sum of sale entries
    refunds = "refunds"  # sum of refund entries (negative)
    chargebacks = "chargebacks"  # sum of chargeback entries (negative)
    chargeback_reversals = "chargeback_reversals"  # sum of reversals (positive)
    fees = "fees"  # provider fees, in the row's fee_currency
    views_started = "views_started"
    qualified_views = "qualified_views"
    unique_viewers = "unique_viewers"  # distinct viewers who started a view that day


LEDGER_MEASURE: dict[LedgerKind, Measure] = {
    LedgerKind.sale: Measure.gross,
    LedgerKind.refund: Measure.refunds,
    LedgerKind.chargeback: Measure.chargebacks,
    LedgerKind.chargeback_reversal: Measure.chargeback_reversals,
}

NET_SALES_MEASURES = (
    Measure.gross,
    Measure.refunds,
    Measure.chargebacks,
    Measure.chargeback_reversals,
)


def convert_minor(
    amount_minor: int, *, rate_from: Decimal, rate_to: Decimal, from_currency: str, to_currency: str
) -> int:
    """Convert minor units through a common base (rates are units per EUR, as the ECB
    publishes them), in Decimal, rounding half-to-even once at the end."""
    if from_currency == to_currency:
        return amount_minor
    major = to_major(amount_minor, from_currency)
    converted = major / rate_from * rate_to
    return int(converted.scaleb(minor_exponent(to_currency)).to_integral_value(ROUND_HALF_EVEN))


def share_of(amount_minor: int, percent: Decimal) -> int:
    """``percent`` % of a minor-unit amount, rounded half-to-even to a minor unit."""
    return int((Decimal(amount_minor) * percent / 100).to_integral_value(ROUND_HALF_EVEN))
