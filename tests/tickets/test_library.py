"""My library, ownership, and the rental clock."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from core.db import unit_of_work, utcnow
from core.errors import Forbidden, InvalidInput, NotFound
from tests.helpers import auth_header, create_licensed_title, create_studio, create_user
from tests.payments.support import buy
from tickets import service as tickets
from tickets.models import Ticket

pytestmark = pytest.mark.usefixtures("db")


def _paid_ticket(client: TestClient, viewer: Any, slug: str = "the-film") -> str:
    film = create_licensed_title(create_studio(f"Studio {slug}").id, slug=slug)
    sheet = buy(client, viewer, film.id).json()
    confirmed = client.post(
        f"/v1/sandbox/payments/{sheet['payment_intent_id']}/confirm",
        json={"payment_method": "pm_card_visa"},
        headers=auth_header(viewer),
    )
    assert confirmed.json()["ticket"]["state"] == "active"
    return str(sheet["ticket"]["id"])


def test_library_lists_my_tickets_on_any_device(client: TestClient) -> None:
    ana = create_user("ana@example.com")
    paid = _paid_ticket(client, ana)
    other_film = create_licensed_title(create_studio("Other").id, slug="other-film")
    pending = buy(client, ana, other_film.id).json()["ticket"]["id"]

    # A reinstalled app is a new device; the tickets belong to the account.
    response = client.get("/v1/me/tickets", headers=auth_header(ana, device_id="new-phone"))
    assert response.status_code == 200
    body = response.json()
    assert body["total"] == 2
    states = {t["id"]: t["state"] for t in body["items"]}
    assert states == {paid: "active", pending: "pending"}
    active = next(t for t in body["items"] if t["id"] == paid)
    assert 29 * 86400 < active["remaining_seconds"] <= 30 * 86400
    assert active["watch_hours"] == 48

    only_active = client.get("/v1/me/tickets?state=active", headers=auth_header(ana)).json()
    assert [t["id"] for t in only_active["items"]] == [paid]


def test_one_viewer_cannot_see_or_use_anothers_tickets(client: TestClient) -> None:
    ana, bo = create_user("ana@example.com"), create_user("bo@example.com")
    ticket_id = _paid_ticket(client, ana)

    response = client.get(f"/v1/me/tickets/{ticket_id}", headers=auth_header(bo))
    assert (response.status_code, response.json()["code"]) == (404, "ticket_not_found")
    assert client.get("/v1/me/tickets", headers=auth_header(bo)).json()["total"] == 0
    with unit_of_work() as session, pytest.raises(NotFound):
        tickets.get_ticket_for_viewer(session, bo.id, ticket_id)
    assert client.get(f"/v1/me/tickets/{ticket_id}", headers=auth_header(ana)).status_code == 200


def test_library_needs_a_login(client: TestClient) -> None:
    response = client.get("/v1/me/tickets")
    assert (response.status_code, response.json()["code"]) == (401, "not_authenticated")


def test_first_play_starts_the_48_hour_window(client: TestClient) -> None:
    ana = create_user("ana@example.com")
    ticket_id = _paid_ticket(client, ana)
    now = utcnow()
    with unit_of_work() as session:
        ticket = tickets.get_ticket_for_viewer(session, ana.id, ticket_id)
        assert tickets.is_watchable(ticket, now)
        tickets.mark_first_play(session, ticket, now)
        tickets.mark_first_play(session, ticket, now + timedelta(hours=5))  # no reset
        assert ticket.first_played_at is not None
        assert ticket.watch_until == ticket.first_played_at + timedelta(hours=48)
        assert tickets.is_watchable(ticket, now + timedelta(hours=47))
        assert not tickets.is_watchable(ticket, now + timedelta(hours=49))
        assert tickets.state_at(ticket, now + timedelta(hours=49)) == "expired"
        with pytest.raises(Forbidden):
            tickets.mark_first_play(session, ticket, now + timedelta(hours=49))


def test_unplayed_ticket_expires_after_the_start_window(client: TestClient) -> None:
    ana = create_user("ana@example.com")
    ticket_id = _paid_ticket(client, ana)
    with unit_of_work() as session:
        ticket = session.get_one(Ticket, ticket_id)
        assert ticket.start_by is not None
        assert tickets.is_watchable(ticket, ticket.start_by - timedelta(minutes=1))
        assert not tickets.is_watchable(ticket, ticket.start_by + timedelta(minutes=1))


def test_rule_changes_do_not_alter_sold_tickets(client: TestClient) -> None:
    ana = create_user("ana@example.com")
    film = create_licensed_title(create_studio().id)
    before = buy(client, ana, film.id).json()["ticket"]
    with unit_of_work() as session:
        tickets.set_rental_rule(session, film.id, start_within_hours=24, watch_hours=72)
    after = buy(client, ana, film.id).json()["ticket"]
    assert (before["watch_hours"], after["watch_hours"]) == (48, 72)
    with unit_of_work() as session:
        assert session.get_one(Ticket, before["id"]).start_within_hours == 30 * 24
        with pytest.raises(InvalidInput, match="must be"):
            tickets.set_rental_rule(session, film.id, start_within_hours=0, watch_hours=1)


def test_pending_tickets_are_not_watchable(client: TestClient) -> None:
    ana = create_user("ana@example.com")
    film = create_licensed_title(create_studio().id)
    ticket_id = buy(client, ana, film.id).json()["ticket"]["id"]
    with unit_of_work() as session:
        ticket = session.get_one(Ticket, ticket_id)
        assert not tickets.is_watchable(ticket, utcnow())
        assert tickets.remaining(ticket, utcnow()) is None


def test_the_library_says_where_to_continue_watching(client: TestClient) -> None:
    from tickets.models import PlaybackSession

    ana = create_user("ana@example.com")
    ticket_id = _paid_ticket(client, ana)
    fresh = client.get(f"/v1/me/tickets/{ticket_id}", headers=auth_header(ana)).json()
    assert fresh["resume_position_seconds"] == 0.0

    # Two devices watched; the one that reported last decides where to continue.
    now = utcnow()
    with unit_of_work() as session:
        ticket = session.get(Ticket, ticket_id)
        assert ticket is not None
        for name, position, ago in (("phone", 1200.0, 30), ("tablet", 1834.5, 5)):
            session.add(
                PlaybackSession(
                    id=f"session-{name}",
                    ticket_id=ticket_id,
                    viewer_id=ana.id,
                    title_id=ticket.title_id,
                    release_id=_release_of(session, ticket.title_id),
                    device_id=name,
                    country="US",
                    started_at=now - timedelta(minutes=40),
                    last_heartbeat_at=now - timedelta(seconds=ago),
                    position_seconds=position,
                )
            )
    one = client.get(f"/v1/me/tickets/{ticket_id}", headers=auth_header(ana)).json()
    assert one["resume_position_seconds"] == 1834.5
    listed = client.get("/v1/me/tickets", headers=auth_header(ana)).json()["items"]
    assert [t["resume_position_seconds"] for t in listed] == [1834.5]


def _release_of(session: Any, title_id: str) -> str:
    from catalog.service import playable_release

    return playable_release(session, title_id).id
