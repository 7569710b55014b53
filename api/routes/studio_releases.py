"""Studio routes: releases, resumable uploads of masters and sidecars, transcoding status."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Request, status
from fastapi.concurrency import run_in_threadpool

from api.contract import problems
from api.deps import CallerScope, DbSession, PageParams, ReadDb, StudioUser
from api.release_schemas import (
    AssetRead,
    PartRead,
    PartTargetRead,
    PartUrlsRequest,
    ReleaseCreate,
    ReleaseRead,
    ReleaseWarningRead,
    RenditionQualityRead,
    UploadCreate,
    UploadRead,
    WebhookDeliveryRead,
    WebhookRead,
    WebhookSettings,
)
from catalog import service as catalog
from catalog.models import Release, ReleaseAsset
from core.db import unit_of_work
from core.errors import InvalidInput
from core.settings import get_settings
from transcoding import ingest, notify
from transcoding import service as transcoding

router = APIRouter(prefix="/v1/studio", tags=["studio: releases"])

Id = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[0-9a-f]+$")]


def _release_read(
    session: Any, release: Release, assets: Sequence[ReleaseAsset] | None = None
) -> ReleaseRead:
    """``assets`` when the caller loaded a page's assets at once; else read here."""
    if assets is None:
        assets = catalog.assets(session, release.id)
    return ReleaseRead(
        id=release.id,
        title_id=release.title_id,
        label=release.label,
        protection=release.protection_profile,
        status=release.status.value,
        attempt=release.attempt,
        progress_percent=round(release.progress * 100, 1),
        eta_seconds=release.eta_seconds,
        failure_code=release.failure_code,
        failure_reason=release.failure_reason,
        duration_seconds=release.duration_seconds,
        created_at=release.created_at,
        status_changed_at=release.status_changed_at,
        ready_at=release.ready_at,
        assets=[AssetRead.model_validate(a) for a in assets],
        outputs=release.outputs or {},
        quality=(
            [RenditionQualityRead.model_validate(q) for q in release.quality]
            if release.quality is not None
            else None
        ),
        warnings=[ReleaseWarningRead.model_validate(w) for w in release.warnings or []],
    )


@router.post(
    "/titles/{title_id}/releases",
    summary="Create a release of one of your titles",
    status_code=status.HTTP_201_CREATED,
    response_model=ReleaseRead,
    responses=problems("title_not_found"),
)
def create_release(
    session: DbSession, _: StudioUser, scope: CallerScope, title_id: Id, body: ReleaseCreate
) -> ReleaseRead:
    """A release is one master of a title turned into an encrypted HLS ladder; upload its master next."""
    title = catalog.studio_title(session, scope, title_id)
    release = catalog.create_release(
        session,
        title_id=title.id,
        studio_id=title.studio_id,
        label=body.label,
        protection_profile=body.protection.value if body.protection else None,
    )
    return _release_read(session, release)


@router.get("/releases", summary="List your releases", response_model=list[ReleaseRead])
def list_releases(
    session: ReadDb,
    _: StudioUser,
    scope: CallerScope,
    page: PageParams,
    title_id: Annotated[str | None, Query(max_length=64)] = None,
) -> list[ReleaseRead]:
    """Your studio's releases, newest first."""
    rows = catalog.list_releases(
        session,
        scope=scope,
        title_id=title_id,
        offset=page.offset,
        limit=page.limit,
    )
    assets = catalog.assets_of(session, [r.id for r in rows])
    return [_release_read(session, r, assets[r.id]) for r in rows]


@router.get(
    "/releases/{release_id}",
    summary="A release: status, progress, ETA, reason",
    response_model=ReleaseRead,
    responses=problems("release_not_found"),
)
def get_release(session: ReadDb, _: StudioUser, scope: CallerScope, release_id: Id) -> ReleaseRead:
    """Where transcoding stands: status, progress, estimated end, and the reason of a failure."""
    return _release_read(session, catalog.get_studio_release(session, release_id, scope))


