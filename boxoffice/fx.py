"""FX reference rates: loaded by finance from an ECB-style CSV, used day by day.

ECB format: a header ``Date,USD,JPY,…`` and one row per day of units per 1 EUR; ``N/A`` or
empty cells mean "no rate that day". A missing rate is never filled in from another day:
the report flags it instead.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation

from sqlalchemy.orm import Session

from boxoffice import repository
from boxoffice.models import FxRate
from boxoffice.repository import upsert
from core.db import utcnow
from core.errors import InvalidInput
from core.outbox import enqueue


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
    now = utcnow()
    for day, currency, rate in rates:
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
    first, last = min(r[0] for r in rates), max(r[0] for r in rates)
    enqueue(session, "boxoffice.rollup.range", first=first.isoformat(), last=last.isoformat())
    session.flush()
    return FxLoad(len(rates), first, last, sorted({r[1] for r in rates}))


def rates_on(session: Session, day: date) -> dict[str, str]:
    return {r.currency: r.per_eur for r in repository.fx_rates_on(session, day)}
