"""Reconciliation against Stripe: the real stripe SDK lists balance transactions from the
loopback fake (tests/payments/fake_stripe.py); the ledger is filled by signed webhooks
through POST /v1/webhooks/stripe, as in production. Assertions are what finance sees: the
differences reported for one UTC day."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from accounts.models import Role, User
from boxoffice.reconciliation import reconcile
from catalog.models import Title
from core.db import unit_of_work
from tests.helpers import auth_header, create_licensed_title, create_studio, create_user
from tests.payments.conftest import Configure
from tests.payments.fake_stripe import API_KEY, FakeStripe
from tests.payments.support import buy, deliver, ticket

pytestmark = pytest.mark.usefixtures("db")

AUTH = {"Authorization": f"Bearer {API_KEY}"}
DAY = date(2026, 3, 10)
NOON = datetime(2026, 3, 10, 12, tzinfo=UTC)
PRICE, FEE = 1299, 68  # the fake's card fee: 2.9 % + 30


@pytest.fixture
def film() -> Title:
    return create_licensed_title(create_studio().id)


@pytest.fixture
def finance() -> User:
    return create_user("finance@example.com", Role.finance)


class Shop:
    """Money moving at Stripe on chosen instants, and its webhooks delivered (or not)."""

    def __init__(self, client: TestClient, fake: FakeStripe, film: Title) -> None:
        self.client, self.fake, self.film = client, fake, film
        self.viewers = 0

    def purchase(self) -> dict[str, Any]:
        self.viewers += 1
        response = buy(self.client, create_user(f"v{self.viewers}@example.com"), self.film.id)
        assert response.status_code == 201, response.text
        bought: dict[str, Any] = response.json()
        return bought

    def charge(self, at: datetime) -> tuple[dict[str, Any], dict[str, Any]]:
        """A purchase paid at Stripe at ``at``: (purchase answer, the succeeded intent)."""
        bought = self.purchase()
        intent = self.fake.handle(
            "POST",
            f"/v1/payment_intents/{bought['payment_intent_id']}/confirm",
            {},
            {"payment_method": "pm_card_visa"},
            AUTH,
        )[1]
        assert intent["status"] == "succeeded"
        self._settle(intent["latest_charge"], at)
        return bought, intent

    def refund(self, intent: dict[str, Any], at: datetime, amount: int | None = None) -> Any:
        params = {"payment_intent": intent["id"]} | ({"amount": str(amount)} if amount else {})
        refund = self.fake.handle("POST", "/v1/refunds", {}, params, AUTH)[1]
        self._settle(refund["id"], at)
        return refund

    def notify(self, type_: str, obj: dict[str, Any], at: datetime) -> None:
        """Deliver a signed webhook for an event that happened at ``at``."""
        body = json.loads(self.fake.event(type_, obj))
        body["created"] = int(at.timestamp())
        response = deliver(self.client, json.dumps(body).encode())
        assert response.json()["status"] == "handled", response.text

    def sale(self, at: datetime) -> tuple[dict[str, Any], dict[str, Any]]:
        """Charged and its webhook delivered: in both books."""
        bought, intent = self.charge(at)
        self.notify("payment_intent.succeeded", intent, at)
        return bought, intent

    def adjustment(self, dispute_id: str, amount: int, at: datetime) -> None:
        """A dispute's balance movement (the fake has no dispute API): Stripe books it as an
        ``adjustment`` whose source is the dispute, with its dispute fee."""
        txn_id = f"txn_adj_{len(self.fake.balance):04d}"
        self.fake.balance[txn_id] = {
            "id": txn_id,
            "object": "balance_transaction",
            "amount": amount,
            "currency": "usd",
            "fee": 1500 if amount < 0 else 0,
            "net": amount - (1500 if amount < 0 else 0),
            "source": dispute_id,
            "type": "adjustment",
            "created": int(at.timestamp()),
        }

    def txn(self, source: str) -> dict[str, Any]:
        return next(b for b in self.fake.balance.values() if b["source"] == source)

    def _settle(self, source: str, at: datetime) -> None:
        self.txn(source)["created"] = int(at.timestamp())


@pytest.fixture
def shop(client: TestClient, stripe_fake: FakeStripe, film: Title) -> Shop:
    return Shop(client, stripe_fake, film)


def _reconcile(day: date = DAY) -> dict[str, Any]:
    with unit_of_work() as session:
        result = reconcile(session, day, "stripe")
    return {
        "matched": result.matched,
        "ledger_entries": result.ledger_entries,
        "provider_transactions": result.provider_transactions,
        "differences": [
            {
                "problem": d.problem,
                "reference": d.reference,
                "kind": d.kind,
                "ledger": None if d.ledger is None else _money(d.ledger),
                "provider": None if d.provider is None else _money(d.provider),
            }
            for d in result.differences
        ],
    }


def _money(m: Any) -> tuple[int, str, int | None]:
    return (m.amount_minor, m.currency, m.fee_minor)


def test_a_day_where_ledger_and_stripe_agree_has_no_differences(shop: Shop) -> None:
    shop.sale(NOON)
    _, returned = shop.sale(NOON + timedelta(minutes=5))
    refund = shop.refund(returned, NOON + timedelta(hours=2))
    shop.notify("refund.created", refund, NOON + timedelta(hours=2))
    # A dispute lost then won: Stripe moves the money as two adjustments on the dispute.
    _, disputed = shop.sale(NOON + timedelta(minutes=10))
    dispute = {
        "id": "dp_" + disputed["id"],
        "object": "dispute",
        "amount": PRICE,
        "currency": "usd",
        "charge": disputed["latest_charge"],
        "payment_intent": disputed["id"],
        "status": "needs_response",
    }
    for n, (event, amount) in enumerate(
        [("charge.dispute.funds_withdrawn", -PRICE), ("charge.dispute.funds_reinstated", PRICE)]
    ):
        at = NOON + timedelta(hours=4 + n)
        shop.adjustment(dispute["id"], amount, at)
        shop.notify(event, dispute | {"status": "won" if n else "needs_response"}, at)
    # Money on neighbouring UTC days belongs to those days, not this one.
    shop.sale(datetime(2026, 3, 9, 23, 59, 59, tzinfo=UTC))
    shop.sale(datetime(2026, 3, 11, 0, 0, 0, tzinfo=UTC))
    # Balance movements that are not ticket money are not compared.
    shop.fake.balance["txn_payout"] = {
        "id": "txn_payout",
        "object": "balance_transaction",
        "amount": -5000,
        "currency": "usd",
        "fee": 0,
        "net": -5000,
        "source": "po_1",
        "type": "payout",
        "created": int((NOON + timedelta(hours=3)).timestamp()),
    }

    got = _reconcile()

    assert got == {
        "matched": 6,
        "ledger_entries": 6,
        "provider_transactions": 6,
        "differences": [],
    }


def test_every_page_of_balance_transactions_is_read_with_its_filters(shop: Shop) -> None:
    # More than one page (100) on the day: the sales are the oldest, so on the last page,
    # which must still be restricted to the day and still name each charge's PaymentIntent.
    shop.sale(NOON)
    shop.sale(NOON + timedelta(minutes=1))
    shop.sale(datetime(2026, 3, 11, 8, tzinfo=UTC))  # another day's sale, in its ledger
    for n in range(120):
        txn_id = f"txn_fee_{n:03d}"
        shop.fake.balance[txn_id] = {
            "id": txn_id,
            "object": "balance_transaction",
            "amount": -1,
            "currency": "usd",
            "fee": 0,
            "net": -1,
            "source": f"fee_{n}",
            "type": "stripe_fee",
            "created": int((NOON + timedelta(hours=1, seconds=n)).timestamp()),
        }

    got = _reconcile()

    assert (got["matched"], got["differences"]) == (2, [])
    assert shop.fake.count("GET", "/v1/balance_transactions") >= 2


def test_a_charge_whose_webhook_never_arrived_is_missing_in_the_ledger(shop: Shop) -> None:
    shop.sale(NOON)
    bought, lost = shop.charge(NOON + timedelta(hours=1))  # paid at Stripe; no webhook
    refund = shop.refund(lost, NOON + timedelta(hours=2), amount=300)  # nor for its refund

    got = _reconcile()

    assert got["matched"] == 1
    assert sorted(got["differences"], key=lambda d: d["kind"]) == [
        {
            "problem": "missing_in_ledger",
            "reference": refund["id"],
            "kind": "refund",
            "ledger": None,
            "provider": (-300, "USD", 0),
        },
        {
            "problem": "missing_in_ledger",
            "reference": bought["payment_intent_id"],
            "kind": "sale",
            "ledger": None,
            "provider": (PRICE, "USD", FEE),
        },
    ]
    assert ticket(bought["ticket"]["id"]).state == "pending"  # nothing corrected


def test_ledger_entries_stripe_does_not_confirm_are_reported(shop: Shop) -> None:
    _, unsettled = shop.sale(NOON)
    _, short = shop.sale(NOON + timedelta(minutes=1))
    _, costly = shop.sale(NOON + timedelta(minutes=2))
    _, fine = shop.sale(NOON + timedelta(minutes=3))
    refund = shop.refund(fine, NOON + timedelta(hours=1))
    shop.notify("refund.created", refund, NOON + timedelta(hours=1))
    # Stripe's books, after the webhooks were recorded: one charge has no balance
    # transaction, one settled for less, one carries a higher fee, one refund is gone.
    unsettled_txn = shop.txn(unsettled["latest_charge"])
    del shop.fake.balance[unsettled_txn["id"]]
    shop.txn(short["latest_charge"])["amount"] = PRICE - 100
    shop.txn(costly["latest_charge"])["fee"] = FEE + 7
    del shop.fake.balance[shop.txn(refund["id"])["id"]]

    got = _reconcile()

    assert got["matched"] == 1  # the refunded sale itself
    assert {d["reference"]: d for d in got["differences"]} == {
        unsettled["id"]: {
            "problem": "missing_at_provider",
            "reference": unsettled["id"],
            "kind": "sale",
            "ledger": (PRICE, "USD", FEE),
            "provider": None,
        },
        short["id"]: {
            "problem": "amount_differs",
            "reference": short["id"],
            "kind": "sale",
            "ledger": (PRICE, "USD", FEE),
            "provider": (PRICE - 100, "USD", FEE),
        },
        costly["id"]: {
            "problem": "fee_differs",
            "reference": costly["id"],
            "kind": "sale",
            "ledger": (PRICE, "USD", FEE),
            "provider": (PRICE, "USD", FEE + 7),
        },
        refund["id"]: {
            "problem": "missing_at_provider",
            "reference": refund["id"],
            "kind": "refund",
            "ledger": (-PRICE, "USD", None),
            "provider": None,
        },
    }


def test_a_sale_settled_in_another_currency_is_reported(
    client: TestClient, stripe_fake: FakeStripe, film: Title, configure: Configure
) -> None:
    configure(geo_fallback_country="CA")  # priced 15.99 CAD; the fake settles in USD
    shop = Shop(client, stripe_fake, film)
    _, intent = shop.sale(NOON)

    got = _reconcile()

    assert got["matched"] == 0
    assert got["differences"] == [
        {
            "problem": "currency_differs",
            "reference": intent["id"],
            "kind": "sale",
            "ledger": (1599, "CAD", 76),
            "provider": (1599, "USD", 76),
        }
    ]


def test_finance_route_lists_the_differences_and_viewers_are_refused(
    shop: Shop, finance: User, client: TestClient
) -> None:
    shop.sale(NOON)
    bought, _ = shop.charge(NOON + timedelta(hours=1))  # webhook never delivered
    url = f"/v1/finance/reconciliation/{DAY.isoformat()}?provider=stripe"

    answer = client.get(url, headers=auth_header(finance))

    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/json"
    body = answer.json()
    assert (body["day"], body["provider"], body["matched"]) == ("2026-03-10", "stripe", 1)
    assert [
        (d["problem"], d["reference"], d["kind"], d["ledger"], d["provider"]["amount_minor"])
        for d in body["differences"]
    ] == [("missing_in_ledger", bought["payment_intent_id"], "sale", None, PRICE)]
    assert body["differences"][0]["provider"]["currency"] == "USD"
    assert body["differences"][0]["provider"]["fee_minor"] == FEE
    # The same differences as the service reports.
    assert [(d["problem"], d["reference"]) for d in body["differences"]] == [
        (d["problem"], d["reference"]) for d in _reconcile()["differences"]
    ]

    viewer = create_user("viewer@example.com")
    refused = client.get(url, headers=auth_header(viewer))
    assert refused.status_code == 403
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["status"] == 403


def test_stripe_unavailable_is_a_502_problem_not_an_empty_day(
    shop: Shop, finance: User, client: TestClient
) -> None:
    shop.sale(NOON)
    shop.fake.fail_next = 10  # more than the SDK's retries

    answer = client.get(
        f"/v1/finance/reconciliation/{DAY.isoformat()}?provider=stripe",
        headers=auth_header(finance),
    )

    assert answer.status_code == 502
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["code"] == "reconciliation_provider_error"
