"""Resumable uploads of masters and sidecars.

The S3 multipart protocol, whatever the store: create an upload, get a URL per part, PUT the
parts (in any order, in parallel, again after a dropped connection), list what arrived to
resume, complete or abort. With S3 the part URLs are presigned and the bytes go straight to
the bucket, never through our API or a proxy's body-size cap; with the local store the URLs
point at the API, which streams each part to disk. Parts carry a SHA-256 checksum that the
store verifies; uploads left open longer than ``upload_abandon_hours`` are aborted by a
periodic job.
"""

from __future__ import annotations

import contextlib
import math
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import IO

from sqlalchemy.orm import Session

from catalog import service as catalog
from catalog.models import AssetKind, AssetStatus, Release, ReleaseAsset
from core.db import utcnow
from core.errors import Conflict, InvalidInput, NotFound
from core.scope import StudioScope
from core.settings import get_settings
from core.storage import UploadedPart, get_store
from transcoding import detection, repository
from transcoding.models import Upload, UploadStatus

MAX_PARTS = 10_000
MAX_UPLOAD_BYTES = 5 * 1024**4  # 5 TiB, S3's object limit
PART_URL_SECONDS = 6 * 3600
_SHA256_B64 = re.compile(r"^[A-Za-z0-9+/]{43}=$")
_FILENAME = re.compile(r"^[\w.\- ()]{1,200}$")


@dataclass(frozen=True)
class PartTarget:
    number: int
    url: str
    method: str
    headers: dict[str, str]


def part_size_for(size_bytes: int) -> int:
    """The configured part size, grown when needed so a file fits in S3's 10,000 parts."""
    configured = get_settings().multipart_part_size
    needed = math.ceil(size_bytes / MAX_PARTS)
    mib = 1024 * 1024
    return max(configured, math.ceil(needed / mib) * mib)


def start_upload(
    session: Session,
    release: Release,
    *,
    kind: AssetKind,
    filename: str,
    size_bytes: int,
    language: str | None,
    name: str | None,
    content_type: str | None,
) -> Upload:
    if not _FILENAME.match(filename):
        raise InvalidInput(
            "filename: letters, digits, spaces and ._-() only", code="invalid_filename"
        )
    if not 0 < size_bytes <= MAX_UPLOAD_BYTES:
        raise InvalidInput("size_bytes must be between 1 byte and 5 TiB", code="invalid_size")
    if kind is not AssetKind.master and not language:
        raise InvalidInput(
            "dubs, commentary and subtitles need a language", code="language_required"
        )
    asset = catalog.add_asset(
        session,
        release,
        kind=kind,
        language=language,
        name=name,
        filename=filename,
        size_bytes=size_bytes,
    )
    store = get_store()
    upload = Upload(
        studio_id=release.studio_id,
        release_id=release.id,
        asset_id=asset.id,
        storage_key=asset.storage_key,
        multipart_id=store.create_multipart(asset.storage_key, content_type),
        size_bytes=size_bytes,
        part_size=part_size_for(size_bytes),
        content_type=content_type,
    )
    session.add(upload)
    session.flush()
    return upload


def part_count(upload: Upload) -> int:
    return max(1, math.ceil(upload.size_bytes / upload.part_size))


def get_upload(session: Session, upload_id: str, scope: StudioScope) -> Upload:
    upload = repository.find_studio_upload(session, upload_id, scope)
    if upload is None:
        raise NotFound("no such upload", code="upload_not_found")
    return upload


def _require_open(upload: Upload) -> None:
    if upload.status is not UploadStatus.open:
        raise Conflict(f"the upload is {upload.status.value}", code=f"upload_{upload.status.value}")


def _check_part_number(upload: Upload, number: int) -> None:
    if not 1 <= number <= part_count(upload):
        raise InvalidInput(
            f"part numbers run from 1 to {part_count(upload)}", code="invalid_part_number"
        )


def _check_checksum(checksum: str | None) -> None:
    if checksum is not None and not _SHA256_B64.match(checksum):
        raise InvalidInput("checksum must be base64 of a SHA-256 digest", code="invalid_checksum")


