"""Transcoding rules the API and the jobs share: starting a run, progress, failure, fan-in."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from catalog import service as catalog
from catalog.models import AssetKind, AssetStatus, Release, ReleaseStatus, ReleaseTrack
from catalog.tracks import TrackChanges
from core.db import utcnow
from core.errors import Conflict
from core.outbox import enqueue
from core.settings import get_settings
from transcoding import repository, track_publishing

PREPARE_JOB = "transcoding.release.prepare"
CHUNK_JOB = "transcoding.chunk.encode"
AUDIO_JOB = "transcoding.audio.encode"
PACKAGE_JOB = "transcoding.release.package"
NOTIFY_JOB = "transcoding.release.notify"
ABANDONED_UPLOADS_JOB = "transcoding.uploads.abort_abandoned"
STALLED_JOB = "transcoding.releases.fail_stalled"

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
    catalog.clear_warnings(release)
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


def fail_stalled(session: Session, now: datetime | None = None) -> list[str]:
    """Fail every busy release that has shown no progress for ``TRANSCODE_STALL_SECONDS``.

    The class of hangs this ends: a job marked done that did not do its work, a worker
    that died more often than the retries allow, a job the broker lost and the sweep
    cannot reach, an FFmpeg that stopped writing. Whatever the cause, the release ends
    ``failed`` with ``stalled`` and the studio can start it again (encoded chunks are
    reused). Returns the ids failed."""
    now = now or utcnow()
    cutoff = now - timedelta(seconds=get_settings().transcode_stall_seconds)
    stalled = repository.stalled_releases(session, _BUSY, cutoff)
    for release in stalled:
        idle = int((now - (release.progress_at or release.status_changed_at)).total_seconds())
        fail_release(
            session,
            release.id,
            release.attempt,
            "stalled",
            f"The transcode made no progress for {idle} s while {release.status.value}; it "
            "was stopped. Start the transcode again (encoded chunks are reused); if it "
            "stalls again, contact support with the release id.",
        )
    return [r.id for r in stalled]


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


def update_encode_progress(session: Session, chunk_id: str, fraction: float) -> bool:
    """Store one chunk's progress and refresh the release's percent and ETA. Returns False
    when the release no longer wants this chunk (failed, stalled, started again), so the
    encode can stop instead of running on for nothing."""
    chunk = repository.find_chunk(session, chunk_id)
    if chunk is None or chunk.done_at is not None:
        return False
    chunk.progress = max(chunk.progress, min(fraction, 1.0))
    chunk.updated_at = utcnow()
    run = repository.get_run(session, chunk.run_id)
    release = repository.get_release(session, run.release_id)
    if release.attempt != run.attempt or release.status is not ReleaseStatus.encoding:
        return False
    release.progress_at = chunk.updated_at
    session.flush()
    chunks = repository.chunks_of(session, run.id)
    total = sum(c.duration_seconds for c in chunks) or 1.0
    done = sum(c.duration_seconds * c.progress for c in chunks)
    share = done / total
    release.progress = share
    if run.encode_started_at is not None and share > 0.01:
        elapsed = (utcnow() - run.encode_started_at).total_seconds()
        release.eta_seconds = int(elapsed * (1 - share) / share)
    return True


def update_packaging_progress(
    session: Session, release_id: str, attempt: int, fraction: float
) -> bool:
    """Packaging's percent and sign of life; False when the run was superseded."""
    release = repository.find_release(session, release_id)
    if release is None or release.attempt != attempt:
        return False
    if release.status is not ReleaseStatus.packaging:
        return False
    release.progress = max(release.progress, min(fraction, 1.0))
    release.progress_at = utcnow()
    return True


def relabel_track(
    session: Session, release: Release, track_id: str, changes: TrackChanges
) -> ReleaseTrack:
    """A studio's correction of a detected track (see transcoding.track_publishing)."""
    return track_publishing.relabel(session, release, track_id, changes)


def set_channel_map(session: Session, release: Release, groups: list[list[int]] | None) -> None:
    """How the master's mono audio streams become tracks, from the next transcode run on
    (grouping changes what is encoded; labels alone never need a run). None: the default."""
    if release.status in _BUSY:
        raise Conflict(
            "the release is being transcoded; set the channel map before or after",
            code="release_busy",
        )
    release.channel_map = groups
    session.flush()
