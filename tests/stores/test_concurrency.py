"""The same store transaction sent twenty times at once, by two accounts, through a real HTTP
server on PostgreSQL: one ticket, one sale, and the other account refused."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import uvicorn

from api.app import create_app
from catalog.models import Title
from tests.conftest import free_port
from tests.helpers import auth_header, create_user
from tests.payments.support import count, ledger
from tests.stores.conftest import Stores
from tests.stores.fake_stores import apple_transaction
from tickets.models import Ticket

pytestmark = [pytest.mark.postgres, pytest.mark.usefixtures("db")]
N = 20


@pytest.fixture
def server(stores: Stores) -> Iterator[str]:
    port = free_port()
    api = uvicorn.Server(
        uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=api.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not api.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert api.started
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        api.should_exit = True
        thread.join(timeout=15)


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