@router.post(
    "/releases/{release_id}/transcode",
    summary="Start (or retry) transcoding once the master is uploaded",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ReleaseRead,
    responses=problems((409, "master_missing"), "release_busy", "release_not_found"),
)
def start_transcode(
    session: DbSession, _: StudioUser, scope: CallerScope, release_id: Id
) -> ReleaseRead:
    """Queues the transcoding job (outbox): accepted, it runs on the worker pool. A failed release can be retried."""
    release = catalog.get_studio_release(session, release_id, scope)
    transcoding.start_transcode(session, release)
    return _release_read(session, release)


# --- uploads ----------------------------------------------------------------------------------


def _upload_read(upload: Any, parts: list[Any] | None = None) -> UploadRead:
    return UploadRead(
        id=upload.id,
        release_id=upload.release_id,
        asset_id=upload.asset_id,
        status=upload.status.value,
        size_bytes=upload.size_bytes,
        part_size=upload.part_size,
        part_count=ingest.part_count(upload),
        transport="s3" if get_settings().storage_backend.value == "s3" else "api",
        uploaded_parts=[
            PartRead(number=p.number, size=p.size, etag=p.etag, checksum_sha256=p.checksum_sha256)
            for p in (parts or [])
        ],
    )


@router.post(
    "/releases/{release_id}/uploads",
    summary="Start a resumable upload of a master, dub, commentary or subtitle file",
    status_code=status.HTTP_201_CREATED,
    response_model=UploadRead,
    responses=problems(
        "invalid_filename",
        "invalid_size",
        "language_required",
        "master_exists",
        "release_busy",
        "release_not_found",
        "invalid_locale",
    ),
)
def create_upload(
    session: DbSession, _: StudioUser, scope: CallerScope, release_id: Id, body: UploadCreate
) -> UploadRead:
    """Multipart and resumable: say the file's size, then send its parts (presigned S3 URLs or through the API) and complete."""
    release = catalog.get_studio_release(session, release_id, scope)
    upload = ingest.start_upload(
        session,
        release,
        kind=body.kind,
        filename=body.filename,
        size_bytes=body.size_bytes,
        language=body.language,
        name=body.name,
        content_type=body.content_type,
    )
    return _upload_read(upload)


@router.get(
    "/uploads/{upload_id}",
    summary="An upload and the parts received so far (to resume)",
    response_model=UploadRead,
    responses=problems("upload_not_found"),
)
def get_upload(session: ReadDb, _: StudioUser, scope: CallerScope, upload_id: Id) -> UploadRead:
    """Which parts arrived, so an interrupted upload resumes where it stopped."""
    upload = ingest.get_upload(session, upload_id, scope)
    return _upload_read(upload, ingest.uploaded_parts(upload))


@router.post(
    "/uploads/{upload_id}/part-urls",
    summary="Where to PUT each part",
    response_model=list[PartTargetRead],
    responses=problems(
        "upload_completed",
        "upload_aborted",
        "invalid_checksum",
        "invalid_part_number",
        "upload_not_found",
    ),
)
def part_urls(
    session: DbSession, _: StudioUser, scope: CallerScope, upload_id: Id, body: PartUrlsRequest
) -> list[PartTargetRead]:
    """Presigned PUT URLs (S3) or API URLs (local storage) for the parts asked for."""
    upload = ingest.get_upload(session, upload_id, scope)
    checksums = {p.number: p.checksum_sha256 for p in body.parts if p.checksum_sha256}
    targets = ingest.part_targets(
        upload, [p.number for p in body.parts], checksums, get_settings().base_url
    )
    return [
        PartTargetRead(number=t.number, url=t.url, method=t.method, headers=t.headers)
        for t in targets
    ]


