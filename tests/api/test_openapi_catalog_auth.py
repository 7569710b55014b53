"""The real server (uvicorn over TCP) resolves the client's country the same way the tests'
client does. (The documentation rules of every route: tests/api/test_contract.py.)"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from api.app import create_app
from tests.conftest import Configure
from tests.helpers import IP_IN, create_licensed_title, create_studio, served_on_loopback


@pytest.fixture
def live_server(db: None, configure: Configure) -> Iterator[str]:
    # The server's own loopback peer is our "proxy" here.
    configure(trusted_proxies="127.0.0.0/8")
    with served_on_loopback(create_app()) as port:
        yield f"http://127.0.0.1:{port}"


def test_country_through_a_real_server_behind_a_trusted_proxy(live_server: str) -> None:
    create_licensed_title(create_studio().id)
    with httpx.Client(base_url=live_server, timeout=10) as http:
        direct = http.get("/v1/titles").json()
        assert (direct["country"], direct["total"]) == (None, 0)  # loopback has no country
        forwarded = http.get("/v1/titles", headers={"X-Forwarded-For": IP_IN["CA"]}).json()
        assert forwarded["country"] == "CA"
        assert forwarded["items"][0]["price"]["currency"] == "CAD"
