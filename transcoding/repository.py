"""Transcoding SQL: uploads, runs and their chunks, and the rows the pipeline reads by id."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, func, select, update
from sqlalchemy.orm import Session

from accounts.models import Studio
from catalog.models import Release, ReleaseAsset, ReleaseStatus, Title
from core.outbox import OutboxJob
from core.scope import StudioScope
from transcoding.models import EncodeChunk, TranscodeRun, Upload, UploadStatus


def get_release(session: Session, release_id: str) -> Release:
    return session.get_one(Release, release_id)


def find_release(session: Session, release_id: str) -> Release | None:
    return session.get(Release, release_id)


def stalled_releases(
    session: Session, busy: Collection[ReleaseStatus], cutoff: datetime
) -> Sequence[Release]:
    """Busy releases whose last sign of life (progress, else status change) is older than
    ``cutoff``, locked for the caller."""
    last_sign = func.coalesce(Release.progress_at, Release.status_changed_at)
    return session.scalars(
        select(Release).where(Release.status.in_(busy), last_sign < cutoff).with_for_update()
    ).all()


def get_asset(session: Session, asset_id: str) -> ReleaseAsset:
    return session.get_one(ReleaseAsset, asset_id)


def get_title(session: Session, title_id: str) -> Title:
    return session.get_one(Title, title_id)


def get_studio(session: Session, studio_id: str) -> Studio:
    return session.get_one(Studio, studio_id)


# --- uploads --------------------------------------------------------------------------------


def find_studio_upload(session: Session, upload_id: str, scope: StudioScope) -> Upload | None:
    return session.scalar(
        select(Upload).where(Upload.id == upload_id, scope.where(Upload.studio_id))
    )


def abandoned_uploads(session: Session, cutoff: datetime, limit: int = 500) -> Sequence[Upload]:
    return session.scalars(
        select(Upload)
        .where(Upload.status == UploadStatus.open, Upload.created_at < cutoff)
        .limit(limit)
    ).all()


# --- runs and chunks ------------------------------------------------------------------------


def find_chunk(session: Session, chunk_id: str) -> EncodeChunk | None:
    return session.get(EncodeChunk, chunk_id)


def get_chunk(session: Session, chunk_id: str) -> EncodeChunk:
    return session.get_one(EncodeChunk, chunk_id)


def find_run(session: Session, run_id: str) -> TranscodeRun | None:
    return session.get(TranscodeRun, run_id)


def get_run(session: Session, run_id: str) -> TranscodeRun:
    return session.get_one(TranscodeRun, run_id)


def current_run(session: Session, release: Release) -> TranscodeRun | None:
    return session.scalar(
        select(TranscodeRun).where(
            TranscodeRun.release_id == release.id, TranscodeRun.attempt == release.attempt
        )
    )


def chunks_in_order(session: Session, run_id: str) -> Sequence[EncodeChunk]:
    return session.scalars(
        select(EncodeChunk).where(EncodeChunk.run_id == run_id).order_by(EncodeChunk.index)
    ).all()


def last_chunk_index(session: Session, run_id: str) -> int | None:
    return session.scalar(
        select(EncodeChunk.index)
        .where(EncodeChunk.run_id == run_id)
        .order_by(EncodeChunk.index.desc())
    )


def earlier_done_chunks(
    session: Session, release_id: str, attempt: int
) -> Sequence[Row[int, dict[str, Any], dict[str, Any]]]:
    """(index, outputs, run plan) of the done chunks of this release's earlier runs, oldest
    run first."""
    return session.execute(
        select(EncodeChunk.index, EncodeChunk.outputs, TranscodeRun.plan)
        .join(TranscodeRun, EncodeChunk.run_id == TranscodeRun.id)
        .where(
            TranscodeRun.release_id == release_id,
            TranscodeRun.attempt < attempt,
            EncodeChunk.done_at.is_not(None),
        )
        .order_by(TranscodeRun.attempt)
    ).all()


def earlier_run_plans(session: Session, release_id: str, attempt: int) -> Sequence[dict[str, Any]]:
    """The plans of this release's earlier runs, newest first."""
    return session.scalars(
        select(TranscodeRun.plan)
        .where(TranscodeRun.release_id == release_id, TranscodeRun.attempt < attempt)
        .order_by(TranscodeRun.attempt.desc())
    ).all()


def chunks_of(session: Session, run_id: str) -> Sequence[EncodeChunk]:
    return session.scalars(select(EncodeChunk).where(EncodeChunk.run_id == run_id)).all()


def mark_chunk_done(
    session: Session, chunk_id: str, now: datetime, outputs: dict[str, str], worker: str
) -> bool:
    """Conditional: True only for the call that moved the chunk to done."""
    marked = session.execute(
        update(EncodeChunk)
        .where(EncodeChunk.id == chunk_id, EncodeChunk.done_at.is_(None))
        .values(done_at=now, progress=1.0, outputs=outputs, updated_at=now, worker=worker)
        .execution_options(synchronize_session=False)
    )
    return bool(marked.rowcount == 1)  # type: ignore[attr-defined]


def count_chunk_done(session: Session, run_id: str) -> None:
    session.execute(
        update(TranscodeRun)
        .where(TranscodeRun.id == run_id)
        .values(chunks_done=TranscodeRun.chunks_done + 1)
        .execution_options(synchronize_session=False)
    )


def claim_packaging(session: Session, run_id: str, now: datetime) -> bool:
    """True for exactly one caller once every chunk is done (the row lock serializes)."""
    last = session.execute(
        update(TranscodeRun)
        .where(
            TranscodeRun.id == run_id,
            TranscodeRun.chunks_done == TranscodeRun.chunks_total,
            TranscodeRun.package_enqueued_at.is_(None),
        )
        .values(package_enqueued_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(last.rowcount == 1)  # type: ignore[attr-defined]


# --- webhook deliveries ---------------------------------------------------------------------


def webhook_deliveries(
    session: Session, task: str, scope: StudioScope, offset: int, limit: int
) -> Sequence[Row[OutboxJob, str]]:
    """A studio's notification jobs (the outbox rows are the delivery log), newest first,
    with each one's title id; the studio is the release's, read through the job's argument."""
    release_id = OutboxJob.args["release_id"].as_string()
    return session.execute(
        select(OutboxJob, Release.title_id)
        .join(Release, Release.id == release_id)
        .where(OutboxJob.task == task, scope.where(Release.studio_id))
        .order_by(OutboxJob.created_at.desc(), OutboxJob.id.desc())
        .offset(offset)
        .limit(limit)
    ).all()
