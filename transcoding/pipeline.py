"""The three steps of a transcode run, as the worker pool executes them.

``prepare`` probes and checks every uploaded file against the input policy, plans the
ladder and the chunks, creates the release's content key and fans out one ``encode_chunk``
job per chunk; the last chunk to finish enqueues ``package`` (fan-in in the database, see
:func:`transcoding.service.record_chunk_done`), which joins the chunks, encodes the audio
renditions, converts subtitles, packages encrypted HLS and publishes it to storage.

Every step reads its inputs in a short transaction of its own, does the slow media work
with no transaction open, and writes its results through the job's session, so a step
that dies half-way leaves nothing half-written and can simply run again.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog import releases
from catalog.models import Title
from catalog.releases import AssetKind, AssetStatus, Release, ReleaseAsset, ReleaseStatus
from core.db import unit_of_work, utcnow
from core.errors import InvalidInput
from core.outbox import enqueue
from core.settings import get_settings
from core.storage import get_store
from drm import keys
from transcoding import service, track_publishing
from transcoding.chunking import Chunk, plan_chunks
from transcoding.encode import (
    RenditionFile,
    concat_renditions,
    encode_ladder,
)
from transcoding.images import make_poster, make_thumbnail_sprite
from transcoding.ladder import DEFAULT_PROFILE, LadderProfile, load_profile, plan_ladder
from transcoding.models import EncodeChunk, TranscodeRun
from transcoding.package import ContentKey, package_hls
from transcoding.policy import check_audio_sidecar, check_master, check_subtitle_sidecar
from transcoding.probe import ProbeResult
from transcoding.tracks import SidecarInfo

log = logging.getLogger(__name__)

PROGRESS_EVERY_SECONDS = 2.0
KEY_URI_TEMPLATE = "{base}/v1/playback/keys/{{key_id}}"


@dataclass(frozen=True)
class AssetFile:
    id: str
    kind: AssetKind
    language: str | None
    name: str | None
    filename: str
    storage_key: str


def profile() -> LadderProfile:
    path = get_settings().ladder_profile_file
    return load_profile(path.read_text()) if path else DEFAULT_PROFILE


def work_dir() -> Path:
    path = get_settings().data_dir / "work"
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextmanager
def scratch(prefix: str) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=work_dir()))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def local_copy(storage_key: str) -> Path:
    """A local path for an object: the file itself on the local store, else a per-host cache
    (one download of the master serves every chunk this host encodes)."""
    store = get_store()
    direct = store.local_path(storage_key)
    if direct is not None and direct.is_file():
        return direct
    cache = work_dir() / "cache"
    cache.mkdir(exist_ok=True)
    target = cache / hashlib.sha256(storage_key.encode()).hexdigest()
    if target.is_file() and target.stat().st_size == store.size(storage_key):
        return target
    partial = target.with_suffix(f".{os.getpid()}.part")
    store.download_to(storage_key, partial)
    os.replace(partial, target)
    return target


def _asset_files(session: Session, release_id: str) -> list[AssetFile]:
    return [
        AssetFile(a.id, a.kind, a.language, a.name, a.filename, a.storage_key)
        for a in releases.assets(session, release_id)
        if a.status is AssetStatus.uploaded
    ]


def _check(asset: AssetFile) -> ProbeResult | None:
    """Apply the input policy to one uploaded file; name the file in any refusal."""
    path = local_copy(asset.storage_key)
    try:
        if asset.kind is AssetKind.master:
            return check_master(path)
        if asset.kind in (AssetKind.audio, AssetKind.commentary):
            return check_audio_sidecar(path)
        check_subtitle_sidecar(path)
        return None
    except InvalidInput as refused:
        raise InvalidInput(
            f"{asset.kind.value} file {asset.filename!r}: {refused.detail}", code=refused.code
        ) from None


def _sidecar(asset: AssetFile, probed: ProbeResult | None) -> SidecarInfo:
    audio = probed.audio[0] if probed is not None and probed.audio else None
    return SidecarInfo(
        asset_id=asset.id,
        kind=asset.kind.value,
        language=asset.language,
        name=asset.name,
        codec=audio.codec if audio else None,
        channels=audio.channels if audio else None,
    )


def _reject_asset(asset_id: str, refused: InvalidInput) -> None:
    with unit_of_work() as session:
        row = session.get_one(ReleaseAsset, asset_id)
        row.status = AssetStatus.rejected
        row.rejection_code = refused.code
        row.rejection_reason = refused.detail


# --- step 1 ---------------------------------------------------------------------------------


def prepare(session: Session, release_id: str, attempt: int) -> None:
    with unit_of_work() as s:
        release = releases.get_release(s, release_id)
        if release.attempt != attempt or release.status is not ReleaseStatus.queued:
            return  # a duplicate delivery, or a newer run superseded this one
        releases.set_status(release, ReleaseStatus.probing)
        assets = _asset_files(s, release_id)
    master_probe: ProbeResult | None = None
    sidecars: list[SidecarInfo] = []
    for asset in assets:
        try:
            probed = _check(asset)
        except InvalidInput as refused:
            _reject_asset(asset.id, refused)
            raise
        if asset.kind is AssetKind.master:
            master_probe = probed
        else:
            sidecars.append(_sidecar(asset, probed))
    if master_probe is None:
        raise InvalidInput("the release has no uploaded master", code="master_missing")
    ladder = plan_ladder(master_probe, profile())
    duration = master_probe.duration or 0.0
    chunks = plan_chunks(
        duration, workers=get_settings().transcode_pool_size, segment_seconds=ladder.segment_seconds
    )

    release = releases.get_release(session, release_id, for_update=True)
    if release.attempt != attempt:
        return
    original_language = session.get_one(Title, release.title_id).original_language
    track_publishing.record_detected(session, release, master_probe, sidecars, original_language)
    run = TranscodeRun(
        release_id=release_id,
        attempt=attempt,
        plan={
            "rungs": [
                {"name": r.name, "width": r.width, "height": r.height, "bitrate": r.bitrate}
                for r in ladder.rungs
            ],
            "segment_seconds": ladder.segment_seconds,
            "chunks": len(chunks),
            "duration": duration,
        },
        chunks_total=len(chunks),
        encode_started_at=utcnow(),
    )
    session.add(run)
    session.flush()
    for chunk in chunks:
        row = EncodeChunk(
            run_id=run.id,
            index=chunk.index,
            start_seconds=chunk.start,
            duration_seconds=(
                chunk.duration if chunk.duration is not None else duration - chunk.start
            ),
        )
        session.add(row)
        session.flush()
        enqueue(session, service.CHUNK_JOB, queue="transcode", chunk_id=row.id)
    if release.content_key_id is None:
        release.content_key_id = keys.create_content_key(session, release.id).key_id
    release.duration_seconds = duration
    releases.set_status(release, ReleaseStatus.encoding)


# --- step 2 ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChunkWork:
    chunk: Chunk
    seconds: float
    release_id: str
    attempt: int
    master_key: str


def _load_chunk(chunk_id: str) -> ChunkWork | None:
    with unit_of_work() as s:
        row = s.get(EncodeChunk, chunk_id)
        if row is None or row.done_at is not None:
            return None
        run = s.get_one(TranscodeRun, row.run_id)
        release = s.get_one(Release, run.release_id)
        if release.attempt != run.attempt or release.status is not ReleaseStatus.encoding:
            return None
        master = next(a for a in _asset_files(s, release.id) if a.kind is AssetKind.master)
        run_total = s.scalar(
            select(EncodeChunk.index)
            .where(EncodeChunk.run_id == run.id)
            .order_by(EncodeChunk.index.desc())
        )
        is_last = row.index == run_total
        return ChunkWork(
            chunk=Chunk(row.index, row.start_seconds, None if is_last else row.duration_seconds),
            seconds=row.duration_seconds,
            release_id=release.id,
            attempt=run.attempt,
            master_key=master.storage_key,
        )


def encode_chunk(session: Session, chunk_id: str) -> None:
    work = _load_chunk(chunk_id)
    if work is None:
        return
    master = local_copy(work.master_key)
    probe = check_master(master)  # the policy again: never hand FFmpeg an unchecked file
    ladder = plan_ladder(probe, profile())
    last_report = 0.0

    def report(seconds_done: float) -> None:
        nonlocal last_report
        now = time.monotonic()
        if now - last_report < PROGRESS_EVERY_SECONDS:
            return
        last_report = now
        with unit_of_work() as s:
            service.update_encode_progress(s, chunk_id, seconds_done / max(work.seconds, 0.001))

    store = get_store()
    outputs: dict[str, str] = {}
    with scratch(f"chunk-{work.chunk.index}-") as tmp:
        result = encode_ladder(probe, ladder, tmp, chunk=work.chunk, on_progress=report)
        for rendition in result.renditions:
            key = f"work/{work.release_id}/{work.attempt}/chunks/{work.chunk.index:05d}/{rendition.rung.name}.mp4"
            store.put_file(key, rendition.path, "video/mp4")
            outputs[rendition.rung.name] = key
    service.record_chunk_done(
        session, chunk_id, outputs, worker=f"{socket.gethostname()}:{os.getpid()}"
    )


# --- step 3 ---------------------------------------------------------------------------------


def package(session: Session, run_id: str) -> None:
    with unit_of_work() as s:
        run = s.get_one(TranscodeRun, run_id)
        release = releases.get_release(s, run.release_id)
        if release.attempt != run.attempt or release.status is not ReleaseStatus.encoding:
            return
        releases.set_status(release, ReleaseStatus.packaging, progress=0.0)
        assets = _asset_files(s, release.id)
        tracks = track_publishing.specs(s, release.id)
        channel_map = release.channel_map
        chunk_outputs = [
            c.outputs
            for c in s.scalars(
                select(EncodeChunk).where(EncodeChunk.run_id == run.id).order_by(EncodeChunk.index)
            )
        ]
        key = keys.release_key(s, release.id)
        release_id, attempt = release.id, run.attempt

    store = get_store()
    master_asset = next(a for a in assets if a.kind is AssetKind.master)
    probe = check_master(local_copy(master_asset.storage_key))
    ladder = plan_ladder(probe, profile())
    settings = get_settings()
    prefix = f"hls/{release_id}/{attempt}"
    with scratch("package-") as tmp:
        renditions = []
        for rung in ladder.rungs:
            parts = []
            for index, outputs in enumerate(chunk_outputs):
                part = tmp / "chunks" / rung.name / f"{index:05d}.mp4"
                store.download_to(outputs[rung.name], part)
                parts.append(part)
            renditions.append(
                RenditionFile(
                    rung=rung, path=concat_renditions(parts, tmp / "video" / f"{rung.name}.mp4")
                )
            )

        storage_keys = {a.id: a.storage_key for a in assets}
        built = track_publishing.build_renditions(
            probe,
            tracks,
            channel_map=channel_map,
            asset_path=lambda asset_id: local_copy(storage_keys[asset_id]),
            work=tmp,
            profile=profile(),
        )
        audio = [track for _, track in built.audio]
        subtitles = [track for _, track in built.subtitles]
        packaged = package_hls(
            renditions,
            tmp / "hls",
            duration=probe.duration or 0.0,
            audio=audio,
            subtitles=subtitles,
            segment_seconds=ladder.segment_seconds,
            key=ContentKey(
                key=key.key,
                key_id=bytes.fromhex(key.key_id),
                key_uri_template=KEY_URI_TEMPLATE.format(base=settings.base_url.rstrip("/")),
            ),
        )
        poster = make_poster(probe, tmp / "images" / "poster.jpg")
        sprite = make_thumbnail_sprite(probe, tmp / "images" / "sprite")
        for path in sorted(p for p in packaged.out_dir.rglob("*") if p.is_file()):
            store.put_file(
                f"{prefix}/{path.relative_to(packaged.out_dir).as_posix()}",
                path,
                _content_type(path),
            )
        for path in [poster, *sprite.images, sprite.vtt]:
            store.put_file(f"{prefix}/images/{path.name}", path, _content_type(path))

        release = releases.get_release(session, release_id, for_update=True)
        if release.attempt != attempt or release.status is not ReleaseStatus.packaging:
            return
        release.hls_prefix = prefix
        release.master_playlist_key = (
            f"{prefix}/{packaged.master_playlist.relative_to(packaged.out_dir).as_posix()}"
        )
        release.poster_key = f"{prefix}/images/{poster.name}"
        release.sprite_key = f"{prefix}/images/{sprite.images[0].name}" if sprite.images else None
        release.sprite_vtt_key = f"{prefix}/images/{sprite.vtt.name}"
        playlists = {
            track_id: path.relative_to(packaged.out_dir).as_posix()
            for (track_id, _), path in [
                *zip(built.audio, packaged.audio_playlists, strict=True),
                *zip(built.subtitles, packaged.subtitle_playlists, strict=True),
            ]
        }
        release.outputs = {
            "variants": [
                {
                    "playlist": v.playlist,
                    "bandwidth": v.bandwidth,
                    "average_bandwidth": v.average_bandwidth,
                    "codecs": v.codecs,
                    "resolution": v.resolution,
                    "frame_rate": v.frame_rate,
                }
                for v in packaged.variants
            ],
            "encrypted": packaged.encryption is not None,
            "encryption": packaged.encryption.value if packaged.encryption else None,
        }
        releases.set_status(release, ReleaseStatus.ready, progress=1.0)
        # The catalog shows viewers which languages they can hear and read before buying.
        track_publishing.record_packaged(session, release, playlists, tracks)
        for warning in built.warnings:
            releases.add_warning(release, code=warning.code, detail=warning.detail, step="package")
        session.get_one(TranscodeRun, run_id).finished_at = utcnow()
        enqueue(
            session,
            service.NOTIFY_JOB,
            release_id=release_id,
            event="release.ready",
            attempt=attempt,
        )
    store.delete_prefix(f"work/{release_id}/{attempt}/")


_TYPES = {
    ".m3u8": "application/vnd.apple.mpegurl",
    ".mp4": "video/mp4",
    ".m4s": "video/iso.segment",
    ".vtt": "text/vtt",
    ".jpg": "image/jpeg",
    ".ts": "video/mp2t",
    ".aac": "audio/aac",
}


def _content_type(path: Path) -> str:
    return _TYPES.get(path.suffix, "application/octet-stream")
