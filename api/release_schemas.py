"""The request and response schemas of `api/routes/studio_releases.py`."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from catalog.models import AssetKind
from core.settings import ProtectionProfile
from transcoding import ingest, notify

LANGUAGE = r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$"


class ReleaseCreate(BaseModel):
    label: str = Field(default="Main feature", min_length=1, max_length=200)
    protection: ProtectionProfile | None = Field(
        default=None,
        description="aes128 (whole-segment AES-128 HLS, keys from the key route) or cbcs "
        "(CMAF for HLS and DASH, keys only by DRM license); default: the server's setting",
    )


class AssetRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    kind: AssetKind
    language: str | None
    name: str | None
    filename: str
    size_bytes: int
    status: str
    rejection_code: str | None
    rejection_reason: str | None


class ReleaseWarningRead(BaseModel):
    code: str = Field(description="Stable code, e.g. sprite_failed, audio_language_untagged")
    detail: str
    step: str = Field(description="Pipeline step that raised it (probe, images, package, ...)")


class RenditionQualityRead(BaseModel):
    rendition: str = Field(description="The rendition's name, e.g. 1080p or 1080p-hevc")
    codec: str = Field(description="h264 or hevc")
    width: int
    height: int
    bitrate: int = Field(description="Target average bit rate, bit/s")
    xpsnr_y: float = Field(description="XPSNR of the luma plane against the master, dB")
    ssim_y: float = Field(description="SSIM of the luma plane against the master, 0..1")
    frames: int = Field(description="Frames scored (sampled windows spread over the film)")
    vmaf: float | None = Field(
        default=None, description="VMAF (libvmaf's default model), 0..100; null: not scored"
    )


class ReleaseRead(BaseModel):
    id: str
    title_id: str
    label: str
    protection: str | None = Field(description="aes128 or cbcs; null: the server's default")
    status: str
    attempt: int
    progress_percent: float = Field(description="Of the current phase (encoding, packaging)")
    eta_seconds: int | None
    failure_code: str | None
    failure_reason: str | None = Field(description="What went wrong, in words a studio can act on")
    duration_seconds: float | None
    created_at: datetime
    status_changed_at: datetime
    ready_at: datetime | None
    assets: list[AssetRead]
    outputs: dict[str, Any]
    quality: list[RenditionQualityRead] | None = Field(
        description="Each video rendition scored against the master (docs/transcoding.md, "
        "Quality step); null until scored, or when scoring was off or failed (see warnings)"
    )
    warnings: list[ReleaseWarningRead] = Field(
        description="What did not stop the release but the studio should know (optional "
        "artifacts that failed, untagged or unsupported tracks)"
    )


class UploadCreate(BaseModel):
    kind: AssetKind = Field(description="master, audio (a dub), commentary or subtitle")
    filename: str = Field(min_length=1, max_length=200)
    size_bytes: int = Field(gt=0, le=ingest.MAX_UPLOAD_BYTES)
    language: str | None = Field(default=None, pattern=LANGUAGE, description="BCP 47, e.g. es-419")
    name: str | None = Field(default=None, max_length=100, description="Label shown in players")
    content_type: str | None = Field(default=None, max_length=100)


class PartRead(BaseModel):
    number: int
    size: int
    etag: str
    checksum_sha256: str | None


class UploadRead(BaseModel):
    id: str
    release_id: str
    asset_id: str
    status: str
    size_bytes: int
    part_size: int
    part_count: int
    transport: Literal["s3", "api"] = Field(
        description="s3: PUT parts to presigned URLs; api: PUT them to this API"
    )
    uploaded_parts: list[PartRead]


class PartRequest(BaseModel):
    number: int = Field(ge=1, le=ingest.MAX_PARTS)
    checksum_sha256: str | None = Field(default=None, description="base64 SHA-256 of the part")


class PartUrlsRequest(BaseModel):
    parts: list[PartRequest] = Field(min_length=1, max_length=1000)


class PartTargetRead(BaseModel):
    number: int
    url: str
    method: str
    headers: dict[str, str]


class WebhookSettings(BaseModel):
    url: str | None = Field(
        default=None,
        max_length=2000,
        pattern=r"^https?://[^\s]+$",
        description="Where release.ready and release.failed are POSTed; null turns them off",
    )


class WebhookRead(BaseModel):
    url: str | None
    secret: str = Field(description="HMAC-SHA256 key for the X-PocketCinema-Signature header")
    signature_header: str


class WebhookDeliveryRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    event: str = Field(description="release.ready or release.failed")
    release_id: str
    title_id: str
    state: notify.DeliveryState = Field(
        description="pending, retrying (with back-off), done (a 2xx answer, or no URL was "
        "set then) or failed (no more tries)"
    )
    attempts: int
    last_error: str | None = Field(description="Why the last try failed, e.g. the answer's status")
    created_at: datetime
    next_attempt_at: datetime | None
    finished_at: datetime | None
