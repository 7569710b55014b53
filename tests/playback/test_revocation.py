"""The stream obeys the database within a grant's life: after a refund, a dispute, a closed
licence window, an expired rental, a stopped session or another device taking the stream,
the next decision (heartbeat, refresh) refuses and ends the session (committed), and every
media, playlist and key request is refused once the current grant expires: within
``playback_grant_seconds`` plus one segment of what the player had already fetched.

The revocations are made as another process makes them (a webhook, a studio edit, another
device), straight in the database or through the API; the grant lifetime is 2 s here.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from core.db import unit_of_work, utcnow
from drm import grants
from tests.playback.conftest import Viewing, refund
from tests.playback.test_playback_api import key_uri, path_of, started, variant_lines
from tickets.models import PlaybackSession, Ticket, TicketState

GRANT_SECONDS = 2


@pytest.fixture
def short_grants(configure: Any) -> None:
    configure(playback_grant_seconds=str(GRANT_SECONDS))


def _fetch_all(viewing: Viewing, body: dict[str, Any], grant: str) -> dict[str, int]:
    """What a player fetches: a playlist, a segment and a key, with the grant it holds."""
    headers = viewing.grant_headers(grant)
    c = viewing.client
    segment = f"/v1/playback/sessions/{body['session_id']}/media/video_540p/seg_00001.m4s"
    return {
        "playlist": c.get(path_of(body["master_playlist_url"]), headers=headers).status_code,
        "segment": c.get(segment, headers=headers).status_code,
        "key": c.get(key_uri(body, viewing.key_id), headers=headers).status_code,
    }


def _expires_at(grant: str) -> float:
    # Read whether or not it has expired yet: on a loaded machine the steps before may
    # already have taken longer than the grant's life.
    return grants.decode(grant, grace_seconds=3600).expires_at


def _wait_until_expired(grant: str) -> float:
    """Sleep until the grant's expiry has passed (at most GRANT_SECONDS + 1 s)."""
    expires_at = _expires_at(grant)
    started_waiting = time.time()
    while time.time() <= expires_at:
        time.sleep(0.1)
    return time.time() - started_waiting


def _session(session_id: str) -> PlaybackSession:
    with unit_of_work() as session:
        row = session.get_one(PlaybackSession, session_id)
        session.expunge(row)
        return row


def _set_ticket(viewing: Viewing, **values: Any) -> None:
    with unit_of_work() as session:
        ticket = session.get_one(Ticket, viewing.ticket_id)
        for name, value in values.items():
            setattr(ticket, name, value)


def _close_window(viewing: Viewing) -> None:
    from catalog.models import LicenceWindow

    with unit_of_work() as session:
        for window in session.scalars(
            select(LicenceWindow).where(LicenceWindow.title_id == viewing.title_id)
        ):
            window.ends_at = utcnow() - timedelta(seconds=1)


def _refund(viewing: Viewing) -> None:
    refund(viewing.client, viewing)


def _dispute(viewing: Viewing) -> None:
    _set_ticket(viewing, state=TicketState.disputed)


def _rental_ran_out(viewing: Viewing) -> None:
    _set_ticket(viewing, watch_until=utcnow() - timedelta(seconds=1))


REVOCATIONS: dict[str, tuple[Callable[[Viewing], None], str]] = {
    "refund": (_refund, "ticket_refunded"),
    "dispute": (_dispute, "ticket_disputed"),
    "window closed": (_close_window, "outside_licence_window"),
    "rental expired": (_rental_ran_out, "ticket_expired"),
}


@pytest.mark.usefixtures("short_grants")
@pytest.mark.parametrize("what", list(REVOCATIONS))
def test_after_a_revocation_the_stream_stops_within_the_grant(viewing: Viewing, what: str) -> None:
    revoke, code = REVOCATIONS[what]
    body = started(viewing)
    variant_lines(viewing, body)
    grant = body["token"]
    assert _fetch_all(viewing, body, grant) == {"playlist": 200, "segment": 200, "key": 200}
    revoke(viewing)
    revoked_at = time.time()
    # The next decision refuses, says why, and ends the session: the end is committed
    # although the request failed.
    beat = viewing.client.post(
        path_of(body["heartbeat_url"]),
        json={"seq": 1, "position_seconds": 1.0, "watched_seconds": 1.0},
        headers=viewing.grant_headers(grant),
    )
    assert (beat.status_code, beat.json()["code"]) == (403, code)
    ended = _session(body["session_id"])
    assert ended.ended_at is not None
    assert ended.end_reason == code
    again = viewing.client.post(path_of(body["refresh_url"]), headers=viewing.grant_headers(grant))
    assert again.json()["code"] == "session_ended"
    # The grant the player holds still works until it expires (that is the bound) and not
    # a moment longer: then every request is refused.
    _wait_until_expired(grant)
    # The stream stops when the grant the player holds expires: at most its life after the
    # revocation, plus one 2 s segment a player may have fetched just before.
    assert _expires_at(grant) - revoked_at <= GRANT_SECONDS + 2
    assert _fetch_all(viewing, body, grant) == {"playlist": 401, "segment": 401, "key": 401}


