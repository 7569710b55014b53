"""Pipeline bookkeeping in the database: fan-in, retries, abandoned uploads, webhooks."""

from __future__ import annotations

import io
import threading
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from accounts.models import Role
from catalog import service as catalog
from catalog.models import AssetKind, AssetStatus, Release, ReleaseStatus
from core.db import unit_of_work, utcnow
from core.errors import NotFound
from core.outbox import OutboxJob
from core.storage import get_store
from tests.helpers import auth_header, create_studio, create_title, create_user
from transcoding import ingest, service
from transcoding.models import EncodeChunk, TranscodeRun, Upload, UploadStatus

pytestmark = pytest.mark.usefixtures("db")


def _release_with_run(chunks: int, n: int = 0) -> tuple[str, list[str]]:
    studio = create_studio(f"Studio {n}")
    title = create_title(studio.id, slug=f"film-{n}")
    with unit_of_work() as session:
        release = catalog.create_release(session, title_id=title.id, studio_id=studio.id, label="x")
        release.attempt = 1
        catalog.set_status(release, ReleaseStatus.encoding)
        run = TranscodeRun(release_id=release.id, attempt=1, chunks_total=chunks, plan={})
        session.add(run)
        session.flush()
        rows = [
            EncodeChunk(run_id=run.id, index=i, start_seconds=6.0 * i, duration_seconds=6.0)
            for i in range(chunks)
        ]
        session.add_all(rows)
        session.flush()
        return release.id, [r.id for r in rows]


def _package_jobs() -> int:
    with unit_of_work() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(OutboxJob)
                .where(OutboxJob.task == service.PACKAGE_JOB)
            )
            or 0
        )


def test_packaging_is_enqueued_once_when_the_last_chunk_finishes() -> None:
    _, chunk_ids = _release_with_run(3)
    outcomes = []
    for chunk_id in [chunk_ids[2], chunk_ids[0], chunk_ids[2], chunk_ids[1], chunk_ids[1]]:
        with unit_of_work() as session:
            outcomes.append(service.record_chunk_done(session, chunk_id, {"540p": "k"}, "w1"))
    assert outcomes == [False, False, False, True, False]
    assert _package_jobs() == 1
    with unit_of_work() as session:
        run = session.scalars(select(TranscodeRun)).one()
        assert (run.chunks_done, run.chunks_total) == (3, 3)


@pytest.mark.postgres
def test_concurrent_last_chunks_enqueue_packaging_once() -> None:
    """Chunks finishing at the same moment on different workers (PostgreSQL row locks)."""
    for n in range(5):
        _, chunk_ids = _release_with_run(8, n)
        barrier = threading.Barrier(len(chunk_ids))

        def finish(chunk_id: str, barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            with unit_of_work() as session:
                service.record_chunk_done(session, chunk_id, {"540p": "k"}, "w")

        threads = [threading.Thread(target=finish, args=(c,)) for c in chunk_ids]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert _package_jobs() == 5


def test_a_failed_release_keeps_its_master_and_can_be_retried(client: TestClient) -> None:
    studio = create_studio()
    headers = auth_header(create_user("ops@studio.example", Role.studio, studio.id))
    title = create_title(studio.id)
    with unit_of_work() as session:
        release = catalog.create_release(session, title_id=title.id, studio_id=studio.id, label="x")
        asset = catalog.add_asset(
            session,
            release,
            kind=AssetKind.master,
            language=None,
            name=None,
            filename="m.mov",
            size_bytes=10,
        )
        asset.status = AssetStatus.uploaded
        service.start_transcode(session, release)
        release_id = release.id
    with unit_of_work() as session:
        service.fail_release(session, release_id, 1, "encoder_crashed", "FFmpeg exited with code 1")
    failed = client.get(f"/v1/studio/releases/{release_id}", headers=headers).json()
    assert (failed["status"], failed["failure_code"]) == ("failed", "encoder_crashed")
    busy = client.post(f"/v1/studio/releases/{release_id}/transcode", headers=headers)
    assert busy.status_code == 202
    retried = busy.json()
    assert (retried["status"], retried["attempt"], retried["failure_code"]) == ("queued", 2, None)
    assert [a["status"] for a in retried["assets"]] == ["uploaded"]
    again = client.post(f"/v1/studio/releases/{release_id}/transcode", headers=headers)
    assert again.json()["code"] == "release_busy"
    # A failure reported by the superseded first run no longer touches the release.
    with unit_of_work() as session:
        service.fail_release(session, release_id, 1, "late", "a stale worker")
        assert session.get_one(Release, release_id).status is ReleaseStatus.queued


def test_abandoned_uploads_are_aborted_and_their_parts_deleted() -> None:
    studio = create_studio()
    title = create_title(studio.id)
    with unit_of_work() as session:
        release = catalog.create_release(session, title_id=title.id, studio_id=studio.id, label="x")
        old = ingest.start_upload(
            session,
            release,
            kind=AssetKind.master,
            filename="old.mov",
            size_bytes=3,
            language=None,
            name=None,
            content_type=None,
        )
        fresh = ingest.start_upload(
            session,
            release,
            kind=AssetKind.subtitle,
            filename="en.srt",
            size_bytes=3,
            language="en",
            name=None,
            content_type=None,
        )
        old.created_at = utcnow() - timedelta(hours=25)
        old_id, fresh_id = old.id, fresh.id
    with unit_of_work() as session:
        upload = session.get_one(Upload, old_id)
        ingest.receive_part(upload, 1, io.BytesIO(b"abc"), None)
    with unit_of_work() as session:
        assert ingest.abort_abandoned(session) == 1
    with unit_of_work() as session:
        old_row, fresh_row = session.get_one(Upload, old_id), session.get_one(Upload, fresh_id)
        assert (old_row.status, fresh_row.status) == (UploadStatus.aborted, UploadStatus.open)
        with pytest.raises(NotFound):
            get_store().list_parts(old_row.storage_key, old_row.multipart_id)


def test_studio_sets_its_webhook_and_gets_a_secret(client: TestClient) -> None:
    studio = create_studio()
    headers = auth_header(create_user("dev@studio.example", Role.studio, studio.id))
    bad = client.put("/v1/studio/webhook", json={"url": "ftp://nope"}, headers=headers)
    assert bad.status_code == 422
    saved = client.put(
        "/v1/studio/webhook", json={"url": "https://hooks.studio.example/pc"}, headers=headers
    ).json()
    assert saved["url"] == "https://hooks.studio.example/pc"
    assert len(saved["secret"]) == 64
    assert client.get("/v1/studio/webhook", headers=headers).json() == saved
    other = create_studio("Other")
    other_secret = client.get(
        "/v1/studio/webhook", headers=auth_header(create_user("x@o.example", Role.studio, other.id))
    ).json()["secret"]
    assert other_secret != saved["secret"]