@router.put(
    "/uploads/{upload_id}/parts/{number}",
    summary="Send one part through the API (local storage, or no direct S3 access)",
    response_model=PartRead,
    responses=problems(
        "upload_completed",
        "upload_aborted",
        "part_too_large",
        "upload_not_found",
        "invalid_part_number",
        "part_checksum_mismatch",
        "invalid_part_size",
    ),
)
async def put_part(
    request: Request,
    _: StudioUser,
    scope: CallerScope,
    upload_id: Id,
    number: Annotated[int, Path(ge=1, le=ingest.MAX_PARTS)],
    checksum: Annotated[str | None, Header(alias="x-amz-checksum-sha256")] = None,
) -> PartRead:
    # No request-wide transaction here: a part may take minutes to arrive, and holding a
    # database transaction (SQLite's write lock) that long would stall every other writer.
    """The raw bytes of one part; a part sent again replaces it."""

    def load() -> Any:
        with unit_of_work() as session:
            upload = ingest.get_upload(session, upload_id, scope)
            session.expunge(upload)
            return upload

    upload = await run_in_threadpool(load)
    limit = upload.part_size
    with tempfile.TemporaryFile(dir=get_settings().data_dir) as spool:
        received = 0
        async for chunk in request.stream():
            received += len(chunk)
            if received > limit:
                raise InvalidInput(f"a part may be at most {limit} bytes", code="part_too_large")
            spool.write(chunk)
        spool.seek(0)
        part = await run_in_threadpool(ingest.receive_part, upload, number, spool, checksum)
    return PartRead(
        number=part.number, size=part.size, etag=part.etag, checksum_sha256=part.checksum_sha256
    )


@router.post(
    "/uploads/{upload_id}/complete",
    summary="Assemble the uploaded parts",
    response_model=AssetRead,
    responses=problems(
        "upload_completed",
        "upload_aborted",
        "parts_missing",
        "upload_not_found",
        "invalid_part",
        "invalid_parts",
        "part_checksum_mismatch",
        "invalid_part_size",
    ),
)
def complete_upload(
    session: DbSession, _: StudioUser, scope: CallerScope, upload_id: Id
) -> AssetRead:
    """Joins the parts into the file; the release can then be transcoded."""
    upload = ingest.get_upload(session, upload_id, scope)
    return AssetRead.model_validate(ingest.complete(session, upload))


@router.delete(
    "/uploads/{upload_id}",
    summary="Abort an upload and discard its parts",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problems("upload_completed", "upload_aborted", "upload_not_found"),
)
def abort_upload(session: DbSession, _: StudioUser, scope: CallerScope, upload_id: Id) -> None:
    """The parts received are deleted."""
    ingest.abort(session, ingest.get_upload(session, upload_id, scope))


# --- webhooks ---------------------------------------------------------------------------------


@router.get(
    "/webhook",
    summary="Your webhook URL and signing secret",
    response_model=WebhookRead,
    responses=problems("studio_required"),
)
def get_webhook(session: ReadDb, _: StudioUser, scope: CallerScope) -> WebhookRead:
    """Where release notifications (ready, failed) are sent, and the secret they are signed with."""
    studio_id = scope.owner()
    return WebhookRead(
        url=notify.webhook_url(session, studio_id),
        secret=notify.studio_secret(studio_id),
        signature_header=notify.SIGNATURE_HEADER,
    )


@router.put(
    "/webhook",
    summary="Set where release notifications go",
    response_model=WebhookRead,
    responses=problems("unsafe_url", "studio_not_found", "studio_required", "studio_mismatch"),
)
def set_webhook(
    session: DbSession, _: StudioUser, scope: CallerScope, body: WebhookSettings
) -> WebhookRead:
    """An https URL that does not resolve to a private, loopback or link-local address."""
    studio_id = scope.owner()
    notify.set_webhook_url(session, studio_id, body.url)
    return WebhookRead(
        url=body.url,
        secret=notify.studio_secret(studio_id),
        signature_header=notify.SIGNATURE_HEADER,
    )


@router.get(
    "/webhook/deliveries",
    summary="Your webhook delivery log",
    response_model=list[WebhookDeliveryRead],
)
def webhook_deliveries(
    session: ReadDb, _: StudioUser, scope: CallerScope, page: PageParams
) -> list[WebhookDeliveryRead]:
    """Every release notification for your studio, newest first: tries, state and the last error."""
    return [
        WebhookDeliveryRead.model_validate(d)
        for d in notify.deliveries(session, scope, page.offset, page.limit)
    ]
