"""The routes the studio portal added: a title's artwork (an image upload checked by type and
size, kept in object storage) and the webhook delivery log. Each studio sees only its own:
another studio's title or deliveries are not found, exactly like missing ones."""

from __future__ import annotations

import struct
import zlib
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from accounts.models import Role, Studio
from catalog import service as catalog
from catalog.artwork import MAX_ARTWORK_BYTES
from catalog.models import Release
from core import jobs
from core.db import unit_of_work, utcnow
from core.errors import NotFound
from core.outbox import OutboxJob
from core.storage import get_store
from tests.helpers import (
    IP_IN,
    auth_header,
    client_from,
    create_licensed_title,
    create_studio,
    create_title,
    create_user,
)
from transcoding import service as transcoding
from transcoding import tasks as registered_jobs

assert callable(registered_jobs.notify_studio)  # importing registers the notification job


def png(width: int = 2, height: int = 3) -> bytes:
    """A real (tiny, grey) PNG image."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def studio_user(name: str) -> tuple[str, dict[str, str]]:
    studio = create_studio(name)
    user = create_user(f"ops@{name.lower().replace(' ', '-')}.example", Role.studio, studio.id)
    return studio.id, auth_header(user)


def artwork_url(title_id: str, locale: str = "fr") -> str:
    return f"/v1/studio/titles/{title_id}/localizations/{locale}/artwork"


def put_image(client: TestClient, url: str, headers: Any, data: bytes, kind: str) -> Any:
    return client.put(url, headers=headers | {"Content-Type": kind}, content=data)


def test_artwork_is_stored_served_and_only_to_its_studio(client: TestClient) -> None:
    studio_id, owner = studio_user("Poster Films")
    _, intruder = studio_user("Intruder Films")
    title = create_title(studio_id, slug="posters")
    url = artwork_url(title.id)
    missing = put_image(client, url, owner, png(), "image/png")
    assert missing.status_code == 404
    assert missing.json()["code"] == "localization_not_found"
    client.put(
        f"/v1/studio/titles/{title.id}/localizations/fr",
        headers=owner,
        json={"name": "Les affiches", "artwork_url": "https://cdn.example.com/old.jpg"},
    )

    image = png()
    stored = put_image(client, url, owner, image, "image/png")
    assert stored.status_code == 200, stored.text
    key = stored.json()["artwork_key"]
    assert key.startswith(f"artwork/{title.id}/fr-")
    assert key.endswith(".png")
    assert stored.json()["artwork_url"] is None  # the upload replaces the URL
    assert get_store().get_bytes(key) == image
    served = client.get(url, headers=owner)
    assert served.status_code == 200
    assert served.headers["content-type"] == "image/png"
    assert served.content == image

    # Another studio: the title does not exist for it, to read or to write.
    for response in (
        client.get(url, headers=intruder),
        put_image(client, url, intruder, image, "image/png"),
    ):
        assert response.status_code == 404
        assert response.json()["code"] == "title_not_found"
    assert get_store().get_bytes(key) == image


def test_artwork_type_and_size_are_checked(client: TestClient) -> None:
    studio_id, owner = studio_user("Checked Films")
    title = create_title(studio_id, slug="checked")
    client.put(f"/v1/studio/titles/{title.id}/localizations/fr", headers=owner, json={"name": "Vu"})
    url = artwork_url(title.id)
    refusals = [
        (b"<svg onload='alert(1)'/>", "image/svg+xml", 415, "artwork_type_unsupported"),
        (b"<html><script>alert(1)</script></html>", "image/png", 415, "artwork_type_unsupported"),
        (png(), "image/jpeg", 415, "artwork_type_unsupported"),  # declared and actual differ
        (b"RIFF\x00\x00\x00\x00WAVEfmt ", "image/webp", 415, "artwork_type_unsupported"),
    ]
    for data, kind, status, code in refusals:
        response = put_image(client, url, owner, data, kind)
        assert response.status_code == status, (kind, response.text)
        assert response.json()["code"] == code
    too_large = put_image(client, url, owner, png() + bytes(MAX_ARTWORK_BYTES), "image/png")
    assert too_large.status_code == 413
    assert too_large.json()["code"] in ("payload_too_large", "artwork_too_large")
    # Nothing was kept: the localization has no artwork, and none is served.
    assert client.get(url, headers=owner).json()["code"] == "artwork_not_found"
    jpeg = b"\xff\xd8\xff\xe0" + bytes(32)
    assert put_image(client, url, owner, jpeg, "image/jpeg").json()["artwork_key"].endswith(".jpg")


def test_a_hand_set_artwork_key_cannot_read_other_objects(client: TestClient) -> None:
    studio_id, owner = studio_user("Curious Films")
    title = create_title(studio_id, slug="curious")
    get_store().put_bytes("uploads/someone-elses/master.mov", b"secret master")
    refused = client.put(
        f"/v1/studio/titles/{title.id}/localizations/fr",
        headers=owner,
        json={"name": "Curieux", "artwork_key": "uploads/someone-elses/master.mov"},
    )
    assert refused.status_code == 422
    assert refused.json()["code"] == "invalid_storage_key"
    # A key stored before the rule (or by hand in the database) is still never served.
    with unit_of_work() as session:
        row = catalog.put_localization(
            session, catalog.get_title(session, title.id), "fr", name="Curieux"
        )
        row.artwork_key = "uploads/someone-elses/master.mov"
    response = client.get(artwork_url(title.id), headers=owner)
    assert response.status_code == 404
    assert response.json()["code"] == "artwork_not_found"


def test_the_public_trailer_and_artwork_serve_only_the_titles_own_files(
    client: TestClient,
) -> None:
    """A studio cannot point its title's public trailer or artwork at another object in
    storage (another studio's master, unencrypted chunks): refused when set, and a key
    outside the title's folder already in the database is never served."""
    studio_id, owner = studio_user("Borrowing Films")
    title = create_licensed_title(studio_id, slug="borrowing")  # on sale in the US now
    victim = "releases/someone-elses/assets/master.mp4"
    get_store().put_bytes(victim, b"secret master")
    for body in ({"trailer_key": victim}, {"trailer_key": f"trailers/{title.id}x/t.mp4"}):
        refused = client.patch(f"/v1/studio/titles/{title.id}", headers=owner, json=body)
        assert refused.status_code == 422, refused.text
        assert refused.json()["code"] == "invalid_storage_key"
    created = client.post(
        "/v1/studio/titles",
        headers=owner,
        json={
            "slug": "borrowing-2",
            "original_title": "B",
            "original_language": "en",
            "trailer_key": victim,
        },
    )
    assert created.status_code == 422
    assert created.json()["code"] == "invalid_storage_key"
    with unit_of_work() as session:
        stored = catalog.get_title(session, title.id)
        stored.trailer_key = victim  # as if stored before the rule, or by hand
        with pytest.raises(NotFound) as trailer:
            catalog.stored_trailer(session, title.id, "US", utcnow())
        row = catalog.put_localization(session, stored, "en", name="Borrowing")
        row.artwork_key = victim
        with pytest.raises(NotFound) as artwork:
            catalog.stored_artwork(session, title.id, "US", utcnow(), ["en"])
    assert trailer.value.code == "trailer_not_found"
    assert artwork.value.code == "artwork_not_found"
    # Over HTTP, from a US address and signed out, as anyone would ask.
    with client_from(IP_IN["US"]) as anyone:
        for route, code in (("trailer", "trailer_not_found"), ("artwork", "artwork_not_found")):
            response = anyone.get(f"/v1/titles/{title.id}/{route}")
            assert response.status_code == 404, response.text
            assert response.json()["code"] == code


def _failed_release(studio_id: str, slug: str) -> str:
    title = create_title(studio_id, slug=slug)
    with unit_of_work() as session:
        release = catalog.create_release(
            session, title_id=title.id, studio_id=studio_id, label="Main"
        )
        release_id = release.id
    with unit_of_work() as session:
        transcoding.fail_release(session, release_id, None, "master_unreadable", "cannot read")
    return release_id


def _run_notifications() -> None:
    with unit_of_work() as session:
        open_jobs = [
            (job.id, dict(job.args))
            for job in session.scalars(
                select(OutboxJob).where(
                    OutboxJob.task == transcoding.NOTIFY_JOB, OutboxJob.finished_at.is_(None)
                )
            )
        ]
    for job_id, args in open_jobs:
        jobs.run_job(transcoding.NOTIFY_JOB, job_id, args)


def test_the_delivery_log_shows_each_notification_of_the_callers_studio(
    client: TestClient,
) -> None:
    studio_id, owner = studio_user("Hooked Films")
    _, other = studio_user("Other Films")
    quiet = _failed_release(studio_id, "quiet")

    pending = client.get("/v1/studio/webhook/deliveries", headers=owner).json()
    assert [(d["release_id"], d["event"], d["state"], d["attempts"]) for d in pending] == [
        (quiet, "release.failed", "pending", 0)
    ]
    assert client.get("/v1/studio/webhook/deliveries", headers=other).json() == []

    # No URL yet: the job ends with nothing to send. Then a URL that leads to a loopback
    # address (stored by hand: the API refuses it): the delivery is refused and not retried.
    _run_notifications()
    with unit_of_work() as session:
        session.get_one(Studio, studio_id).webhook_url = "http://127.0.0.1:9/hook"
    refused = _failed_release(studio_id, "refused")
    _run_notifications()

    log = client.get("/v1/studio/webhook/deliveries", headers=owner).json()
    by_release = {d["release_id"]: d for d in log}
    assert list(by_release) == [refused, quiet]  # newest first
    assert by_release[quiet]["state"] == "done"
    assert by_release[quiet]["finished_at"] is not None
    assert by_release[refused]["state"] == "failed"
    assert by_release[refused]["attempts"] == 1
    assert by_release[refused]["last_error"]
    with unit_of_work() as session:
        assert session.get_one(Release, refused).title_id == by_release[refused]["title_id"]
    assert client.get("/v1/studio/webhook/deliveries", headers=other).json() == []
    page = client.get("/v1/studio/webhook/deliveries?limit=1&offset=1", headers=owner).json()
    assert [d["release_id"] for d in page] == [quiet]
