"""The heartbeat route tells box office where a heartbeat came from: sent from outside the
session's country it is recorded (the session stays alive) but covers no content."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import select

from boxoffice import views
from boxoffice.models import ViewHeartbeat
from core.db import unit_of_work
from tests.playback.conftest import Viewing


def test_a_heartbeat_from_another_country_covers_nothing(viewing: Viewing, configure: Any) -> None:
    c = viewing.client
    body = viewing.start().json()
    auth = {"Authorization": f"Bearer {body['token']}"}
    sid = body["session_id"]
    key = c.get(f"/v1/playback/sessions/{sid}/keys/{viewing.key_id}", headers=auth)
    assert key.status_code == 200, key.text  # the view starts: the ticket's clock runs
    heartbeat = f"/v1/playback/sessions/{sid}/heartbeat"
    time.sleep(0.05)  # some wall time to cover

    configure(geo_fallback_country="FR")  # the title is licensed in the US only
    abroad = c.post(
        heartbeat, json={"seq": 1, "position_seconds": 3.0, "watched_seconds": 3.0}, headers=auth
    )
    assert abroad.status_code == 200, abroad.text
    assert abroad.json()["recorded"] is True
    with unit_of_work() as session:
        assert views.watched_seconds(session, viewing.ticket_id) == 0.0
        assert session.scalar(select(ViewHeartbeat.outside_territory)) is True

    configure(geo_fallback_country="US")
    time.sleep(0.05)
    home = c.post(
        heartbeat, json={"seq": 2, "position_seconds": 6.0, "watched_seconds": 3.0}, headers=auth
    )
    assert home.json()["recorded"] is True
    with unit_of_work() as session:
        assert views.watched_seconds(session, viewing.ticket_id) > 0.0