def part_targets(
    upload: Upload, numbers: list[int], checksums: dict[int, str], api_base_url: str
) -> list[PartTarget]:
    """Where to PUT each part. The checksum, when given, is bound into the URL (S3) or
    checked on arrival (API), so a corrupted part is refused rather than stored."""
    _require_open(upload)
    store = get_store()
    targets = []
    for number in numbers:
        _check_part_number(upload, number)
        checksum = checksums.get(number)
        _check_checksum(checksum)
        headers = {"x-amz-checksum-sha256": checksum} if checksum else {}
        url = store.presign_part(
            upload.storage_key, upload.multipart_id, number, PART_URL_SECONDS, checksum
        )
        if url is None:
            url = f"{api_base_url}/v1/studio/uploads/{upload.id}/parts/{number}"
        targets.append(PartTarget(number=number, url=url, method="PUT", headers=headers))
    return targets


def receive_part(
    upload: Upload, number: int, body: IO[bytes], checksum: str | None
) -> UploadedPart:
    """Store one part sent through the API (the local store, or clients that cannot reach S3)."""
    _require_open(upload)
    _check_part_number(upload, number)
    _check_checksum(checksum)
    part = get_store().upload_part(upload.storage_key, upload.multipart_id, number, body, checksum)
    expected = expected_part_size(upload, number)
    if part.size != expected:
        # Keep nothing of a short or long part: the client must resend it whole.
        raise InvalidInput(
            f"part {number} must be {expected} bytes, got {part.size}", code="invalid_part_size"
        )
    return part


def expected_part_size(upload: Upload, number: int) -> int:
    return min(upload.part_size, upload.size_bytes - (number - 1) * upload.part_size)


def uploaded_parts(upload: Upload) -> list[UploadedPart]:
    """Parts the store holds whole. A part of the wrong size (a PUT cut short on a store
    that does not verify checksums) is left out, so a resuming client sends it again."""
    if upload.status is not UploadStatus.open:
        return []
    return [
        p
        for p in get_store().list_parts(upload.storage_key, upload.multipart_id)
        if 1 <= p.number <= part_count(upload) and p.size == expected_part_size(upload, p.number)
    ]


def complete(session: Session, upload: Upload) -> ReleaseAsset:
    """Assemble the parts. Refuses while any part is missing or the wrong size (so the
    assembled object always has exactly the declared size)."""
    _require_open(upload)
    parts = uploaded_parts(upload)
    have = {p.number for p in parts}
    missing = [n for n in range(1, part_count(upload) + 1) if n not in have]
    if missing:
        shown = ", ".join(map(str, missing[:20])) + (" ..." if len(missing) > 20 else "")
        raise Conflict(
            f"parts still missing: {shown}", code="parts_missing", missing=missing[:1000]
        )
    get_store().complete_multipart(upload.storage_key, upload.multipart_id, parts)
    upload.status = UploadStatus.completed
    upload.completed_at = utcnow()
    asset = repository.get_asset(session, upload.asset_id)
    asset.status = AssetStatus.uploaded
    # The studio can review the detected tracks before it starts a run.
    detection.request(session, asset.release_id)
    return asset


def abort(session: Session, upload: Upload) -> None:
    _require_open(upload)
    # Already gone on the store's side (e.g. a bucket lifecycle rule) is fine.
    with contextlib.suppress(NotFound):
        get_store().abort_multipart(upload.storage_key, upload.multipart_id)
    upload.status = UploadStatus.aborted
    asset = repository.get_asset(session, upload.asset_id)
    asset.status = AssetStatus.rejected
    asset.rejection_code = "upload_aborted"
    asset.rejection_reason = "the upload was aborted before it completed"


def abort_abandoned(session: Session) -> int:
    """Abort uploads left open longer than the configured age; returns how many."""
    cutoff = utcnow() - timedelta(hours=get_settings().upload_abandon_hours)
    stale = repository.abandoned_uploads(session, cutoff)
    for upload in stale:
        abort(session, upload)
    return len(stale)
