"""Accounts under attack: password spraying, aimed lockouts, forged client addresses,
sign-up floods, weak passwords and account enumeration, each tried as an attacker would."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from core import ratelimit
from core.settings import get_settings, reset_settings_cache
from tests import helpers
from tests.conftest import REDIS_URL, port_open, service_unavailable
from tests.helpers import client_from

PASSWORD = "correct horse battery"
ATTACKER = "8.8.8.8"
OWNER = "24.48.0.1"


@pytest.fixture
def limits(monkeypatch: pytest.MonkeyPatch, db: None) -> Iterator[pytest.MonkeyPatch]:
    """Small limits, so an attack needs a handful of requests instead of hundreds."""
    monkeypatch.setenv("POCKETCINEMA_LOGIN_IP_LIMIT", "8/minute")
    monkeypatch.setenv("POCKETCINEMA_LOGIN_ACCOUNT_LIMIT", "6/hour")
    monkeypatch.setenv("POCKETCINEMA_LOGIN_MAX_FAILURES", "3")
    reset_settings_cache()
    yield monkeypatch
    monkeypatch.undo()
    reset_settings_cache()


def sign_up(client: TestClient, email: str, password: str = PASSWORD) -> Any:
    return client.post("/v1/auth/signup", json={"email": email, "password": password})


def signed_up(client: TestClient, email: str, password: str = PASSWORD) -> None:
    """Signed up and confirmed through the mailed code (ready to sign in)."""
    helpers.sign_up(client, email, password)


def login(client: TestClient, email: str, password: str, **extra: Any) -> Any:
    return client.post("/v1/auth/login", json={"email": email, "password": password, **extra})


def test_password_spraying_from_one_address_is_stopped(limits: pytest.MonkeyPatch) -> None:
    with client_from(ATTACKER) as attacker, client_from(OWNER) as owner:
        for n in range(3):
            signed_up(owner, f"user{n}@example.com")
        # One guess per account, many accounts: no per-account limit is ever reached...
        answers = [
            login(attacker, f"user{n % 3}-{n}@example.com", "Summer2024!!").status_code
            for n in range(8)
        ]
        assert answers == [401] * 8
        # ...but the address is spent, for every account, even with the right password.
        refused = login(attacker, "user0@example.com", PASSWORD)
        assert refused.status_code == 429
        assert refused.json()["code"] == "login_rate_limited"
        assert int(refused.headers["retry-after"]) > 0
        assert login(owner, "user0@example.com", PASSWORD).status_code == 200


def test_a_forged_forwarded_for_from_an_untrusted_peer_changes_nothing(
    limits: pytest.MonkeyPatch,
) -> None:
    with client_from(ATTACKER) as attacker:
        sign_up(attacker, "ana@example.com")
        for n in range(8):
            # A new "address" every time: believed only from a trusted proxy, which we are not.
            forged = {"X-Forwarded-For": f"203.0.113.{n}"}
            answer = attacker.post(
                "/v1/auth/login",
                json={"email": f"victim{n}@example.com", "password": "wrong password"},
                headers=forged,
            )
            assert answer.status_code == 401
        again = attacker.post(
            "/v1/auth/login",
            json={"email": "ana@example.com", "password": PASSWORD},
            headers={"X-Forwarded-For": "198.51.100.77"},
        )
        assert again.status_code == 429


def test_an_attacker_cannot_lock_the_owner_out_of_their_device(
    limits: pytest.MonkeyPatch,
) -> None:
    with client_from(OWNER) as owner:
        signed_up(owner, "ana@example.com")
        assert login(owner, "ana@example.com", PASSWORD, device_id="ana-phone").status_code == 200
    # A botnet: every guess from another address, so no per-address limit fires.
    for n in range(6):
        with client_from(f"1.0.16.{n + 1}") as bot:
            assert login(bot, "ana@example.com", f"guess number {n}").status_code == 401
    with client_from("5.39.0.1") as bot:
        throttled = login(bot, "ana@example.com", PASSWORD, device_id="stolen-laptop")
        assert throttled.status_code == 429
        assert throttled.json()["code"] == "login_throttled"
    # The owner's phone, which signed in before, still gets in, from anywhere.
    with client_from(OWNER) as owner:
        assert login(owner, "ana@example.com", PASSWORD, device_id="ana-phone").status_code == 200


def test_the_global_limit_spares_known_devices(
    limits: pytest.MonkeyPatch,
) -> None:
    with client_from(OWNER) as owner:
        signed_up(owner, "ana@example.com")
        assert login(owner, "ana@example.com", PASSWORD, device_id="ana-phone").status_code == 200
    limits.setenv("POCKETCINEMA_LOGIN_GLOBAL_LIMIT", "2/minute")
    reset_settings_cache()
    with client_from(ATTACKER) as attacker:
        for n in range(2):
            login(attacker, f"nobody{n}@example.com", "some password")
        assert login(attacker, "ana@example.com", PASSWORD).json()["code"] == "login_throttled"
    with client_from(OWNER) as owner:
        assert login(owner, "ana@example.com", PASSWORD, device_id="ana-phone").status_code == 200


def test_sign_up_is_limited_per_address(
    limits: pytest.MonkeyPatch,
) -> None:
    limits.setenv("POCKETCINEMA_SIGNUP_IP_LIMIT", "3/hour")
    reset_settings_cache()
    with client_from(ATTACKER) as attacker, client_from(OWNER) as owner:
        for n in range(3):
            assert sign_up(attacker, f"bot{n}@example.com").status_code == 202
        flood = sign_up(attacker, "bot9@example.com")
        assert flood.status_code == 429
        assert flood.json()["code"] == "signup_rate_limited"
        assert int(flood.headers["retry-after"]) > 3000
        assert sign_up(owner, "ana@example.com").status_code == 202


@pytest.mark.parametrize(
    ("password", "expected"),
    [
        (" " * 10, "password_blank"),
        ("\u3000" * 12, "password_blank"),  # ideographic spaces are spaces too
        ("1234567890", "password_common"),
        ("PASSWORD123", "password_common"),  # case does not make a common password rare
        ("qwertyuiop", "password_common"),
        ("aaaaaaaaaaaa", "password_common"),
        ("ana@example.com", "password_common"),
        ("short", "password_too_short"),
        ("x" * 9, "password_too_short"),
        ("lorem ipsum " * 22, "password_too_long"),
    ],
)
def test_weak_passwords_are_refused(client: TestClient, password: str, expected: str) -> None:
    answer = sign_up(client, "ana@example.com", password)
    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["code"] == expected


@pytest.mark.parametrize(
    "password",
    [
        "correct horse battery",
        "ten chars!",
        "пароль для кино 2026",  # any characters, no composition rules
        "x" * 20 + "y" * 44,  # 64 characters
        "a" + " " * 10 + "b",  # spaces count
    ],
)
def test_good_passwords_pass_without_composition_rules(client: TestClient, password: str) -> None:
    signed_up(client, "ana@example.com", password)
    assert login(client, "ana@example.com", password).status_code == 200


def test_sign_up_does_not_tell_whether_an_address_has_an_account(client: TestClient) -> None:
    signed_up(client, "ana@example.com")
    fresh = sign_up(client, "zed@example.com", "another good password")
    existing = sign_up(client, "ana@example.com", "another good password")
    assert (existing.status_code, existing.json()) == (fresh.status_code, fresh.json())
    assert existing.headers["cache-control"] == fresh.headers["cache-control"] == "no-store"
    # And nothing changed for the owner: the old password works, the new one does not.
    assert login(client, "ana@example.com", PASSWORD).status_code == 200
    assert login(client, "ana@example.com", "another good password").status_code == 401


# --- the store: memory (embedded) and Redis (production) --------------------------------------


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def store(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, db: None
) -> Iterator[str]:
    url = "memory://"
    if request.param == "redis":
        if not port_open("127.0.0.1", 6379):
            service_unavailable("Redis at 127.0.0.1:6379")
        url = f"{REDIS_URL}/15"
    monkeypatch.setenv("POCKETCINEMA_RATE_LIMIT_STORAGE_URL", url)
    reset_settings_cache()
    yield url
    monkeypatch.undo()
    reset_settings_cache()


def test_throttles_count_in_the_configured_store(store: str) -> None:
    assert get_settings().rate_limit_url == store
    assert type(ratelimit.limiter().storage).__name__.lower().startswith(store.split(":")[0])
    key = uuid.uuid4().hex  # Redis is shared: a key of our own
    throttle = ratelimit.Throttle("test", "3/minute;5/hour")
    for _ in range(3):
        assert throttle.retry_after(key) == 0
        throttle.hit(key)
    assert 0 < throttle.retry_after(key) <= 60
    assert throttle.retry_after("someone-else") == 0
    throttle.clear(key)
    assert throttle.retry_after(key) == 0
