"""Sign-up, sign-in, refresh rotation with reuse detection, rate limits, admin."""

from __future__ import annotations

import threading
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from accounts.models import Role
from tests import helpers
from tests.helpers import auth_header, client_from, create_studio, create_user

PASSWORD = "correct horse battery"


def sign_up(client: TestClient, email: str = "ana@example.com", **extra: Any) -> dict[str, Any]:
    """Sign up, confirm the mailed code (which signs in); returns the tokens."""
    return helpers.sign_up(client, email, PASSWORD, **extra)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def code(response: Any, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    return str(response.json()["code"])


def test_sign_up_then_log_in_on_a_device(client: TestClient) -> None:
    created = sign_up(client, "Ana@Example.com", device_id="phone-1")
    assert (created["role"], created["device_id"]) == ("viewer", "phone-1")
    me = client.get("/v1/me", headers=bearer(created["access_token"])).json()
    assert (me["email"], me["device_id"]) == ("ana@example.com", "phone-1")

    login = client.post(
        "/v1/auth/login",
        json={"email": "ana@example.com", "password": PASSWORD},
        headers={"X-Device-Id": "tablet-7"},
    )
    assert login.status_code == 200
    assert login.headers["cache-control"] == "no-store"
    me = client.get("/v1/me", headers=bearer(login.json()["access_token"])).json()
    assert me["device_id"] == "tablet-7"


@pytest.mark.parametrize(
    ("body", "status", "expected"),
    [
        ({"email": "bob@example.com", "password": "short"}, 422, "password_too_short"),
        ({"email": "not-an-email", "password": PASSWORD}, 422, "invalid_email"),
        ({"email": "bob@example.com"}, 422, "invalid_input"),
        (
            {"email": "bob@example.com", "password": PASSWORD, "device_id": "bad id!"},
            422,
            "invalid_input",
        ),
    ],
)
def test_sign_up_refuses_bad_input(
    client: TestClient, body: dict[str, str], status: int, expected: str
) -> None:
    sign_up(client)
    assert code(client.post("/v1/auth/signup", json=body), status) == expected


def test_wrong_password_and_unknown_email_look_the_same(client: TestClient) -> None:
    sign_up(client)
    wrong = client.post(
        "/v1/auth/login", json={"email": "ana@example.com", "password": "nope nope nope"}
    )
    unknown = client.post("/v1/auth/login", json={"email": "zed@example.com", "password": PASSWORD})
    assert code(wrong, 401) == code(unknown, 401) == "invalid_credentials"
    assert wrong.json()["detail"] == unknown.json()["detail"]


def test_login_attempts_are_rate_limited_per_email_and_address(db: None) -> None:
    with client_from("8.8.8.8") as attacker, client_from("24.48.0.1") as owner:
        sign_up(attacker)
        for _ in range(5):
            bad = attacker.post(
                "/v1/auth/login", json={"email": "ana@example.com", "password": "guess guess!"}
            )
            assert code(bad, 401) == "invalid_credentials"
        right = {"email": "ana@example.com", "password": PASSWORD}
        limited = attacker.post("/v1/auth/login", json=right)
        assert code(limited, 429) == "login_rate_limited"
        assert 0 < int(limited.headers["retry-after"]) <= 900
        # The owner, elsewhere, is not locked out by the attacker.
        assert owner.post("/v1/auth/login", json=right).status_code == 200


def test_refresh_rotates_and_a_reused_token_ends_the_session(client: TestClient) -> None:
    first = sign_up(client, device_id="phone-1")
    second = client.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert second.status_code == 200, second.text
    second_tokens = second.json()
    assert second_tokens["refresh_token"] != first["refresh_token"]
    assert second_tokens["device_id"] == "phone-1"
    assert client.get("/v1/me", headers=bearer(second_tokens["access_token"])).status_code == 200

    # A thief replays the first (spent) token: the whole family is revoked...
    replay = client.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert code(replay, 401) == "refresh_token_reused"
    # ... so the legitimate holder's newer tokens stop working too.
    again = client.post("/v1/auth/refresh", json={"refresh_token": second_tokens["refresh_token"]})
    assert code(again, 401) == "session_revoked"
    me = client.get("/v1/me", headers=bearer(second_tokens["access_token"]))
    assert code(me, 401) == "session_revoked"
    # Other sign-ins of the same account are untouched.
    other = client.post("/v1/auth/login", json={"email": "ana@example.com", "password": PASSWORD})
    assert client.get("/v1/me", headers=bearer(other.json()["access_token"])).status_code == 200


def test_refresh_tokens_stay_on_their_device(client: TestClient) -> None:
    tokens = sign_up(client, device_id="phone-1")
    moved = client.post(
        "/v1/auth/refresh",
        json={"refresh_token": tokens["refresh_token"]},
        headers={"X-Device-Id": "laptop-9"},
    )
    assert code(moved, 401) == "device_mismatch"
    assert code(client.post("/v1/auth/refresh", json={"refresh_token": "made-up"}), 401) == (
        "invalid_refresh_token"
    )


def test_logout_ends_the_session(client: TestClient) -> None:
    tokens = sign_up(client)
    assert (
        client.post("/v1/auth/logout", json={"refresh_token": tokens["refresh_token"]}).status_code
        == 204
    )
    assert (
        code(client.get("/v1/me", headers=bearer(tokens["access_token"])), 401) == "session_revoked"
    )
    refreshed = client.post("/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert code(refreshed, 401) == "session_revoked"


def test_admin_creates_studios_and_their_users(client: TestClient) -> None:
    admin = auth_header(create_user("root@example.com", Role.admin))
    studio = client.post("/v1/admin/studios", headers=admin, json={"name": "Lantern Films"})
    assert studio.status_code == 201, studio.text
    user = client.post(
        "/v1/admin/users",
        headers=admin,
        json={
            "email": "ops@lantern.example",
            "password": PASSWORD,
            "role": "studio",
            "studio_id": studio.json()["id"],
        },
    )
    assert (user.status_code, user.json()["role"]) == (201, "studio")
    login = client.post(
        "/v1/auth/login", json={"email": "ops@lantern.example", "password": PASSWORD}
    )
    me = client.get("/v1/me", headers=bearer(login.json()["access_token"])).json()
    assert (me["role"], me["studio_id"]) == ("studio", studio.json()["id"])

    dup = client.post("/v1/admin/studios", headers=admin, json={"name": "Lantern Films"})
    assert code(dup, 409) == "studio_exists"
    orphan = client.post(
        "/v1/admin/users",
        headers=admin,
        json={"email": "x@lantern.example", "password": PASSWORD, "role": "studio"},
    )
    assert code(orphan, 422) == "studio_required"
    ghost = client.post(
        "/v1/admin/users",
        headers=admin,
        json={"email": "y@x.example", "password": PASSWORD, "role": "studio", "studio_id": "nope"},
    )
    assert code(ghost, 422) == "studio_not_found"


def test_only_admins_create_studios(client: TestClient) -> None:
    studio_user = auth_header(create_user("s@example.com", Role.studio, create_studio().id))
    response = client.post("/v1/admin/studios", headers=studio_user, json={"name": "Mine"})
    assert code(response, 403) == "role_forbidden"


@pytest.mark.postgres
def test_racing_refreshes_with_one_token_let_exactly_one_through(client: TestClient) -> None:
    from concurrent.futures import ThreadPoolExecutor

    tokens = sign_up(client)
    barrier = threading.Barrier(10)

    def attempt(_: int) -> int:
        barrier.wait()
        response: httpx.Response = client.post(
            "/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
        )
        return response.status_code

    with ThreadPoolExecutor(10) as pool:
        statuses = sorted(pool.map(attempt, range(10)))
    assert statuses.count(200) == 1
    assert set(statuses) == {200, 401}
