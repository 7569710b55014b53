"""Support's routes: finding accounts, studios and tickets, disabling an account (and
enabling it again) with the reason on record, and the failures list. Each refuses callers
whose role may not use it."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from accounts.models import Role, User
from catalog import service as catalog
from catalog.models import ReleaseStatus
from core.db import new_id, unit_of_work, utcnow
from core.outbox import OutboxJob
from tests.conftest import Configure
from tests.helpers import PASSWORD, auth_header, create_licensed_title, create_studio, create_user
from tests.payments.support import buy
from tickets.models import PlaybackSession

pytestmark = pytest.mark.usefixtures("db")


def _login(client: TestClient, email: str) -> Any:
    return client.post("/v1/auth/login", json={"email": email, "password": PASSWORD})


@pytest.fixture
def admin() -> User:
    return create_user("root@example.com", Role.admin)


def test_accounts_are_found_by_address_prefix_or_id_page_by_page(
    client: TestClient, admin: User
) -> None:
    ana = create_user("ana@example.com")
    create_user("anatol@example.com")
    create_user("bo@example.com")
    finance = auth_header(create_user("fin@example.com", Role.finance))

    found = client.get("/v1/admin/users", params={"q": "ANA"}, headers=finance).json()
    assert [u["email"] for u in found["items"]] == ["ana@example.com", "anatol@example.com"]
    assert found["total"] == 2
    second = client.get(
        "/v1/admin/users", params={"q": "ana", "limit": 1, "offset": 1}, headers=finance
    ).json()
    assert ([u["email"] for u in second["items"]], second["total"]) == (["anatol@example.com"], 2)
    by_id = client.get("/v1/admin/users", params={"q": ana.id}, headers=finance).json()
    assert [u["id"] for u in by_id["items"]] == [ana.id]
    # A LIKE wildcard in the query is a literal character, not "any address".
    assert client.get("/v1/admin/users", params={"q": "%"}, headers=finance).json()["total"] == 0


def test_studios_are_found_by_name_prefix_in_any_case(client: TestClient, admin: User) -> None:
    create_studio("Northern Light Films")
    create_studio("North Star")
    create_studio("Lumière")
    found = client.get("/v1/admin/studios", params={"q": "north"}, headers=auth_header(admin))
    assert [s["name"] for s in found.json()["items"]] == ["North Star", "Northern Light Films"]


def test_tickets_are_found_by_viewer_ticket_or_payment_id(
    client: TestClient, configure: Configure
) -> None:
    configure(geo_fallback_country="US")  # test clients connect from loopback: no country
    film = create_licensed_title(create_studio().id)
    ana, bo = create_user("ana@example.com"), create_user("bo@example.com")
    mine = buy(client, ana, film.id).json()
    buy(client, bo, film.id)
    finance = auth_header(create_user("fin@example.com", Role.finance))

    of_ana = client.get("/v1/finance/tickets", params={"viewer_id": ana.id}, headers=finance)
    assert [t["id"] for t in of_ana.json()["items"]] == [mine["ticket"]["id"]]
    by_payment = client.get(
        "/v1/finance/tickets", params={"q": mine["payment_intent_id"]}, headers=finance
    ).json()
    (found,) = by_payment["items"]
    assert (found["id"], found["viewer_id"], found["price_minor"]) == (
        mine["ticket"]["id"],
        ana.id,
        1299,
    )
    # Not paid yet: nothing to refund, and no currency booked.
    assert (found["refundable_minor"], found["paid_currency"]) == (0, None)
    assert client.get("/v1/finance/tickets", headers=finance).json()["total"] == 2


def test_a_disabled_account_cannot_sign_in_refresh_or_use_its_tokens(
    client: TestClient, admin: User
) -> None:
    ana = create_user("ana@example.com")
    tokens = _login(client, "ana@example.com").json()
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert client.get("/v1/me", headers=bearer).status_code == 200

    disabled = client.post(
        f"/v1/admin/users/{ana.id}/disable",
        json={"reason": "chargeback fraud, case 1182"},
        headers=auth_header(admin),
    )
    assert disabled.status_code == 200, disabled.text
    body = disabled.json()
    assert body["disabled_at"] is not None
    assert [(a["kind"], a["actor_id"], a["reason"]) for a in body["actions"]] == [
        ("disable", admin.id, "chargeback fraud, case 1182")
    ]
    still_signed_in = client.get("/v1/me", headers=bearer)
    assert (still_signed_in.status_code, still_signed_in.json()["code"]) == (
        401,
        "account_disabled",
    )
    refreshed = client.post("/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert (refreshed.status_code, refreshed.json()["code"]) == (401, "session_revoked")
    refused = _login(client, "ana@example.com")
    assert (refused.status_code, refused.json()["code"]) == (401, "invalid_credentials")

    # Asking again changes nothing and records nothing.
    again = client.post(
        f"/v1/admin/users/{ana.id}/disable", json={"reason": "again"}, headers=auth_header(admin)
    )
    assert len(again.json()["actions"]) == 1

    enabled = client.post(
        f"/v1/admin/users/{ana.id}/enable",
        json={"reason": "bank confirmed it was not her"},
        headers=auth_header(admin),
    )
    assert enabled.json()["disabled_at"] is None
    assert [a["kind"] for a in enabled.json()["actions"]] == ["enable", "disable"]
    assert _login(client, "ana@example.com").status_code == 200
    # The sessions ended by the disable stay ended.
    old = client.post("/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert old.status_code == 401


def test_disabling_an_account_ends_its_playback(
    client: TestClient, admin: User, configure: Configure
) -> None:
    configure(geo_fallback_country="US")
    film = create_licensed_title(create_studio().id)
    ana = create_user("ana@example.com")
    ticket_id = buy(client, ana, film.id).json()["ticket"]["id"]
    with unit_of_work() as session:
        release_id = catalog.playable_release(session, film.id).id
        live = PlaybackSession(
            id=new_id(),
            ticket_id=ticket_id,
            viewer_id=ana.id,
            title_id=film.id,
            release_id=release_id,
            device_id="tv-1",
            country="US",
            started_at=utcnow(),
            last_heartbeat_at=utcnow(),
        )
        session.add(live)
    client.post(
        f"/v1/admin/users/{ana.id}/disable",
        json={"reason": "account shared publicly"},
        headers=auth_header(admin),
    )
    with unit_of_work() as session:
        ended = session.get_one(PlaybackSession, live.id)
        assert (ended.ended_at is not None, ended.end_reason) == (True, "account_disabled")


def test_account_decisions_are_refused_with_codes(client: TestClient, admin: User) -> None:
    headers = auth_header(admin)
    reason = {"reason": "testing the refusals"}
    missing = client.post("/v1/admin/users/nosuchuser/disable", json=reason, headers=headers)
    assert (missing.status_code, missing.json()["code"]) == (404, "user_not_found")
    own = client.post(f"/v1/admin/users/{admin.id}/disable", json=reason, headers=headers)
    assert (own.status_code, own.json()["code"]) == (409, "own_account")
    ana = create_user("ana@example.com")
    for blank in ("", "   ", " a "):  # an audit trail needs a reason in words
        short = client.post(
            f"/v1/admin/users/{ana.id}/disable", json={"reason": blank}, headers=headers
        )
        assert short.status_code == 422
    with unit_of_work() as session:
        session.get_one(User, ana.id).deleted_at = utcnow()
    deleted = client.post(f"/v1/admin/users/{ana.id}/enable", json=reason, headers=headers)
    assert (deleted.status_code, deleted.json()["code"]) == (409, "account_deleted")


def test_failed_releases_and_jobs_are_listed_with_their_error_and_step(
    client: TestClient, admin: User
) -> None:
    studio = create_studio()
    film = create_licensed_title(studio.id, playable=False)
    with unit_of_work() as session:
        release = catalog.create_release(
            session, title_id=film.id, studio_id=studio.id, label="Main feature"
        )
        catalog.set_status(
            release,
            ReleaseStatus.failed,
            failure_code="encode_failed",
            failure_reason="Encoding failed (ffmpeg exited with 1).",
        )
        release_id = release.id
        session.add(
            OutboxJob(
                task="transcoding.encode_chunk",
                # Only ids are shown: other arguments may be secrets in transit.
                args={"release_id": release_id, "link": "https://x/redeem#code=secret"},
                attempts=3,
                last_error="ffmpeg exited with 1",
                failed_at=utcnow(),
            )
        )
        session.add(OutboxJob(task="transcoding.probe", args={}))  # still open: not listed

    releases = client.get("/v1/admin/failed-releases", headers=auth_header(admin)).json()
    (failed,) = releases["items"]
    assert (failed["id"], failed["failure_code"], failed["step"]) == (
        release_id,
        "encode_failed",
        "encode",
    )
    assert failed["retry_path"] == f"/v1/studio/releases/{release_id}/transcode"
    jobs = client.get("/v1/admin/failed-jobs", headers=auth_header(admin)).json()
    assert "secret" not in str(jobs)
    assert [(j["task"], j["last_error"], j["args"]) for j in jobs["items"]] == [
        ("transcoding.encode_chunk", "ffmpeg exited with 1", {"release_id": release_id})
    ]
    # The link the office follows: an admin may start the transcode again.
    retry = client.post(failed["retry_path"], headers=auth_header(admin))
    assert retry.status_code in {202, 409}, retry.text
    assert retry.status_code == 202 or retry.json()["code"] == "master_missing"


def test_searches_refuse_a_nul_character(client: TestClient, admin: User) -> None:
    """PostgreSQL text cannot hold a NUL: refused as input, never a 500."""
    headers = auth_header(admin)
    for path in (
        "/v1/admin/users?q=a%00b",
        "/v1/admin/studios?q=a%00b",
        "/v1/finance/tickets?q=a%00b",
        "/v1/finance/tickets?viewer_id=a%00b",
    ):
        response = client.get(path, headers=headers)
        assert response.status_code == 422, (path, response.text)
        assert response.json()["code"] == "invalid_input"


@pytest.mark.parametrize("role", [Role.viewer, Role.studio])
def test_viewers_and_studios_are_refused_every_support_route(
    client: TestClient, admin: User, role: Role
) -> None:
    studio_id = create_studio().id if role is Role.studio else None
    headers = auth_header(create_user("someone@example.com", role, studio_id))
    reason = {"reason": "let me in"}
    for method, path in [
        ("GET", "/v1/admin/users"),
        ("GET", f"/v1/admin/users/{admin.id}"),
        ("POST", f"/v1/admin/users/{admin.id}/disable"),
        ("POST", f"/v1/admin/users/{admin.id}/enable"),
        ("GET", "/v1/admin/studios"),
        ("GET", "/v1/admin/failed-releases"),
        ("GET", "/v1/admin/failed-jobs"),
        ("GET", "/v1/finance/tickets"),
    ]:
        body = reason if method == "POST" else None
        response = client.request(method, path, json=body, headers=headers)
        assert (response.status_code, response.json()["code"]) == (403, "role_forbidden"), path


def test_finance_may_look_up_but_not_decide_about_accounts_or_read_failures(
    client: TestClient, admin: User
) -> None:
    finance = auth_header(create_user("fin@example.com", Role.finance))
    assert client.get(f"/v1/admin/users/{admin.id}", headers=finance).status_code == 200
    for path in (f"/v1/admin/users/{admin.id}/disable", f"/v1/admin/users/{admin.id}/enable"):
        refused = client.post(path, json={"reason": "not mine to do"}, headers=finance)
        assert (refused.status_code, refused.json()["code"]) == (403, "role_forbidden")
    for path in ("/v1/admin/failed-releases", "/v1/admin/failed-jobs"):
        assert client.get(path, headers=finance).status_code == 403
