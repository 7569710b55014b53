"""FX reference rates: fetched from the ECB in production (boxoffice/ecb.py), loaded by
finance from an ECB-style CSV anywhere, and looked up day by day with the carry-over rule.

ECB CSV format: a header ``Date,USD,JPY,…`` and one row per day of units per 1 EUR; ``N/A``
or empty cells mean "no rate that day".

**Carry-over**: the ECB publishes no rates on weekends and TARGET holidays, and publishes
each working day's around 16:00 CET. A day without its own rate for a currency uses the
latest rate of that currency at most ``fx_carry_days`` days older (:func:`carry_over`); the
lookup returns that rate's own date beside it, and reports list every day whose rate was
carried. Past that limit the rate is missing: never guessed, flagged by the report.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation

from sqlalchemy.orm import Session

from boxoffice import repository
from boxoffice.models import FxRate
from boxoffice.repository import upsert
from core.db import utcnow
from core.errors import InvalidInput
from core.outbox import enqueue
from core.settings import Settings, get_settings


@dataclass(frozen=True)
class FxLoad:
    rates: int
    first_day: date | None
    last_day: date | None
    currencies: list[str]


def parse_ecb_csv(text: str) -> list[tuple[date, str, Decimal]]:
    """Rates from an ECB-style CSV; refuses the whole file on the first bad cell."""
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    header = next(reader, None)
    if not header or header[0].strip().lower() != "date":
        raise InvalidInput("the first column must be 'Date' (ECB format)", code="fx_csv_invalid")
    currencies = [h.strip().upper() for h in header[1:]]
    for code in currencies:
        if code and (len(code) != 3 or not code.isalpha()):
            raise InvalidInput(f"column {code!r} is not an ISO 4217 code", code="fx_csv_invalid")
    rates: list[tuple[date, str, Decimal]] = []
    for line, row in enumerate(reader, start=2):
        if not row or not row[0].strip():
            continue
        try:
            day = date.fromisoformat(row[0].strip())
        except ValueError:
            raise InvalidInput(
                f"line {line}: {row[0]!r} is not a YYYY-MM-DD date", code="fx_csv_invalid"
            ) from None
        for code, cell in zip(currencies, row[1:], strict=False):
            value = cell.strip()
            if not code or not value or value.upper() == "N/A":
                continue
            try:
                rate = Decimal(value)
            except InvalidOperation:
                raise InvalidInput(
                    f"line {line}, {code}: {value!r} is not a number", code="fx_csv_invalid"
                ) from None
            if not rate.is_finite() or rate <= 0:
                raise InvalidInput(
                    f"line {line}, {code}: a rate must be positive", code="fx_csv_invalid"
                )
            rates.append((day, code, rate))
    return rates


def load_rates(session: Session, text: str, *, source: str) -> FxLoad:
    """Store the file's rates (a reloaded day replaces its earlier rate: a correction) and
    enqueue the re-roll of the days they cover, whose converted figures depend on them."""
    rates = parse_ecb_csv(text)
    if not rates:
        raise InvalidInput("the file holds no rates", code="fx_csv_empty")
    return store_rates(session, rates, source=source)


def store_rates(
    session: Session,
    rates: list[tuple[date, str, Decimal]],
    *,
    source: str,
    settings: Settings | None = None,
) -> FxLoad:
    """Upsert ``rates`` and enqueue the re-roll of the days whose conversion may change: the
    rates' days and the days they are carried over to. Rates already stored with the same
    value change nothing and enqueue nothing, so fetching the same file again is free."""
    settings = settings or get_settings()
    if not rates:
        return FxLoad(0, None, None, [])
    first, last = min(r[0] for r in rates), max(r[0] for r in rates)
    held = {(d, c): Decimal(v) for d, c, v in repository.rates_between(session, first, last)}
    changed = [r for r in rates if held.get((r[0], r[1])) != r[2]]
    now = utcnow()
    for day, currency, rate in changed:
        upsert(
            session,
            FxRate,
            {
                "day": day,
                "currency": currency,
                "per_eur": str(rate),
                "source": source[:200],
                "loaded_at": now,
            },
            ["day", "currency"],
            {"per_eur": str(rate), "source": source[:200], "loaded_at": now},
        )
    if changed:
        reroll_from = min(r[0] for r in changed)
        reroll_to = max(r[0] for r in changed) + timedelta(days=settings.fx_carry_days)
        enqueue(
            session,
            "boxoffice.rollup.range",
            first=reroll_from.isoformat(),
            last=reroll_to.isoformat(),
        )
    session.flush()
    return FxLoad(len(rates), first, last, sorted({r[1] for r in rates}))


def rates_on(session: Session, day: date) -> dict[str, str]:
    """The rates stored for ``day`` itself (no carry-over): what was loaded or fetched."""
    return {r.currency: r.per_eur for r in repository.fx_rates_on(session, day)}


@dataclass(frozen=True)
class RateUsed:
    """The rate applied to a day: units per EUR, and the day it was published for."""

    per_eur: Decimal
    rate_date: date


def carry_over(
    published: Mapping[date, Mapping[str, Decimal]], day: date, currency: str, carry_days: int
) -> RateUsed | None:
    """The rule, on plain values: ``day``'s own rate, else the latest one at most
    ``carry_days`` days before it, else None. EUR is 1 on every day."""
    if currency == "EUR":
        return RateUsed(Decimal(1), day)
    for back in range(carry_days + 1):
        earlier = day - timedelta(days=back)
        rate = published.get(earlier, {}).get(currency)
        if rate is not None:
            return RateUsed(rate, earlier)
    return None


class RateBook:
    """The stored rates of a span of days, answering :func:`carry_over` for any day in it."""

    def __init__(self, session: Session, first: date, last: date, settings: Settings) -> None:
        self.carry_days = settings.fx_carry_days
        self.published: dict[date, dict[str, Decimal]] = {}
        for day, currency, per_eur in repository.rates_between(
            session, first - timedelta(days=self.carry_days), last
        ):
            self.published.setdefault(day, {})[currency] = Decimal(per_eur)

    def rate(self, day: date, currency: str) -> RateUsed | None:
        return carry_over(self.published, day, currency, self.carry_days)

    def currencies(self) -> set[str]:
        return {c for rates in self.published.values() for c in rates} | {"EUR"}


def rate_on(
    session: Session, currency: str, day: date, settings: Settings | None = None
) -> tuple[Decimal, date] | None:
    """(units of ``currency`` per EUR, the rate's own date) applied to ``day``, with the
    carry-over rule; None when no rate is close enough."""
    used = RateBook(session, day, day, settings or get_settings()).rate(day, currency.upper())
    return None if used is None else (used.per_eur, used.rate_date)


def rates_for_day(
    session: Session, day: date, settings: Settings | None = None
) -> dict[str, RateUsed]:
    """Every currency's rate applied to ``day`` (carry-over included); EUR always."""
    book = RateBook(session, day, day, settings or get_settings())
    found = {c: book.rate(day, c) for c in book.currencies()}
    return {c: r for c, r in found.items() if r is not None}
