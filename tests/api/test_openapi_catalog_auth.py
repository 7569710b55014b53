"""The real server (uvicorn over TCP) resolves the client's country the same way the tests'
client does. (The documentation rules of every route: tests/api/test_contract.py.)"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn

from api.app import create_app
from tests.conftest import Configure, free_port
from tests.helpers import IP_IN, create_licensed_title, create_studio


@pytest.fixture
def live_server(db: None, configure: Configure) -> Iterator[str]:
    # The server's own loopback peer is our "proxy" here.
    configure(trusted_proxies="127.0.0.0/8")
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_config=None)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_country_through_a_real_server_behind_a_trusted_proxy(live_server: str) -> None:
    create_licensed_title(create_studio().id)
    with httpx.Client(base_url=live_server, timeout=10) as http:
        direct = http.get("/v1/titles").json()
        assert (direct["country"], direct["total"]) == (None, 0)  # loopback has no country
        forwarded = http.get("/v1/titles", headers={"X-Forwarded-For": IP_IN["CA"]}).json()
        assert forwarded["country"] == "CA"
        assert forwarded["items"][0]["price"]["currency"] == "CAD"
