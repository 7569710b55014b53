"""Minor units follow the payment provider's documented convention, in one place."""

from __future__ import annotations

from decimal import Decimal

import pytest

from boxoffice.definitions import convert_minor
from core.money import amount_step, display_digits, minor_exponent, to_major

# Stripe's "Supported currencies" page: zero-decimal and three-decimal currencies.
STRIPE_ZERO_DECIMAL = [
    "BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA",
    "PYG", "RWF", "UGX", "VND", "VUV", "XAF", "XOF", "XPF",
]  # fmt: skip
STRIPE_THREE_DECIMAL = ["BHD", "JOD", "KWD", "OMR", "TND"]


@pytest.mark.parametrize("currency", STRIPE_ZERO_DECIMAL)
def test_zero_decimal_currencies_count_major_units(currency: str) -> None:
    assert minor_exponent(currency) == 0
    assert minor_exponent(currency.lower()) == 0
    assert to_major(1000, currency) == Decimal(1000)


@pytest.mark.parametrize("currency", STRIPE_THREE_DECIMAL)
def test_three_decimal_currencies_charge_in_tens(currency: str) -> None:
    assert minor_exponent(currency) == 3
    assert amount_step(currency) == 10


@pytest.mark.parametrize(
    ("currency", "exponent", "step", "shown"),
    [
        ("USD", 2, 1, 2),
        ("EUR", 2, 1, 2),
        ("CNY", 2, 1, 2),
        # ISK: whole krónur, sent as two decimals (multiples of 100), shown without decimals.
        ("ISK", 2, 100, 0),
        # HUF and TWD: two-decimal amounts for the provider, whole units when shown.
        ("HUF", 2, 1, 0),
        ("TWD", 2, 1, 2),
        ("JPY", 0, 1, 0),
        ("KWD", 3, 10, 3),
    ],
)
def test_special_cases(currency: str, exponent: int, step: int, shown: int) -> None:
    assert (minor_exponent(currency), amount_step(currency), display_digits(currency)) == (
        exponent,
        step,
        shown,
    )


def test_a_gross_in_malagasy_ariary_converts_at_its_real_size() -> None:
    # 10,000 MGA at 5,000 MGA per EUR and 1.1 USD per EUR is 2.20 USD, not 0.022 USD.
    usd = convert_minor(
        10_000,
        rate_from=Decimal(5000),
        rate_to=Decimal("1.1"),
        from_currency="MGA",
        to_currency="USD",
    )
    assert usd == 220
