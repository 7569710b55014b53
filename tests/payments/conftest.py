"""Fixtures for payments and tickets: settings switched per test, and the fake Stripe."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import Configure, configure
from tests.payments import fake_stripe
from tests.payments.fake_stripe import FakeStripe

__all__ = ["Configure", "configure"]


@pytest.fixture(autouse=True)
def _viewer_in_us(configure: Configure) -> None:
    # Test clients connect from loopback, which has no country; the fallback places them.
    configure(geo_fallback_country="US")


@pytest.fixture(scope="session")
def _stripe_server() -> Iterator[tuple[FakeStripe, str]]:
    with fake_stripe.running() as server:
        yield server


@pytest.fixture
def stripe_fake(_stripe_server: tuple[FakeStripe, str], configure: Configure) -> FakeStripe:
    """Stripe as the provider, its SDK pointed at the loopback fake."""
    fake, url = _stripe_server
    fake.reset()
    configure(
        payment_provider="stripe",
        stripe_secret_key=fake_stripe.API_KEY,
        stripe_publishable_key=fake_stripe.PUBLISHABLE_KEY,
        stripe_webhook_secret=fake_stripe.WEBHOOK_SECRET,
        stripe_api_base=url,
    )
    return fake
