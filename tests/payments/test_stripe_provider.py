"""The Stripe adapter, through the real stripe SDK over HTTP to the loopback fake."""

from __future__ import annotations

import pytest

from core.settings import get_settings
from payments.providers import IntentRequest, PaymentProviderError, StripeProvider
from tests.payments.conftest import Configure
from tests.payments.fake_stripe import FakeStripe


def _request(**overrides: object) -> IntentRequest:
    values: dict[str, object] = {
        "amount_minor": 1299,
        "currency": "USD",
        "customer_id": "",
        "metadata": {"ticket_id": "t1", "title_id": "x1", "territory": "US"},
        "idempotency_key": "pi-t1",
        "description": "ticket t1",
    }
    return IntentRequest(**(values | overrides))  # type: ignore[arg-type]


def test_payment_intent_create_retrieve_refund_and_fee(stripe_fake: FakeStripe) -> None:
    provider = StripeProvider(get_settings())
    customer = provider.create_customer(user_id="u1", email="ana@example.com")
    intent = provider.create_payment_intent(_request(customer_id=customer))

    assert intent.amount_minor == 1299
    assert intent.currency == "USD"
    assert intent.status == "requires_payment_method"
    stored = stripe_fake.intents[intent.id]
    assert stored["metadata"] == {"ticket_id": "t1", "title_id": "x1", "territory": "US"}
    assert stored["automatic_payment_methods"] == {"enabled": "true"}
    assert provider.client_secret(intent.id) == intent.client_secret
    assert provider.create_ephemeral_key(customer).startswith("ek_test_")

    confirmed = stripe_fake.handle(
        "POST", f"/v1/payment_intents/{intent.id}/confirm", {}, {}, _auth()
    )[1]
    fee = provider.fee_for(confirmed)
    assert fee is not None
    assert (fee.amount_minor, fee.currency) == (68, "USD")

    refund = provider.refund(intent.id, amount_minor=None, idempotency_key="refund-t1")
    assert (refund.amount_minor, refund.currency, refund.status) == (1299, "USD", "succeeded")
    assert provider.list_refunds(confirmed["latest_charge"]) == [refund]


def test_same_idempotency_key_returns_the_same_payment_intent(stripe_fake: FakeStripe) -> None:
    provider = StripeProvider(get_settings())
    customer = provider.create_customer(user_id="u1", email="ana@example.com")
    assert provider.create_customer(user_id="u1", email="ana@example.com") == customer

    first = provider.create_payment_intent(_request(customer_id=customer))
    again = provider.create_payment_intent(_request(customer_id=customer))
    assert again.id == first.id
    assert len(stripe_fake.intents) == 1

    with pytest.raises(PaymentProviderError) as caught:
        provider.create_payment_intent(_request(customer_id=customer, amount_minor=999))
    assert caught.value.code == "payment_idempotency_conflict"


def test_payment_methods_per_territory(stripe_fake: FakeStripe, configure: Configure) -> None:
    configure(payment_methods='{"CN": ["card", "alipay", "wechat_pay"]}')
    provider = StripeProvider(get_settings())
    customer = provider.create_customer(user_id="u2", email="li@example.com")
    methods = get_settings().payment_methods["CN"]
    intent = provider.create_payment_intent(
        _request(
            customer_id=customer,
            currency="CNY",
            amount_minor=3900,
            payment_method_types=methods,
            platform="ios",
            idempotency_key="pi-cn",
        )
    )
    stored = stripe_fake.intents[intent.id]
    assert stored["payment_method_types"] == ["card", "alipay", "wechat_pay"]
    assert stored["payment_method_options"] == {"wechat_pay": {"client": "ios"}}
    assert stored["automatic_payment_methods"] is None
    assert stored["currency"] == "cny"


def test_provider_outage_is_a_502_with_a_code(stripe_fake: FakeStripe) -> None:
    provider = StripeProvider(get_settings())
    stripe_fake.fail_next = 10  # more than the SDK's retries
    with pytest.raises(PaymentProviderError) as caught:
        provider.create_customer(user_id="u3", email="x@example.com")
    assert caught.value.status == 502


def _auth() -> dict[str, str]:
    from tests.payments.fake_stripe import API_KEY

    return {"Authorization": f"Bearer {API_KEY}"}
