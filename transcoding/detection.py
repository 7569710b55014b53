"""Tracks detected as soon as the uploads are complete, so a studio can review and correct
them before it starts a transcode run.

The job probes the uploaded files with the input policy (nothing reaches FFmpeg
unchecked) and records the tracks exactly as ``prepare`` will. It only touches releases
that are not being transcoded and have nothing published (awaiting upload, or failed): a
run records the tracks itself, and a ready release keeps the tracks its playlists were
packaged with until its next run.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from catalog import service as catalog
from catalog.models import AssetKind, AssetStatus, ReleaseStatus
from core.db import unit_of_work
from core.errors import InvalidInput
from core.outbox import enqueue
from transcoding import repository, track_publishing
from transcoding.pipeline import local_copy
from transcoding.policy import check_audio_sidecar, check_master, check_subtitle_sidecar
from transcoding.probe import ProbeResult
from transcoding.tracks import SidecarInfo

DETECT_JOB = "transcoding.release.detect_tracks"
_OPEN = (ReleaseStatus.awaiting_upload, ReleaseStatus.failed)


def request(session: Session, release_id: str) -> None:
    enqueue(session, DETECT_JOB, release_id=release_id)


def detect(session: Session, release_id: str) -> None:
    with unit_of_work() as s:
        release = catalog.get_release(s, release_id)
        if release.status not in _OPEN:
            return
        attempt = release.attempt
        original_language = repository.get_title(s, release.title_id).original_language
        uploaded = [
            (a.id, a.kind, a.language, a.name, a.storage_key)
            for a in catalog.assets(s, release_id)
            if a.status is AssetStatus.uploaded
        ]
    master: ProbeResult | None = None
    sidecars: list[SidecarInfo] = []
    for asset_id, kind, language, name, storage_key in uploaded:
        path = local_copy(storage_key)
        try:
            if kind is AssetKind.master:
                master = check_master(path)
                continue
            audio = None
            if kind in (AssetKind.audio, AssetKind.commentary):
                audio = check_audio_sidecar(path).audio[0]
            else:
                check_subtitle_sidecar(path)
        except InvalidInput:
            # Refused files are rejected, with their code, when the run starts; until
            # then there is nothing to detect in them.
            continue
        sidecars.append(
            SidecarInfo(
                asset_id=asset_id,
                kind=kind.value,
                language=language,
                name=name,
                codec=audio.codec if audio else None,
                channels=audio.channels if audio else None,
            )
        )
    if master is None:
        return
    release = catalog.get_release(session, release_id, for_update=True)
    if release.status not in _OPEN or release.attempt != attempt:
        return
    try:
        track_publishing.record_detected(session, release, master, sidecars, original_language)
    except InvalidInput as refused:
        # A channel map that does not fit this master: the run will fail with the code;
        # say so now, while the studio can still change the map.
        catalog.add_warning(release, code=refused.code, detail=refused.detail, step="probe")
