"""Races on PostgreSQL through a real HTTP server: the same store transaction sent twenty
times at once by two accounts (one ticket, one sale, the other account refused), and a
refund that arrives while the purchase is being claimed."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlalchemy import select, text

from api.app import create_app
from catalog.models import Title
from core.db import unit_of_work
from payments.stores import apple_store
from tests.helpers import auth_header, create_user, served_on_loopback
from tests.payments.support import count, ledger
from tests.stores.conftest import Stores
from tests.stores.fake_stores import apple_notification, apple_transaction, now_ms
from tickets import store_purchases
from tickets.models import Ticket, TicketState

pytestmark = [pytest.mark.postgres, pytest.mark.usefixtures("db")]
N = 20


@pytest.fixture
def server(stores: Stores) -> Iterator[str]:
    with served_on_loopback(create_app()) as port:
        yield f"http://127.0.0.1:{port}"


def test_twenty_concurrent_claims_of_one_transaction_make_one_ticket(
    server: str, stores: Stores, film: Title
) -> None:
    ana, eve = create_user("ana@example.com"), create_user("eve@example.com")
    signed = stores.chain.sign(apple_transaction("2000000000000099"))
    barrier = threading.Barrier(N)

    def one(n: int) -> tuple[str, int, str | None]:
        who = ana if n % 2 == 0 else eve
        with httpx.Client(timeout=60) as http:
            barrier.wait()
            answer = http.post(
                f"{server}/v1/store-purchases/apple",
                json={"signed_transaction": signed},
                headers=auth_header(who),
            )
        body = answer.json()
        return who.email, answer.status_code, body.get("code") or body["ticket"]["id"]

    with ThreadPoolExecutor(N) as pool:
        results = list(pool.map(one, range(N)))

    statuses = Counter(status for _, status, _ in results)
    assert statuses[201] == 1, results
    winner = next(email for email, status, _ in results if status == 201)
    # Every request of the winner's account gets the ticket; every one of the other's is refused.
    assert all(status in (200, 201) for email, status, _ in results if email == winner)
    assert all(
        (status, code) == (409, "store_purchase_claimed")
        for email, status, code in results
        if email != winner
    )
    assert len({ref for email, _, ref in results if email == winner}) == 1
    assert count(Ticket) == 1
    assert [kind for kind, *_ in ledger()] == ["sale"]


def test_a_refund_arriving_while_the_purchase_is_claimed_is_not_lost(
    server: str, stores: Stores, film: Title
) -> None:
    """The claim's transaction is still open when Apple's REFUND arrives: the notification
    waits for it (the transaction's lock), then finds the ticket and refunds it. Without the
    lock each would miss the other's uncommitted row: an active ticket for refunded money."""
    ana = create_user("ana@example.com")
    kept = stores.chain.sign(apple_transaction("2000000000000098"))
    refunded = stores.chain.sign(apple_transaction("2000000000000098", revoked_ms=now_ms()))
    claimed, release = threading.Event(), threading.Event()

    def claim_and_hold() -> None:
        purchase = apple_store().verify_transaction(kept)
        with unit_of_work() as session:
            store_purchases.claim(session, viewer_id=ana.id, purchase=purchase)
            claimed.set()
            release.wait(30)

    holder = threading.Thread(target=claim_and_hold)
    holder.start()
    assert claimed.wait(30)
    with ThreadPoolExecutor(1) as pool:
        notified = pool.submit(
            httpx.post,
            f"{server}/v1/webhooks/app-store",
            content=apple_notification(stores.chain, "REFUND", refunded),
            headers={"Content-Type": "application/json"},
            timeout=60,
        )
        # Until the notification is either answered or waiting for the claim's lock.
        deadline = time.monotonic() + 30
        while not notified.done() and not _waiting_on_advisory_lock():
            assert time.monotonic() < deadline
            time.sleep(0.05)
        waited = not notified.done()  # held on the claim's lock, not answered "ignored"
        release.set()
        holder.join(30)
        answer = notified.result(60)

    assert waited
    assert answer.json()["status"] == "handled", answer.text
    assert [kind for kind, *_ in ledger()] == ["sale", "refund"]
    with unit_of_work() as session:
        assert session.scalars(select(Ticket.state)).one() is TicketState.refunded


def _waiting_on_advisory_lock() -> bool:
    with unit_of_work() as session:
        return bool(
            session.scalar(
                text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
            )
        )
