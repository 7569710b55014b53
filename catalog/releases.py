"""Releases: the playable versions of a title, their uploaded assets and their HLS output.

A release belongs to one title (and so one studio). Its master, dubs, commentary and
subtitle files are :class:`ReleaseAsset` rows; the transcoding pipeline moves the release
through :class:`ReleaseStatus` and records what it produced, which is all playback needs to
know (playlist location, content key id, tracks). The catalog owns this record so that
playback (``tickets``/``drm``) can read it without depending on ``transcoding``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Enum, Float, ForeignKey, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from core.db import Base, IdMixin, TimestampMixin, utcnow
from core.errors import Conflict, NotFound


class ReleaseStatus(StrEnum):
    awaiting_upload = "awaiting_upload"
    queued = "queued"
    probing = "probing"
    encoding = "encoding"
    packaging = "packaging"
    ready = "ready"
    failed = "failed"


class AssetKind(StrEnum):
    master = "master"
    audio = "audio"  # a dub
    commentary = "commentary"  # audio that explains cultural background
    subtitle = "subtitle"


class AssetStatus(StrEnum):
    uploading = "uploading"
    uploaded = "uploaded"
    rejected = "rejected"


def _enum(kind: type[StrEnum]) -> Enum:
    return Enum(kind, native_enum=False, length=30)


class Release(IdMixin, TimestampMixin, Base):
    __tablename__ = "release"

    title_id: Mapped[str] = mapped_column(ForeignKey("title.id"), index=True)
    studio_id: Mapped[str] = mapped_column(ForeignKey("studio.id"), index=True)
    label: Mapped[str] = mapped_column(String(200), default="Main feature")
    status: Mapped[ReleaseStatus] = mapped_column(
        _enum(ReleaseStatus), default=ReleaseStatus.awaiting_upload
    )
    attempt: Mapped[int] = mapped_column(default=0)  # one per transcode run
    progress: Mapped[float] = mapped_column(Float, default=0.0)  # 0..1 of the current phase
    eta_seconds: Mapped[int | None]
    failure_code: Mapped[str | None] = mapped_column(String(80))
    failure_reason: Mapped[str | None] = mapped_column(Text)
    duration_seconds: Mapped[float | None] = mapped_column(Float)
    hls_prefix: Mapped[str | None] = mapped_column(String(500))
    master_playlist_key: Mapped[str | None] = mapped_column(String(500))
    content_key_id: Mapped[str | None] = mapped_column(String(32))
    poster_key: Mapped[str | None] = mapped_column(String(500))
    sprite_key: Mapped[str | None] = mapped_column(String(500))
    sprite_vtt_key: Mapped[str | None] = mapped_column(String(500))
    # What the packager produced: variants, audio and subtitle renditions (for apps and QA).
    outputs: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # What the studio should know but that did not stop the release: an optional artifact
    # that failed, an untagged audio track, a bitmap subtitle that needs OCR. A list of
    # {"code", "detail", "step"} dicts, cleared at the start of each transcode run.
    warnings: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    # How the master's mono audio streams are grouped into tracks, set by the studio:
    # [[1, 2], [3, 4]] (audio streams numbered from 1 in file order); None means the
    # default map (transcoding/tracks.py).
    channel_map: Mapped[list[list[int]] | None] = mapped_column(JSON)
    status_changed_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The pipeline's last sign of life for this release (a status change, a progress
    # report). A busy release whose last sign is too old is failed as ``stalled``.
    progress_at: Mapped[datetime | None]
    ready_at: Mapped[datetime | None]


class ReleaseAsset(IdMixin, TimestampMixin, Base):
    __tablename__ = "release_asset"

    release_id: Mapped[str] = mapped_column(ForeignKey("release.id"), index=True)
    kind: Mapped[AssetKind] = mapped_column(_enum(AssetKind))
    language: Mapped[str | None] = mapped_column(String(35))  # BCP 47
    name: Mapped[str | None] = mapped_column(String(100))  # label shown in the player
    filename: Mapped[str] = mapped_column(String(300))
    storage_key: Mapped[str] = mapped_column(String(500))
    size_bytes: Mapped[int]
    status: Mapped[AssetStatus] = mapped_column(_enum(AssetStatus), default=AssetStatus.uploading)
    rejection_code: Mapped[str | None] = mapped_column(String(80))
    rejection_reason: Mapped[str | None] = mapped_column(Text)


# --- service functions ----------------------------------------------------------------------


def create_release(session: Session, *, title_id: str, studio_id: str, label: str) -> Release:
    release = Release(title_id=title_id, studio_id=studio_id, label=label)
    session.add(release)
    session.flush()
    return release


def get_release(session: Session, release_id: str, *, for_update: bool = False) -> Release:
    stmt = select(Release).where(Release.id == release_id)
    if for_update:
        stmt = stmt.with_for_update()
    release = session.scalar(stmt)
    if release is None:
        raise NotFound("no such release", code="release_not_found")
    return release


def get_studio_release(session: Session, release_id: str, studio_id: str | None) -> Release:
    """A studio sees only its own releases; another studio's is "not found", not "forbidden",
    so release ids cannot be probed."""
    release = session.get(Release, release_id)
    if release is None or (studio_id is not None and release.studio_id != studio_id):
        raise NotFound("no such release", code="release_not_found")
    return release


def list_releases(
    session: Session, *, studio_id: str | None, title_id: str | None, offset: int, limit: int
) -> Sequence[Release]:
    stmt = (
        select(Release).order_by(Release.created_at.desc(), Release.id).offset(offset).limit(limit)
    )
    if studio_id is not None:
        stmt = stmt.where(Release.studio_id == studio_id)
    if title_id is not None:
        stmt = stmt.where(Release.title_id == title_id)
    return session.scalars(stmt).all()


def assets(session: Session, release_id: str) -> Sequence[ReleaseAsset]:
    return session.scalars(
        select(ReleaseAsset)
        .where(ReleaseAsset.release_id == release_id)
        .order_by(ReleaseAsset.created_at, ReleaseAsset.id)
    ).all()


def add_asset(
    session: Session,
    release: Release,
    *,
    kind: AssetKind,
    language: str | None,
    name: str | None,
    filename: str,
    size_bytes: int,
) -> ReleaseAsset:
    if release.status not in (
        ReleaseStatus.awaiting_upload,
        ReleaseStatus.failed,
        ReleaseStatus.ready,
    ):
        raise Conflict(
            "the release is being transcoded; wait for it to finish", code="release_busy"
        )
    if kind is AssetKind.master and any(
        a.kind is AssetKind.master and a.status is not AssetStatus.rejected
        for a in assets(session, release.id)
    ):
        raise Conflict("this release already has a master", code="master_exists")
    asset = ReleaseAsset(
        release_id=release.id,
        kind=kind,
        language=language,
        name=name,
        filename=filename,
        storage_key="",
        size_bytes=size_bytes,
    )
    session.add(asset)
    session.flush()
    suffix = filename.rsplit(".", 1)[-1].lower() if "." in filename else "bin"
    asset.storage_key = f"releases/{release.id}/assets/{asset.id}.{suffix}"
    return asset


def set_status(
    release: Release,
    status: ReleaseStatus,
    *,
    progress: float = 0.0,
    eta_seconds: int | None = None,
    failure_code: str | None = None,
    failure_reason: str | None = None,
) -> None:
    now = utcnow()
    if release.status is not status:
        release.status_changed_at = now
    release.progress_at = now
    release.status = status
    release.progress = progress
    release.eta_seconds = eta_seconds
    release.failure_code = failure_code
    release.failure_reason = failure_reason
    if status is ReleaseStatus.ready:
        release.ready_at = utcnow()


def add_warning(release: Release, *, code: str, detail: str, step: str) -> None:
    """Record a warning on the release (once per code and detail).

    Assigns a new list rather than appending in place: SQLAlchemy does not track in-place
    changes to a plain JSON column."""
    entry = {"code": code, "detail": detail, "step": step}
    current = list(release.warnings or [])
    if entry not in current:
        release.warnings = [*current, entry]


def clear_warnings(release: Release) -> None:
    release.warnings = []


def playable_title_ids(session: Session, title_ids: Sequence[str]) -> set[str]:
    """Which of these titles have a ready release (one query for a whole catalog page)."""
    if not title_ids:
        return set()
    return set(
        session.scalars(
            select(Release.title_id)
            .where(Release.title_id.in_(title_ids), Release.status == ReleaseStatus.ready)
            .distinct()
        )
    )


def playable_release(session: Session, title_id: str) -> Release:
    """The newest ready release of a title: what a ticket holder watches."""
    release = session.scalar(
        select(Release)
        .where(Release.title_id == title_id, Release.status == ReleaseStatus.ready)
        .order_by(Release.ready_at.desc())
        .limit(1)
    )
    if release is None:
        raise NotFound("this title has no playable release yet", code="release_not_ready")
    return release
