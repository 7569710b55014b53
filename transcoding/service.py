"""Transcoding rules the API and the jobs share: starting a run, progress, failure, fan-in."""

from __future__ import annotations

from sqlalchemy.orm import Session

from catalog import service as catalog
from catalog.models import AssetKind, AssetStatus, Release, ReleaseStatus
from core.db import utcnow
from core.errors import Conflict
from core.outbox import enqueue
from transcoding import repository

PREPARE_JOB = "transcoding.release.prepare"
CHUNK_JOB = "transcoding.chunk.encode"
PACKAGE_JOB = "transcoding.release.package"
NOTIFY_JOB = "transcoding.release.notify"
ABANDONED_UPLOADS_JOB = "transcoding.uploads.abort_abandoned"

_BUSY = {
    ReleaseStatus.queued,
    ReleaseStatus.probing,
    ReleaseStatus.encoding,
    ReleaseStatus.packaging,
}


def start_transcode(session: Session, release: Release) -> None:
    """Queue a new run. A failed release keeps its master and may be started again."""
    if release.status in _BUSY:
        raise Conflict("this release is already being transcoded", code="release_busy")
    masters = [
        a
        for a in catalog.assets(session, release.id)
        if a.kind is AssetKind.master and a.status is AssetStatus.uploaded
    ]
    if not masters:
        raise Conflict("upload and complete the master first", code="master_missing")
    release.attempt += 1
    catalog.set_status(release, ReleaseStatus.queued)
    enqueue(session, PREPARE_JOB, release_id=release.id, attempt=release.attempt)


def fail_release(
    session: Session, release_id: str, attempt: int | None, code: str, reason: str
) -> None:
    """Record a failure a studio can act on, unless a newer run has started since."""
    release = catalog.get_release(session, release_id, for_update=True)
    if attempt is not None and release.attempt != attempt:
        return
    if release.status is ReleaseStatus.failed:
        return
    catalog.set_status(release, ReleaseStatus.failed, failure_code=code, failure_reason=reason)
    enqueue(
        session, NOTIFY_JOB, release_id=release.id, event="release.failed", attempt=release.attempt
    )


def record_chunk_done(
    session: Session, chunk_id: str, outputs: dict[str, str], worker: str
) -> bool:
    """Mark a chunk done and, if it was the last, enqueue packaging exactly once.

    Both updates are conditional and happen in the caller's transaction: a duplicate
    completion changes nothing, and of two chunks finishing at once only one sees
    ``chunks_done == chunks_total`` with ``package_enqueued_at`` still empty (the row lock
    of the UPDATE serializes them on PostgreSQL; SQLite serializes all writers)."""
    now = utcnow()
    if not repository.mark_chunk_done(session, chunk_id, now, outputs, worker):
        return False
    chunk = repository.get_chunk(session, chunk_id)
    repository.count_chunk_done(session, chunk.run_id)
    if repository.claim_packaging(session, chunk.run_id, now):
        enqueue(session, PACKAGE_JOB, queue="package", run_id=chunk.run_id)
        return True
    return False


def update_encode_progress(session: Session, chunk_id: str, fraction: float) -> None:
    """Store one chunk's progress and refresh the release's percent and ETA."""
    chunk = repository.find_chunk(session, chunk_id)
    if chunk is None or chunk.done_at is not None:
        return
    chunk.progress = max(chunk.progress, min(fraction, 1.0))
    chunk.updated_at = utcnow()
    run = repository.get_run(session, chunk.run_id)
    release = repository.get_release(session, run.release_id)
    if release.attempt != run.attempt or release.status is not ReleaseStatus.encoding:
        return
    session.flush()
    chunks = repository.chunks_of(session, run.id)
    total = sum(c.duration_seconds for c in chunks) or 1.0
    done = sum(c.duration_seconds * c.progress for c in chunks)
    share = done / total
    release.progress = share
    if run.encode_started_at is not None and share > 0.01:
        elapsed = (utcnow() - run.encode_started_at).total_seconds()
        release.eta_seconds = int(elapsed * (1 - share) / share)