@pytest.mark.usefixtures("short_grants")
def test_a_refunded_viewer_keeps_refreshing_and_is_refused(viewing: Viewing) -> None:
    """The abuser's path: keep the session going with refreshes instead of heartbeats."""
    body = started(viewing)
    refund(viewing.client, viewing)
    refreshed = viewing.client.post(
        path_of(body["refresh_url"]), headers=viewing.grant_headers(body["token"])
    )
    assert (refreshed.status_code, refreshed.json()["code"]) == (403, "ticket_refunded")
    assert _session(body["session_id"]).end_reason == "ticket_refunded"
    _wait_until_expired(body["token"])
    segment = viewing.client.get(
        f"/v1/playback/sessions/{body['session_id']}/media/video_540p/seg_00002.m4s",
        headers=viewing.grant_headers(body["token"]),
    )
    assert (segment.status_code, segment.json()["code"]) == (401, "grant_expired")


@pytest.mark.usefixtures("short_grants")
def test_a_stopped_session_and_a_taken_stream_stop_within_the_grant(viewing: Viewing) -> None:
    from tests.helpers import auth_header

    phone = started(viewing)
    tablet = viewing.start(auth_header(viewing.viewer, device_id="tablet-1"), take_over=True)
    assert tablet.status_code == 201, tablet.text
    # The phone's next heartbeat: the stream is gone.
    beat = viewing.client.post(
        path_of(phone["heartbeat_url"]),
        json={"seq": 1, "position_seconds": 1.0, "watched_seconds": 1.0},
        headers=viewing.grant_headers(phone["token"]),
    )
    assert (beat.status_code, beat.json()["code"]) == (410, "session_ended")
    assert beat.json()["reason"] == "taken_over"
    _wait_until_expired(phone["token"])
    assert set(_fetch_all(viewing, phone, phone["token"]).values()) == {401}
    # The tablet plays on (its grant renewed by a heartbeat); then it stops, and its grant
    # runs out the same way.
    on_tablet = tablet.json()
    beat = viewing.client.post(
        path_of(on_tablet["heartbeat_url"]),
        json={"seq": 1, "position_seconds": 1.0, "watched_seconds": 1.0},
        headers=viewing.grant_headers(on_tablet["token"], "tablet-1"),
    )
    assert beat.status_code == 200, beat.text
    renewed = {**on_tablet, "token": beat.json()["token"]}
    headers = viewing.grant_headers(renewed["token"], "tablet-1")
    key = key_uri(renewed, viewing.key_id)
    assert viewing.client.get(key, headers=headers).status_code == 200
    stop = viewing.client.post(path_of(renewed["stop_url"]), headers=headers)
    assert stop.status_code == 204
    _wait_until_expired(renewed["token"])
    assert viewing.client.get(key, headers=headers).status_code == 401


def test_heartbeats_from_outside_the_licensed_country_do_not_count(viewing: Viewing) -> None:
    from sqlalchemy import func, select

    from boxoffice.models import ViewHeartbeat
    from tests.helpers import IP_IN, client_from

    body = started(viewing)  # from loopback: the US fallback
    with client_from(IP_IN["CA"]) as in_canada:  # licensed there too, but not this session's
        beat = in_canada.post(
            path_of(body["heartbeat_url"]),
            json={"seq": 1, "position_seconds": 30.0, "watched_seconds": 30.0},
            headers=viewing.grant_headers(body["token"]),
        )
    assert (beat.status_code, beat.json()["code"]) == (403, "country_changed")
    assert _session(body["session_id"]).end_reason == "country_changed"
    with unit_of_work() as session:
        counted = session.scalar(
            select(func.count())
            .select_from(ViewHeartbeat)
            .where(ViewHeartbeat.playback_session_id == body["session_id"])
        )
    assert counted == 0
