"""Celery jobs of the transcoding pipeline (see transcoding.pipeline for the steps)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from core.jobs import job
from core.settings import get_settings
from transcoding import (
    detection,
    ingest,
    notify,
    pipeline,
    repository,
    service,
    track_publishing,
)

_LEASE = get_settings().transcode_lease_seconds


def _fail_release(session: Session, reason: str, code: str, args: dict[str, Any]) -> None:
    release_id = args.get("release_id")
    attempt = args.get("attempt")
    if release_id is None and "chunk_id" in args:
        chunk = repository.find_chunk(session, args["chunk_id"])
        run = repository.find_run(session, chunk.run_id) if chunk else None
        release_id, attempt = (run.release_id, run.attempt) if run else (None, None)
    if release_id is None and "run_id" in args:
        run = repository.find_run(session, args["run_id"])
        release_id, attempt = (run.release_id, run.attempt) if run else (None, None)
    if release_id is not None:
        service.fail_release(session, release_id, attempt, code, reason)


@job(service.PREPARE_JOB, lease_seconds=900, max_attempts=3, on_failure=_fail_release)
def prepare(session: Session, release_id: str, attempt: int) -> None:
    pipeline.prepare(session, release_id, attempt)


@job(
    service.CHUNK_JOB,
    queue="transcode",
    lease_seconds=_LEASE,
    max_attempts=3,
    on_failure=_fail_release,
)
def encode_chunk(session: Session, chunk_id: str) -> None:
    pipeline.encode_chunk(session, chunk_id)


@job(service.AUDIO_JOB, queue="transcode", lease_seconds=_LEASE, max_attempts=2)
def encode_audio(session: Session, run_id: str) -> None:
    pipeline.encode_audio_early(session, run_id)


@job(
    service.PACKAGE_JOB,
    queue="package",
    lease_seconds=max(_LEASE, 1800),
    max_attempts=3,
    on_failure=_fail_release,
)
def package(session: Session, run_id: str) -> None:
    pipeline.package(session, run_id)


@job(detection.DETECT_JOB, lease_seconds=600, max_attempts=3)
def detect_tracks(session: Session, release_id: str) -> None:
    detection.detect(session, release_id)


@job(track_publishing.REPUBLISH_JOB, lease_seconds=120, max_attempts=5)
def republish_tracks(session: Session, release_id: str, attempt: int) -> None:
    track_publishing.republish(session, release_id, attempt)


@job(service.NOTIFY_JOB, lease_seconds=60, max_attempts=8, backoff_seconds=5.0)
def notify_studio(session: Session, release_id: str, event: str, attempt: int) -> None:
    notify.deliver(session, release_id, event)


@job(service.ABANDONED_UPLOADS_JOB, lease_seconds=600)
def abort_abandoned_uploads(session: Session) -> None:
    ingest.abort_abandoned(session)


@job(service.STALLED_JOB, lease_seconds=120)
def fail_stalled_releases(session: Session) -> None:
    service.fail_stalled(session)
