"""Screeners: a studio invites a buyer by e-mail; the buyer redeems the single-use code and
watches without paying through the same sessions, grants and per-session watermark; views
are reported to the studio on their own and never reach box office."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from email.parser import BytesParser
from email.policy import default
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from accounts.models import Role
from boxoffice.models import ViewHeartbeat, ViewStart
from core import jobs
from core.db import read_only, utcnow
from core.outbox import OutboxJob
from core.settings import get_settings
from drm.watermark import codeword
from tests.helpers import auth_header, create_licensed_title, create_studio, create_user
from tests.playback.conftest import PackagedRelease, install_release
from tickets import tasks as ticket_jobs
from tickets.screeners import MAIL_JOB

pytestmark = pytest.mark.slow
# Importing the module registers the invitation mail job.
assert callable(ticket_jobs.mail_screener_invitation)


def _beat(client: TestClient, started: dict[str, Any], token: str, seq: int) -> Any:
    return client.post(
        f"/v1/playback/sessions/{started['session_id']}/heartbeat",
        json={"seq": seq, "position_seconds": 10.0 * seq, "watched_seconds": 10.0},
        headers={"Authorization": f"Bearer {token}"},
    )


def test_a_buyer_watches_a_screener_counted_apart_from_box_office(
    client: TestClient, watermarked: tuple[PackagedRelease, Path], configure: Any
) -> None:
    # The buyer is in France, where the title is not licensed: screeners need no window.
    configure(geo_fallback_country="FR")
    packaged, _ = watermarked
    studio = create_studio("Screener Pictures")
    title = create_licensed_title(studio.id, slug=f"scr-{uuid.uuid4().hex[:8]}", playable=False)
    install_release(packaged, title.id, studio.id)
    agent = auth_header(
        create_user(f"agent-{uuid.uuid4().hex[:6]}@s.example", Role.studio, studio.id)
    )
    email = f"buyer-{uuid.uuid4().hex[:6]}@distributor.example"

    bad = client.post(
        f"/v1/studio/titles/{title.id}/screeners",
        json={
            "email": email,
            "expires_at": (utcnow() - timedelta(hours=1)).isoformat(),
            "view_limit": 1,
        },
        headers=agent,
    )
    assert bad.status_code == 422
    assert bad.json()["code"] == "invalid_screener_expiry"
    invited = client.post(
        f"/v1/studio/titles/{title.id}/screeners",
        json={
            "email": email,
            "expires_at": (utcnow() + timedelta(days=7)).isoformat(),
            "view_limit": 1,
        },
        headers=agent,
    )
    assert invited.status_code == 201, invited.text
    screener = invited.json()
    code = screener["code"]
    assert screener["link"].endswith(f"#code={code}")
    with read_only() as session:
        mail = session.scalars(select(OutboxJob).where(OutboxJob.task == MAIL_JOB)).all()
        assert [(m.args["email"], m.args["link"]) for m in mail] == [(email, screener["link"])]
        job_id, job_args = mail[0].id, dict(mail[0].args)
    # The worker's job sends it (no SMTP relay in tests: core.mail writes the .eml file).
    assert jobs.run_job(MAIL_JOB, job_id, job_args)[0] == "done"
    sent = [
        BytesParser(policy=default).parsebytes(p.read_bytes())
        for p in get_settings().mail_dir.glob("*.eml")
    ]
    ours = [m for m in sent if m["To"] == email]
    assert len(ours) == 1
    assert screener["link"] in ours[0].get_body().get_content()  # type: ignore[union-attr]

    # Single use, and only for the invited address.
    stranger = auth_header(create_user(f"other-{uuid.uuid4().hex[:6]}@x.example"), "tablet")
    wrong = client.post("/v1/screeners/redeem", json={"code": code}, headers=stranger)
    assert wrong.status_code == 403
    assert wrong.json()["code"] == "screener_wrong_account"
    buyer = auth_header(create_user(email), device_id="phone-1")
    for _ in range(2):  # redeeming again is harmless
        redeemed = client.post("/v1/screeners/redeem", json={"code": code}, headers=buyer)
        assert redeemed.status_code == 200, redeemed.text
    assert client.get("/v1/screeners", headers=buyer).json()[0]["id"] == screener["id"]
    not_mine = client.post(
        "/v1/playback/screener-sessions", json={"screener_id": screener["id"]}, headers=stranger
    )
    assert not_mine.status_code == 404

    started = client.post(
        "/v1/playback/screener-sessions", json={"screener_id": screener["id"]}, headers=buyer
    )
    assert started.status_code == 201, started.text
    body = started.json()
    # The same playlists and watermark as a ticket holder's: this session's own sequence.
    grant = {"Authorization": f"Bearer {body['token']}"}
    master = client.get(body["master_playlist_url"], headers=grant).text
    top = next(line for line in master.splitlines() if line.startswith("/v1/"))
    listing = client.get(top, headers=grant).text
    served = re.findall(r"/media/(video_216p(?:\.b)?)/seg_\d+\.m4s", listing)
    assert [int(f.endswith(".b")) for f in served] == codeword(body["session_id"], len(served))

    token = body["token"]
    for seq in (1, 1, 2):  # a retried heartbeat counts nothing twice
        beat = _beat(client, body, token, seq)
        assert beat.status_code == 200, beat.text
        token = beat.json()["token"]
    report = client.get(f"/v1/studio/titles/{title.id}/screeners", headers=agent).json()
    assert [(r["views"], r["watched_seconds"]) for r in report] == [(1, 20.0)]
    with read_only() as session:
        for table in (ViewStart, ViewHeartbeat):
            assert session.scalar(select(func.count()).select_from(table)) == 0

    # The view limit: one view was used, a new session is refused.
    again = client.post(
        "/v1/playback/screener-sessions", json={"screener_id": screener["id"]}, headers=buyer
    )
    assert again.status_code == 403
    assert again.json()["code"] == "screener_view_limit_reached"

    # Withdrawn: the live session's next decision refuses and ends it.
    revoked = client.post(f"/v1/studio/screeners/{screener['id']}/revoke", headers=agent)
    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"]
    refused = _beat(client, body, token, 3)
    assert refused.status_code == 410
    assert refused.json()["code"] == "screener_revoked"
