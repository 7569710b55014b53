"""Currencies: how many minor units a major unit has, in one place.

Every amount in Pocket Cinema is an integer count of *minor units* exactly as the payment
provider's API counts them (Stripe's ``amount``; the sandbox follows the same convention),
so a ledger row, a PaymentIntent and a refund never need converting. That convention is
ISO 4217's exponent with documented exceptions, listed here and nowhere else:

* zero-decimal currencies: the amount is in major units (``1000`` JPY is ¥1,000), including
  MGA and UGX, which ISO 4217 gives two decimals;
* three-decimal currencies (BHD, JOD, KWD, OMR, TND): thousandths, and the last digit must
  be 0 (the provider charges in tens);
* ISK: zero-decimal in practice, but still sent as two-decimal for backward compatibility,
  so the amount is a multiple of 100;
* every other currency: two decimals (HUF and TWD included: two-decimal amounts, whole-unit
  payouts).

How an amount is *shown* (``¥1,000``, ``Ft 1 500``) is another question, answered by CLDR's
currency digits through Babel (:func:`display_digits`).
"""

from __future__ import annotations

from decimal import Decimal

from babel.numbers import get_currency_precision

# Stripe: "Supported currencies" → zero-decimal, three-decimal and special cases.
ZERO_DECIMAL = frozenset(
    [
        "BIF",
        "CLP",
        "DJF",
        "GNF",
        "JPY",
        "KMF",
        "KRW",
        "MGA",
        "PYG",
        "RWF",
        "UGX",
        "VND",
        "VUV",
        "XAF",
        "XOF",
        "XPF",
    ]
)
THREE_DECIMAL = frozenset(["BHD", "JOD", "KWD", "OMR", "TND"])
# Sent as two decimals although the currency has no minor unit in use: the amount must be
# a whole number of major units.
WHOLE_UNITS_AS_TWO_DECIMAL = frozenset({"ISK"})


def minor_exponent(currency: str) -> int:
    """Decimal places of the provider's minor unit: 0 for JPY, 2 for USD, 3 for KWD."""
    code = currency.upper()
    if code in ZERO_DECIMAL:
        return 0
    if code in THREE_DECIMAL:
        return 3
    return 2


def amount_step(currency: str) -> int:
    """The smallest chargeable step in minor units (ISK: 100, three-decimal: 10, else 1)."""
    code = currency.upper()
    if code in WHOLE_UNITS_AS_TWO_DECIMAL:
        return 100
    if code in THREE_DECIMAL:
        return 10
    return 1


def to_major(amount_minor: int, currency: str) -> Decimal:
    """Exact major units: ``to_major(1299, "USD") == Decimal("12.99")``."""
    return Decimal(amount_minor).scaleb(-minor_exponent(currency))


def display_digits(currency: str) -> int:
    """Digits to show for an amount (CLDR): 0 for JPY, HUF and ISK, 2 for USD, 3 for KWD."""
    return int(get_currency_precision(currency.upper()))
