"""The ECB reference rates, fetched by a periodic job (``boxoffice.fx.fetch``).

The daily file (``fx_ecb_daily_url``) holds the latest working day's rates; the 90-day file
(``fx_ecb_history_url``) the same format for every working day of the last 90, used to fill
gaps: the first run, or a run after days without a successful fetch. Both go through the
guarded client (core/outbound.py). A failure -- network, HTTP status, a body that is not
the ECB's XML -- is never silent: it is logged as an error, recorded on the ``fx_fetch`` row
(``/metrics`` exports the age of the last success and the failures since; an alert fires
when the age passes ``fx_stale_after_hours``), and reports warn while rates are stale. The
rates already stored stay as they are; the next run tries again.
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation

import httpx
from sqlalchemy.orm import Session

from boxoffice import fx, repository
from boxoffice.models import FxFetch
from core.db import utcnow
from core.outbound import OutboundRefused, UnsafeUrl, send
from core.settings import Settings, get_settings

log = logging.getLogger(__name__)

SOURCE = "ecb"
_NS = "{http://www.ecb.int/vocabulary/2002-08-01/eurofxref}"
# The 90-day file is about 100 kB; anything far larger is not the ECB's file.
MAX_BYTES = 2 * 1024 * 1024


class FeedInvalid(ValueError):
    """The answer is not the ECB's reference-rate XML."""


def parse_ecb_xml(body: bytes) -> list[tuple[date, str, Decimal]]:
    """(day, currency, units per EUR) from the ECB's eurofxref XML (daily or history: a
    ``Cube time=…`` per day holding ``Cube currency=… rate=…``). Raises FeedInvalid."""
    # The ECB's file has no DTD; refusing one rules out entity expansion attacks outright.
    if b"<!DOCTYPE" in body.upper() or b"<!ENTITY" in body.upper():
        raise FeedInvalid("the XML declares a DTD or entities; the ECB's file has none")
    try:
        root = ET.fromstring(body)  # noqa: S314 - no DTD (checked above), size capped
    except ET.ParseError as exc:
        raise FeedInvalid(f"not well-formed XML: {exc}") from None
    rates: list[tuple[date, str, Decimal]] = []
    days = 0
    for cube in root.iter(f"{_NS}Cube"):
        when = cube.get("time")
        if when is None:
            continue
        try:
            day = date.fromisoformat(when)
        except ValueError:
            raise FeedInvalid(f"{when!r} is not a YYYY-MM-DD date") from None
        days += 1
        for item in cube.findall(f"{_NS}Cube"):
            code, value = (item.get("currency") or "").upper(), item.get("rate") or ""
            if len(code) != 3 or not code.isalpha():
                raise FeedInvalid(f"{day}: {code!r} is not an ISO 4217 code")
            try:
                rate = Decimal(value)
            except InvalidOperation:
                raise FeedInvalid(f"{day}, {code}: {value!r} is not a number") from None
            if not rate.is_finite() or rate <= 0:
                raise FeedInvalid(f"{day}, {code}: a rate must be positive")
            rates.append((day, code, rate))
    if not days or not rates:
        raise FeedInvalid("no Cube time=… element with rates: not the ECB reference-rate file")
    return rates


def download(url: str, settings: Settings) -> list[tuple[date, str, Decimal]]:
    """One file's rates. Raises FeedInvalid, or the guarded client's errors."""
    reply = send("GET", url, settings=settings, max_bytes=MAX_BYTES)
    if reply.status != 200:
        raise FeedInvalid(f"{url} answered HTTP {reply.status}")
    if reply.truncated:
        raise FeedInvalid(f"{url} answered more than {MAX_BYTES} bytes")
    return parse_ecb_xml(reply.body)


@dataclass(frozen=True)
class FetchResult:
    ok: bool
    rates: int  # rates in the files read
    latest_day: date | None
    backfilled: bool
    error: str | None = None


def _gap_has_weekday(latest: date | None, newest: date) -> bool:
    """Whether working days may be missing between the latest stored rate and ``newest``."""
    if latest is None:
        return True
    day = latest + timedelta(days=1)
    while day < newest:
        if day.weekday() < 5:
            return True
        day += timedelta(days=1)
    return False


def fetch_rates(
    session: Session, settings: Settings | None = None, now: datetime | None = None
) -> FetchResult:
    """Fetch the daily file (and the 90-day file when a gap needs filling), store what
    changed, and record the outcome on the ``fx_fetch`` row in the caller's transaction.
    A failure is logged as an error and recorded; it does not raise, so the record commits."""
    settings = settings or get_settings()
    now = now or utcnow()
    state = repository.get_fx_fetch(session, SOURCE)
    if state is None:
        state = FxFetch(source=SOURCE, failures=0)
        session.add(state)
    try:
        rates = download(settings.fx_ecb_daily_url, settings)
        newest = max(r[0] for r in rates)
        latest = repository.latest_rate_day(session)
        backfill = state.backfilled_for != newest and _gap_has_weekday(latest, newest)
        if backfill:
            rates = download(settings.fx_ecb_history_url, settings) + rates
    except (FeedInvalid, httpx.HTTPError, OutboundRefused, UnsafeUrl, OSError) as exc:
        message = getattr(exc, "detail", None) or str(exc) or type(exc).__name__
        state.last_failure_at = now
        state.last_error = message[:500]
        state.failures = (state.failures or 0) + 1
        session.flush()
        log.error(
            "ECB FX fetch failed: %s",
            message,
            extra={"failures": state.failures, "last_success_at": str(state.last_success_at)},
        )
        return FetchResult(False, 0, state.latest_rate_day, False, message)
    fx.store_rates(session, rates, source=SOURCE, settings=settings)
    state.last_success_at = now
    state.failures = 0
    state.latest_rate_day = max(newest, state.latest_rate_day or newest)
    if backfill:
        state.backfilled_for = newest
    session.flush()
    log.info("ECB FX rates fetched", extra={"rates": len(rates), "latest_day": str(newest)})
    return FetchResult(True, len(rates), newest, backfill)


def fetch_status(session: Session) -> FxFetch | None:
    return repository.get_fx_fetch(session, SOURCE)
