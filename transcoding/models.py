"""Ingest and pipeline state: resumable uploads, transcode runs and their chunks.

Fan-in lives here, in the database: each chunk's completion increments its run's
``chunks_done`` in the same transaction that marks the chunk done, and exactly one
transaction can flip ``package_enqueued_at`` from NULL, so packaging is enqueued once
whatever order or how many times chunks finish.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Enum, Float, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, IdMixin, TimestampMixin


class UploadStatus(StrEnum):
    open = "open"
    completed = "completed"
    aborted = "aborted"


class Upload(IdMixin, TimestampMixin, Base):
    __tablename__ = "upload"

    studio_id: Mapped[str] = mapped_column(ForeignKey("studio.id"), index=True)
    release_id: Mapped[str] = mapped_column(ForeignKey("release.id"), index=True)
    asset_id: Mapped[str] = mapped_column(ForeignKey("release_asset.id"), unique=True)
    storage_key: Mapped[str] = mapped_column(String(500))
    multipart_id: Mapped[str] = mapped_column(String(1024))  # the store's upload id
    size_bytes: Mapped[int]
    part_size: Mapped[int]
    content_type: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[UploadStatus] = mapped_column(
        Enum(UploadStatus, native_enum=False, length=20), default=UploadStatus.open, index=True
    )
    completed_at: Mapped[datetime | None]


class TranscodeRun(IdMixin, TimestampMixin, Base):
    """One attempt at turning a release's master into its HLS ladder."""

    __tablename__ = "transcode_run"
    __table_args__ = (UniqueConstraint("release_id", "attempt"),)

    release_id: Mapped[str] = mapped_column(ForeignKey("release.id"), index=True)
    attempt: Mapped[int]
    plan: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    chunks_total: Mapped[int] = mapped_column(default=0)
    chunks_done: Mapped[int] = mapped_column(default=0)
    encode_started_at: Mapped[datetime | None]
    package_enqueued_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class EncodeChunk(IdMixin, Base):
    __tablename__ = "encode_chunk"
    __table_args__ = (UniqueConstraint("run_id", "index"),)

    run_id: Mapped[str] = mapped_column(ForeignKey("transcode_run.id"), index=True)
    index: Mapped[int]
    start_seconds: Mapped[float] = mapped_column(Float)
    duration_seconds: Mapped[float] = mapped_column(Float)
    progress: Mapped[float] = mapped_column(Float, default=0.0)  # 0..1
    done_at: Mapped[datetime | None]
    outputs: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # rung -> storage key
    last_error: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime | None]
    worker: Mapped[str | None] = mapped_column(String(200))
