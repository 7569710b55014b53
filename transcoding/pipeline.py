"""The three steps of a transcode run, as the worker pool executes them.

``prepare`` probes and checks every uploaded file against the input policy, plans the
ladder and the chunks, creates the release's content key and fans out one ``encode_chunk``
job per chunk; the last chunk to finish enqueues ``package`` (fan-in in the database, see
:func:`transcoding.service.record_chunk_done`), which joins the chunks, encodes the audio
renditions, converts subtitles, packages encrypted HLS and publishes it to storage.

Every step reads its inputs in a short transaction of its own, does the slow media work
with no transaction open, and writes its results through the job's session, so a step
that dies half-way leaves nothing half-written and can simply run again. A job delivered
again after its step started (a retry) picks the work up again rather than taking the
release's new status for "someone else did it": a job reports success only when its work
is done or no longer wanted (the run was failed, stalled or superseded).

Every piece of work runs inside ``with step(Step.x)`` (:mod:`transcoding.steps`), so any
failure ends the release ``failed`` with a stable code; optional artifacts (poster, sprite,
one audio or subtitle track) become release warnings instead.

A retried release reuses the chunks an earlier run already encoded from the same master
with the same plan (:func:`_reusable_chunks`), so a failure at packaging costs a repackage,
not a re-encode.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from functools import partial
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from sqlalchemy.orm import Session

from catalog import service as catalog
from catalog.models import AssetKind, AssetStatus, ReleaseStatus
from core.db import unit_of_work, utcnow
from core.errors import InvalidInput
from core.outbox import enqueue
from core.settings import ProtectionProfile, get_settings
from core.storage import get_store
from drm import keys
from transcoding import per_title, repository, service, track_publishing, watermark
from transcoding.cadence import measure_cadence
from transcoding.chunking import Chunk, plan_chunks
from transcoding.cmaf import list_segments, package_cmaf
from transcoding.encode import (
    RenditionFile,
    concat_renditions,
    encode_ladder,
)
from transcoding.images import (
    TILE_NAME,
    ThumbnailSprite,
    make_chunk_thumbnails,
    make_poster,
    sprite_layout,
    tile_sprite,
)
from transcoding.ladder import (
    DEFAULT_PROFILE,
    LadderPlan,
    LadderProfile,
    load_profile,
    plan_ladder,
)
from transcoding.models import EncodeChunk, TranscodeRun
from transcoding.package import (
    AudioTrack,
    ContentKey,
    PackageResult,
    SubtitleTrack,
    package_hls,
    video_folder,
)
from transcoding.policy import check_audio_sidecar, check_master, check_subtitle_sidecar
from transcoding.probe import ProbeResult
from transcoding.quality import sample_windows, score_renditions
from transcoding.steps import RunSuperseded, Step, step, warning_for
from transcoding.tools import ToolFailed
from transcoding.tracks import SidecarInfo

log = logging.getLogger(__name__)
_P = ParamSpec("_P")
_R = TypeVar("_R")

PROGRESS_EVERY_SECONDS = 2.0
# Objects moved to or from storage at once: a 2-hour film is thousands of segments and a
# few hundred thumbnails, and one request at a time leaves the link idle between them.
TRANSFERS_AT_ONCE = 16
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


def plan(probe: ProbeResult, rates: dict[str, int] | None = None) -> LadderPlan:
    """The ladder for a checked master. Every step plans again from the same file and the
    per-title ``rates`` prepare measured (kept in the run's plan) and gets the same answer;
    a VFR master's cadence is read from its timestamps first."""
    video = probe.primary_video
    cadence: Fraction | None = None
    if video is not None and video.variable_frame_rate:
        cadence = measure_cadence(probe, video)
    return plan_ladder(probe, profile(), cadence=cadence, rates=rates)


def _rates_key(master: AssetFile, ladder: LadderPlan) -> str:
    """What per-title rates depend on: the master and the profile."""
    identity = {"master": master.storage_key, "profile": ladder.profile.model_dump(mode="json")}
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()


def _per_title_rates(
    release_id: str,
    attempt: int,
    master: AssetFile,
    probe: ProbeResult,
    ladder: LadderPlan,
    warnings: list[dict[str, str]],
) -> dict[str, int] | None:
    """The complexity probe's rates, or None (the profile's fixed rates) when the profile
    has no per-title settings or the probe failed: a failed probe costs bits, not the
    release, so it is a warning. An earlier run of the release that measured the same
    master with the same profile lends its rates: a retry then plans the same ladder and
    reuses that run's chunks (the encoders' threads make trial scores vary slightly)."""
    if ladder.profile.per_title is None:
        return None
    key = _rates_key(master, ladder)
    with unit_of_work() as s:
        earlier = repository.earlier_run_plans(s, release_id, attempt)
    for earlier_plan in earlier:
        if (earlier_plan or {}).get("rates_key") == key and earlier_plan.get("rates"):
            return {str(k): int(v) for k, v in earlier_plan["rates"].items()}
    with step(Step.analyse):
        # Media trouble only: the job's own time limit and storage errors stay failures.
        try:
            return per_title.measure_rates(probe, ladder)
        except (ToolFailed, ValueError, OSError) as exc:
            warnings.append(
                warning_for(Step.analyse, "per_title_failed", "the per-title ladder", exc)
            )
            return None


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
        for a in catalog.assets(session, release_id)
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
        row = repository.get_asset(session, asset_id)
        row.status = AssetStatus.rejected
        row.rejection_code = refused.code
        row.rejection_reason = refused.detail


# --- step 1 ---------------------------------------------------------------------------------


def _fingerprint(master: AssetFile, ladder: LadderPlan, chunks: list[Chunk]) -> str:
    """What a chunk's output depends on: the master file, every encoder setting, the chunk
    boundaries. Two runs with the same fingerprint produce interchangeable chunks."""
    identity = {
        # 2: chunk outputs include the chunk's thumbnails.
        "version": 2,
        "master": master.storage_key,
        "profile": ladder.profile.model_dump(mode="json"),
        "rungs": [
            [r.name, r.codec.value, r.width, r.height, r.bitrate, r.maxrate, r.bufsize]
            for r in ladder.renditions
        ],
        "frame_rate": str(ladder.frame_rate),
        "gop_frames": ladder.gop_frames,
        "deinterlace": ladder.deinterlace,
        "chunks": [[c.index, c.start, c.duration] for c in chunks],
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()


def _reusable_chunks(release_id: str, attempt: int, fingerprint: str) -> dict[int, dict[str, Any]]:
    """Outputs of chunks an earlier run of this release encoded with the same fingerprint and
    that are still in storage, by chunk index (the newest run's when several have one)."""
    with unit_of_work() as s:
        done = repository.earlier_done_chunks(s, release_id, attempt)
    candidates = {
        index: dict(outputs)
        for index, outputs, run_plan in done
        if (run_plan or {}).get("fingerprint") == fingerprint and outputs
    }
    store = get_store()
    return {
        index: outputs
        for index, outputs in candidates.items()
        if all(store.exists(key) for key in outputs.values())
    }


def prepare(session: Session, release_id: str, attempt: int) -> None:
    with unit_of_work() as s:
        release = catalog.get_release(s, release_id)
        # `probing` too: a retry of this job finds the status its first try set.
        if release.attempt != attempt or release.status not in (
            ReleaseStatus.queued,
            ReleaseStatus.probing,
        ):
            return  # a duplicate delivery, or a newer run superseded this one
        catalog.set_status(release, ReleaseStatus.probing)
        assets = _asset_files(s, release_id)
    master_probe: ProbeResult | None = None
    master_asset: AssetFile | None = None
    sidecars: list[SidecarInfo] = []
    with step(Step.probe):
        for asset in assets:
            try:
                probed = _check(asset)
            except InvalidInput as refused:
                _reject_asset(asset.id, refused)
                raise
            if asset.kind is AssetKind.master:
                master_probe, master_asset = probed, asset
            else:
                sidecars.append(_sidecar(asset, probed))
    if master_probe is None or master_asset is None:
        raise InvalidInput("the release has no uploaded master", code="master_missing")
    with step(Step.plan):
        ladder = plan(master_probe)
    warnings: list[dict[str, str]] = []
    rates = _per_title_rates(release_id, attempt, master_asset, master_probe, ladder, warnings)
    with step(Step.plan):
        ladder = plan(master_probe, rates)
        duration = master_probe.duration or 0.0
        settings = get_settings()
        chunks = plan_chunks(
            duration,
            workers=settings.transcode_pool_size,
            segment_seconds=ladder.segment_seconds,
            chunks_per_worker=settings.transcode_chunks_per_worker,
            min_chunk_seconds=settings.transcode_min_chunk_seconds,
        )
        fingerprint = _fingerprint(master_asset, ladder, chunks)
    with step(Step.encode):
        reused = _reusable_chunks(release_id, attempt, fingerprint)

    release = catalog.get_release(session, release_id, for_update=True)
    if release.attempt != attempt or release.status is not ReleaseStatus.probing:
        return
    original_language = repository.get_title(session, release.title_id).original_language
    track_publishing.record_detected(session, release, master_probe, sidecars, original_language)
    now = utcnow()
    run = TranscodeRun(
        release_id=release_id,
        attempt=attempt,
        plan={
            "rungs": [
                {
                    "name": r.name,
                    "codec": r.codec.value,
                    "width": r.width,
                    "height": r.height,
                    "bitrate": r.bitrate,
                }
                for r in ladder.renditions
            ],
            # Per-title rates by rendition (None: the profile's fixed rates); every later
            # step plans with them.
            "rates": rates,
            "rates_key": _rates_key(master_asset, ladder),
            "frame_rate": str(ladder.frame_rate),
            "segment_seconds": ladder.segment_seconds,
            "chunks": len(chunks),
            "chunks_reused": len(reused),
            "duration": duration,
            "fingerprint": fingerprint,
        },
        chunks_total=len(chunks),
        chunks_done=len(reused),
        encode_started_at=now,
    )
    session.add(run)
    session.flush()
    for chunk in chunks:
        outputs = reused.get(chunk.index)
        row = EncodeChunk(
            run_id=run.id,
            index=chunk.index,
            start_seconds=chunk.start,
            duration_seconds=(
                chunk.duration if chunk.duration is not None else duration - chunk.start
            ),
        )
        if outputs is not None:
            row.done_at, row.progress, row.outputs, row.updated_at = now, 1.0, outputs, now
            row.worker = "reused"
        session.add(row)
        session.flush()
        if outputs is None:
            enqueue(session, service.CHUNK_JOB, queue="transcode", chunk_id=row.id)
    if len(reused) < len(chunks):
        # The audio beside the chunks: a feature's audio takes minutes on one thread, which
        # would otherwise all come after the last chunk.
        enqueue(session, service.AUDIO_JOB, queue="transcode", run_id=run.id)
    with step(Step.key):
        if release.content_key_id is None:
            release.content_key_id = keys.create_content_key(session, release.id).key_id
    release.duration_seconds = duration
    for warning in warnings:
        catalog.add_warning(release, **warning)
    catalog.set_status(release, ReleaseStatus.encoding)
    if len(reused) == len(chunks):
        # Every chunk is already encoded: straight to packaging (the fan-in never fires).
        run.package_enqueued_at = now
        enqueue(session, service.PACKAGE_JOB, queue="package", run_id=run.id)


# --- step 2 ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChunkWork:
    chunk: Chunk
    seconds: float  # the chunk's length, the last one's included
    release_id: str
    attempt: int
    master_key: str
    rates: dict[str, int] | None


def _load_chunk(chunk_id: str) -> ChunkWork | None:
    with unit_of_work() as s:
        row = repository.find_chunk(s, chunk_id)
        if row is None or row.done_at is not None:
            return None
        run = repository.get_run(s, row.run_id)
        release = repository.get_release(s, run.release_id)
        if release.attempt != run.attempt or release.status is not ReleaseStatus.encoding:
            return None
        master = next(a for a in _asset_files(s, release.id) if a.kind is AssetKind.master)
        run_total = repository.last_chunk_index(s, run.id)
        is_last = row.index == run_total
        return ChunkWork(
            chunk=Chunk(row.index, row.start_seconds, None if is_last else row.duration_seconds),
            seconds=row.duration_seconds,
            release_id=release.id,
            attempt=run.attempt,
            master_key=master.storage_key,
            rates=run.plan.get("rates"),
        )


def encode_chunk(session: Session, chunk_id: str) -> None:
    work = _load_chunk(chunk_id)
    if work is None:
        return
    last_report = 0.0

    def report(seconds_done: float) -> None:
        nonlocal last_report
        now = time.monotonic()
        if now - last_report < PROGRESS_EVERY_SECONDS:
            return
        last_report = now
        with unit_of_work() as s:
            wanted = service.update_encode_progress(
                s, chunk_id, seconds_done / max(work.seconds, 0.001)
            )
        if not wanted:
            raise RunSuperseded(chunk_id)  # stops FFmpeg: nobody will package this chunk

    outputs: dict[str, str] = {}
    try:
        with step(Step.probe):
            # The policy again: never hand FFmpeg an unchecked file.
            probe = check_master(local_copy(work.master_key))
        with step(Step.plan):
            ladder = plan(probe, work.rates)
        with step(Step.encode), scratch(f"chunk-{work.chunk.index}-") as tmp:
            spec = ladder.profile.watermark
            marking = (
                watermark.prepare_marking(
                    work.release_id,
                    spec.strength,
                    tmp / "marks",
                    every=spec.every,
                    segment_seconds=ladder.segment_seconds,
                )
                if spec is not None and ladder.marked_rungs
                else None
            )
            result = encode_ladder(
                probe, ladder, tmp, chunk=work.chunk, on_progress=report, marking=marking
            )
            prefix = f"work/{work.release_id}/{work.attempt}/chunks/{work.chunk.index:05d}"
            files = {
                r.output_name: (f"{prefix}/{r.output_name}.mp4", r.path) for r in result.renditions
            }
            files |= {
                path.stem: (f"{prefix}/thumbs/{path.name}", path)
                for path in _chunk_thumbnails(probe, work, result.renditions, tmp)
            }
            _upload_all([(key, path) for key, path in files.values()])
            outputs = {name: key for name, (key, _) in files.items()}
    except RunSuperseded:
        log.info("chunk no longer wanted; encode stopped", extra={"chunk_id": chunk_id})
        return
    service.record_chunk_done(
        session, chunk_id, outputs, worker=f"{socket.gethostname()}:{os.getpid()}"
    )


def _chunk_thumbnails(
    probe: ProbeResult, work: ChunkWork, renditions: tuple[RenditionFile, ...], tmp: Path
) -> list[Path]:
    """This chunk's share of the film's thumbnails, made from its smallest rung that is at
    least thumbnail-sized, so no step after the last chunk decodes the whole master. A
    failure leaves them out (the release then gets the ``sprite_failed`` warning)."""
    try:
        layout = sprite_layout(probe)
        fits = [
            r
            for r in renditions
            if not r.variant
            and r.rung.width >= layout.tile_width
            and r.rung.height >= layout.tile_height
        ]
        if not fits:
            return []
        source = min(fits, key=lambda r: r.rung.width * r.rung.height)
        return make_chunk_thumbnails(
            source.path,
            tmp / "thumbs",
            layout,
            start=work.chunk.start,
            seconds=work.seconds,
        )
    except RunSuperseded:
        raise
    except Exception:
        log.warning("chunk thumbnails failed", exc_info=True, extra={"chunk": work.chunk.index})
        return []


def _upload_all(files: list[tuple[str, Path]]) -> None:
    store = get_store()
    _at_once([partial(store.put_file, key, path, _content_type(path)) for key, path in files])


def _download_all(files: list[tuple[str, Path]]) -> None:
    store = get_store()
    _at_once([partial(store.download_to, key, path) for key, path in files])


def _at_once(calls: list[Callable[[], None]]) -> None:
    """Run storage calls ``TRANSFERS_AT_ONCE`` at a time; the first failure is raised."""
    if len(calls) <= 1:
        for call in calls:
            call()
        return
    with ThreadPoolExecutor(max_workers=TRANSFERS_AT_ONCE) as pool:
        for done in [pool.submit(call) for call in calls]:
            done.result()


# --- beside step 2: the audio ----------------------------------------------------------------


def _early_audio_key(
    release_id: str,
    attempt: int,
    spec: track_publishing.TrackSpec,
    channel_map: list[list[int]] | None,
) -> str:
    """Where the audio job leaves a track: named by what its encode depends on (the source,
    the channel map, the profile's audio settings), so packaging only takes a file that
    is what it would have encoded itself."""
    p = profile()
    identity = json.dumps(
        [spec.source, channel_map, p.audio_bitrate_kbps, p.audio_sample_rate, p.audio_loudness_lufs]
    )
    digest = hashlib.sha256(identity.encode()).hexdigest()[:24]
    return f"work/{release_id}/{attempt}/audio/{digest}.mp4"


@dataclass(frozen=True)
class AudioWork:
    release_id: str
    attempt: int
    assets: list[AssetFile]
    tracks: list[track_publishing.TrackSpec]
    channel_map: list[list[int]] | None


def _load_audio(run_id: str) -> AudioWork | None:
    with unit_of_work() as s:
        run = repository.get_run(s, run_id)
        release = catalog.get_release(s, run.release_id)
        if release.attempt != run.attempt or release.status is not ReleaseStatus.encoding:
            return None  # packaging started already, or the run is no longer wanted
        return AudioWork(
            release_id=release.id,
            attempt=run.attempt,
            assets=_asset_files(s, release.id),
            tracks=track_publishing.specs(s, release.id),
            channel_map=release.channel_map,
        )


def encode_audio_early(session: Session, run_id: str) -> None:
    """Encode the release's audio tracks while the chunks encode. Only a head start: a track
    it could not make (or a job that never ran) is encoded by packaging as before."""
    work = _load_audio(run_id)
    if work is None:
        return
    master = next(a for a in work.assets if a.kind is AssetKind.master)
    try:
        with scratch("audio-") as tmp:
            probe = check_master(local_copy(master.storage_key))
            done = track_publishing.encode_tracks_early(
                probe,
                work.tracks,
                channel_map=work.channel_map,
                asset_path=lambda asset_id: local_copy(_asset_key(work.assets, asset_id)),
                work=tmp,
                profile=profile(),
            )
            _upload_all(
                [
                    (_early_audio_key(work.release_id, work.attempt, spec, work.channel_map), path)
                    for spec, path in done
                ]
            )
    except RunSuperseded:
        return
    except Exception:
        log.warning("early audio failed; packaging will encode it", exc_info=True)


def _early_audio(work: PackageWork) -> Callable[[track_publishing.TrackSpec, Path], bool]:
    store = get_store()

    def encoded(spec: track_publishing.TrackSpec, out: Path) -> bool:
        key = _early_audio_key(work.release_id, work.attempt, spec, work.channel_map)
        if not store.exists(key):
            return False
        store.download_to(key, out)
        return True

    return encoded


# --- step 3 ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PackageWork:
    release_id: str
    attempt: int
    original_language: str
    assets: list[AssetFile]
    chunk_outputs: list[dict[str, Any]]
    key: keys.PlainKey
    tracks: list[track_publishing.TrackSpec]  # as the studio last labelled them
    channel_map: list[list[int]] | None
    # Key rotation: one key per key period (``key`` is period 0), segments per period.
    rotation: list[keys.PlainKey]
    period_segments: int
    segment_seconds: float
    rates: dict[str, int] | None = None
    protection: ProtectionProfile = ProtectionProfile.aes128


def _load_package(run_id: str) -> PackageWork | None:
    with unit_of_work() as s:
        run = repository.get_run(s, run_id)
        release = catalog.get_release(s, run.release_id)
        # `packaging` too: a retry of this job finds the status its first try set.
        if release.attempt != run.attempt or release.status not in (
            ReleaseStatus.encoding,
            ReleaseStatus.packaging,
        ):
            return None
        catalog.set_status(release, ReleaseStatus.packaging, progress=0.0)
        title = repository.get_title(s, release.title_id)
        tracks = track_publishing.specs(s, release.id)
        channel_map = release.channel_map
        chunk_outputs = [dict(c.outputs) for c in repository.chunks_in_order(s, run.id)]
        with step(Step.key):
            if release.content_key_id is None:  # pragma: no cover - prepare() made it
                raise InvalidInput("the release has no content key", code="key_not_found")
            key = keys.content_key(s, release.content_key_id)
            segment_seconds = float(run.plan["segment_seconds"])
            period_segments, periods = key_periods(float(run.plan["duration"]), segment_seconds)
            # Period 0 uses the release's first key; each later period gets its own. A retried
            # packaging makes new ones: keys no grant names and no segment uses open nothing.
            rotation = [keys.create_content_key(s, release.id) for _ in range(periods - 1)]
        return PackageWork(
            release_id=release.id,
            attempt=run.attempt,
            original_language=title.original_language,
            assets=_asset_files(s, release.id),
            chunk_outputs=chunk_outputs,
            key=key,
            tracks=list(tracks),
            channel_map=channel_map,
            rotation=rotation,
            period_segments=period_segments,
            segment_seconds=segment_seconds,
            rates=run.plan.get("rates"),
            protection=ProtectionProfile(
                release.protection_profile or get_settings().protection_profile
            ),
        )


class _PackagingProgress:
    """Reports packaging's share done (and so a sign of life) between its pieces of work."""

    def __init__(self, work: PackageWork) -> None:
        self.work = work

    def __call__(self, fraction: float) -> None:
        with unit_of_work() as s:
            wanted = service.update_packaging_progress(
                s, self.work.release_id, self.work.attempt, fraction
            )
        if not wanted:
            raise RunSuperseded(self.work.release_id)


def package(session: Session, run_id: str) -> None:
    work = _load_package(run_id)
    if work is None:
        return
    try:
        _package(session, run_id, work)
    except RunSuperseded:
        log.info("packaging no longer wanted", extra={"run_id": run_id})


def _join_chunks(
    ladder: LadderPlan, work: PackageWork, tmp: Path, progress: _PackagingProgress
) -> list[RenditionFile]:
    """Every rung's chunks joined; a marked rung's watermark variant B comes after the
    rungs (``variant="b"``)."""
    renditions = []
    wanted = [RenditionFile(rung, Path()) for rung in ladder.renditions]
    wanted += [RenditionFile(rung, Path(), variant="b") for rung in ladder.marked_rungs]
    # not marked when these chunks were encoded
    wanted = [w for w in wanted if all(w.output_name in o for o in work.chunk_outputs)]
    parts = {
        w.output_name: [
            (outputs[w.output_name], tmp / "chunks" / w.output_name / f"{index:05d}.mp4")
            for index, outputs in enumerate(work.chunk_outputs)
        ]
        for w in wanted
    }
    _download_all([part for rung_parts in parts.values() for part in rung_parts])
    for n, rendition in enumerate(wanted):
        name = rendition.output_name
        joined = concat_renditions([path for _, path in parts[name]], tmp / "video" / f"{name}.mp4")
        renditions.append(RenditionFile(rendition.rung, joined, rendition.variant))
        progress(0.4 * (n + 1) / len(wanted))
    return renditions


def _audio_tracks(
    probe: ProbeResult, work: PackageWork, tmp: Path, warnings: list[dict[str, str]]
) -> list[tuple[str, AudioTrack]]:
    """Every published audio track (the master's own streams, dubs, commentaries); one that
    fails is a warning, all failing fails the step (transcoding.track_publishing)."""
    return track_publishing.build_audio(
        probe,
        work.tracks,
        channel_map=work.channel_map,
        asset_path=lambda asset_id: local_copy(_asset_key(work.assets, asset_id)),
        work=tmp,
        profile=profile(),
        warnings=warnings,
        encoded=_early_audio(work),
    )


def _subtitle_tracks(
    probe: ProbeResult, work: PackageWork, tmp: Path, warnings: list[dict[str, str]]
) -> list[tuple[str, SubtitleTrack]]:
    """Every published subtitle track, sidecar or embedded; one that fails is a warning."""
    return track_publishing.build_subtitles(
        probe,
        work.tracks,
        asset_path=lambda asset_id: local_copy(_asset_key(work.assets, asset_id)),
        work=tmp,
        warnings=warnings,
    )


def _asset_key(assets: list[AssetFile], asset_id: str) -> str:
    return next(a.storage_key for a in assets if a.id == asset_id)


def _images(
    probe: ProbeResult, work: PackageWork, tmp: Path, warnings: list[dict[str, str]]
) -> tuple[Path | None, ThumbnailSprite | None]:
    """Poster and thumbnail sprite: each optional, a failure is a warning. The sprite is
    tiled from the thumbnails each chunk made beside its encode."""
    poster: Path | None = None
    sprite: ThumbnailSprite | None = None
    try:
        poster = make_poster(probe, tmp / "images" / "poster.jpg")
    except RunSuperseded:
        raise
    except Exception as exc:
        warnings.append(warning_for(Step.images, "poster_failed", "the poster", exc))
    try:
        layout = sprite_layout(probe)
        tiles = tmp / "images" / "thumbs"
        made = {name: key for outputs in work.chunk_outputs for name, key in outputs.items()}
        names = [Path(TILE_NAME % i) for i in range(layout.count)]
        # A missing one (its chunk's thumbnails failed) makes tile_sprite fail: a warning.
        _download_all([(made[n.stem], tiles / n) for n in names if n.stem in made])
        sprite = tile_sprite(tiles, tmp / "images" / "sprite", layout)
    except RunSuperseded:
        raise
    except Exception as exc:
        warnings.append(warning_for(Step.images, "sprite_failed", "the thumbnail sprite", exc))
    return poster, sprite


def _quality(
    probe: ProbeResult,
    ladder: LadderPlan,
    renditions: list[RenditionFile],
    warnings: list[dict[str, str]],
) -> list[dict[str, Any]] | None:
    """Every rendition scored against the master over sampled windows (transcoding.quality).
    The scores inform the studio; a scorer that fails is a warning, never a lost release."""
    spec = ladder.profile.quality
    if spec is None:
        return None
    windows = sample_windows(
        probe.duration or 0.0,
        count=spec.samples,
        seconds=spec.sample_seconds,
        gop_seconds=ladder.gop_seconds,
    )
    with step(Step.quality):
        try:
            scores = score_renditions(probe, ladder, renditions, windows, vmaf=spec.vmaf)
            return [q.as_json() for q in scores]
        except (ToolFailed, ValueError, OSError) as exc:
            warnings.append(warning_for(Step.quality, "quality_failed", "the quality scores", exc))
            return None


def _publish(prefix: str, packaged: PackageResult, images: list[Path]) -> None:
    files = sorted(p for p in packaged.out_dir.rglob("*") if p.is_file())
    _upload_all(
        [(f"{prefix}/{p.relative_to(packaged.out_dir).as_posix()}", p) for p in files]
        + [(f"{prefix}/images/{p.name}", p) for p in images]
    )


def _package(session: Session, run_id: str, work: PackageWork) -> None:
    progress = _PackagingProgress(work)
    warnings: list[dict[str, str]] = []
    with step(Step.probe):
        master_asset = next(a for a in work.assets if a.kind is AssetKind.master)
        probe = check_master(local_copy(master_asset.storage_key))
    with step(Step.plan):
        ladder = plan(probe, work.rates)
    settings = get_settings()
    release_id, attempt = work.release_id, work.attempt
    prefix = f"hls/{release_id}/{attempt}"
    with scratch("package-") as tmp, ThreadPoolExecutor(max_workers=4) as pool:
        # Four independent pieces of work, each its own FFmpeg processes or transfers: run
        # side by side, the tail lasts as long as the longest (the chunks' join, for a
        # feature), not their sum. Results are taken in this order, so the first failing
        # step in it is the one the release reports.
        joining = _in_step(pool, Step.concat, _join_chunks, ladder, work, tmp, progress)
        encoding_audio = _in_step(pool, Step.audio, _audio_tracks, probe, work, tmp, warnings)
        converting = _in_step(pool, Step.subtitles, _subtitle_tracks, probe, work, tmp, warnings)
        imaging = _in_step(pool, Step.images, _images, probe, work, tmp, warnings)
        joined = joining.result()
        renditions = [r for r in joined if not r.variant]
        variants_b = [r for r in joined if r.variant == "b"]
        # Scoring reads the joined renditions and the master: beside audio, subtitles and
        # images, not after them (_quality records its own step and turns failure into a warning).
        scoring = pool.submit(_quality, probe, ladder, renditions, warnings)
        audio = encoding_audio.result()
        subtitles = converting.result()
        scores = scoring.result()
        progress(0.6)
        with step(Step.package):
            if work.protection is ProtectionProfile.cbcs:
                packaged = package_cmaf(
                    renditions,
                    tmp / "hls",
                    duration=probe.duration or 0.0,
                    audio=[track for _, track in audio],
                    subtitles=[track for _, track in subtitles],
                    segment_seconds=ladder.segment_seconds,
                    period_keys=[
                        _packager_key(k, settings.base_url) for k in [work.key, *work.rotation]
                    ],
                    period_segments=work.period_segments,
                )
            else:
                packaged = package_hls(
                    renditions,
                    tmp / "hls",
                    duration=probe.duration or 0.0,
                    audio=[track for _, track in audio],
                    subtitles=[track for _, track in subtitles],
                    segment_seconds=ladder.segment_seconds,
                    key=_packager_key(work.key, settings.base_url),
                    rotation_keys=[_packager_key(k, settings.base_url) for k in work.rotation],
                    rotate_every_segments=work.period_segments if work.rotation else None,
                )
            marked = (
                _watermark_variants(
                    ladder, work, renditions, variants_b, packaged, tmp, probe.duration or 0.0
                )
                if variants_b
                else None
            )
        if packaged.iframe_error:
            warnings.append(
                warning_for(
                    Step.package,
                    "iframe_playlists_failed",
                    "the I-frame (trick play) playlists",
                    packaged.iframe_error,
                )
            )
        poster, sprite = imaging.result()
        progress(0.85)
        images = [
            *([poster] if poster else []),
            *([*sprite.images, sprite.vtt] if sprite else []),
        ]
        with step(Step.publish):
            _publish(prefix, packaged, images)

        release = catalog.get_release(session, release_id, for_update=True)
        if release.attempt != attempt or release.status is not ReleaseStatus.packaging:
            return
        release.hls_prefix = prefix
        release.quality = scores
        release.master_playlist_key = (
            f"{prefix}/{packaged.master_playlist.relative_to(packaged.out_dir).as_posix()}"
        )
        release.poster_key = f"{prefix}/images/{poster.name}" if poster else None
        release.sprite_key = (
            f"{prefix}/images/{sprite.images[0].name}" if sprite and sprite.images else None
        )
        release.sprite_vtt_key = f"{prefix}/images/{sprite.vtt.name}" if sprite else None
        playlists = {
            track_id: path.relative_to(packaged.out_dir).as_posix()
            for (track_id, _), path in [
                *zip(audio, packaged.audio_playlists, strict=True),
                *zip(subtitles, packaged.subtitle_playlists, strict=True),
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
            "protection": work.protection.value,
            # The cbcs profile's DASH manifest, relative to the master's folder.
            "dash_manifest": (
                packaged.dash_manifest.relative_to(packaged.out_dir).as_posix()
                if packaged.dash_manifest
                else None
            ),
            # Segment i of every playlist is encrypted with key_ids[i // period_segments].
            "key_periods": {
                "seconds": work.period_segments * work.segment_seconds,
                "key_ids": [work.key.key_id, *(k.key_id for k in work.rotation)],
            },
            # Forensic watermark (docs/watermark.md): B folders, the detector's reference.
            **({"watermark": marked} if marked is not None else {}),
        }
        for warning in warnings:
            catalog.add_warning(release, **warning)
        catalog.set_status(release, ReleaseStatus.ready, progress=1.0)
        # The catalog shows viewers which languages they can hear and read before buying.
        track_publishing.record_packaged(session, release, playlists, work.tracks)
        repository.get_run(session, run_id).finished_at = utcnow()
        enqueue(
            session,
            service.NOTIFY_JOB,
            release_id=release_id,
            event="release.ready",
            attempt=attempt,
        )
    # Chunks of every run of this release: earlier runs' were kept for reuse.
    get_store().delete_prefix(f"work/{release_id}/")


def _in_step(
    pool: ThreadPoolExecutor,
    name: Step,
    work: Callable[_P, _R],
    *args: _P.args,
    **kwargs: _P.kwargs,
) -> Future[_R]:
    """``work`` on the pool, inside ``step(name)`` so its failure has that step's code."""

    def run() -> _R:
        with step(name):
            return work(*args, **kwargs)

    return pool.submit(run)


def _watermark_variants(
    ladder: LadderPlan,
    work: PackageWork,
    renditions: list[RenditionFile],
    variants_b: list[RenditionFile],
    packaged: PackageResult,
    tmp: Path,
    duration: float,
) -> dict[str, Any]:
    """Package variant B of the marked rungs with the same segmenting and keys as A, put
    its segments beside A's, and store the detector's reference (outside the release's
    media folder: nothing a grant opens). What ``release.outputs["watermark"]`` says."""
    settings = get_settings()
    first, *rotation = [_packager_key(k, settings.base_url) for k in [work.key, *work.rotation]]
    # The same packager, segment duration and period keys as A: B's segments line up with
    # A's one for one and decrypt with A's keys (and, cbcs, A's init segment).
    packaged_b = (
        package_cmaf(
            variants_b,
            tmp / "hls_b",
            duration=duration,
            segment_seconds=ladder.segment_seconds,
            period_keys=[first, *rotation],
            period_segments=work.period_segments,
        )
        if work.protection is ProtectionProfile.cbcs
        else package_hls(
            variants_b,
            tmp / "hls_b",
            duration=duration,
            segment_seconds=ladder.segment_seconds,
            key=first,
            rotation_keys=rotation,
            rotate_every_segments=work.period_segments if work.rotation else None,
        )
    )
    spec = ladder.profile.watermark
    every = spec.every if spec else 1
    folders = [video_folder(r.rung.name) for r in variants_b]
    watermark.place_variants(packaged_b.out_dir, packaged.out_dir, folders, every)
    if packaged.dash_manifest is not None:
        list_segments(packaged.dash_manifest, folders)
    # Cell means do not depend on the picture size: the smallest marked rung is the
    # cheapest to decode and serves as the reference for a capture of any rung.
    smallest_b = variants_b[-1]
    smallest_a = next(r for r in renditions if r.rung.name == smallest_b.rung.name)
    data = watermark.reference(
        smallest_a.path,
        smallest_b.path,
        frame_rate=ladder.frame_rate,
        segment_seconds=ladder.segment_seconds,
        folders=folders,
        every=every,
    )
    key = f"forensics/{work.release_id}/{work.attempt}/reference.json"
    get_store().put_file(
        key, watermark.dump_reference(data, tmp / "reference.json"), "application/json"
    )
    return {
        "folders": folders,
        "reference": key,
        "segments": len(data["a"]),
        "strength": spec.strength if spec else None,
        "every": every,
    }


def key_periods(duration: float, segment_seconds: float) -> tuple[int, int]:
    """(segments per key period, number of periods) for a film of ``duration`` seconds:
    one key per ``playback_key_period_seconds`` of content, in whole segments (a track one
    segment longer than the video keeps the last period's key: see package_hls)."""
    per_period = max(1, round(get_settings().playback_key_period_seconds / segment_seconds))
    segments = max(1, math.ceil(duration / segment_seconds - 1e-6))
    return per_period, math.ceil(segments / per_period)


def _packager_key(key: keys.PlainKey, base_url: str) -> ContentKey:
    return ContentKey(
        key=key.key,
        key_id=bytes.fromhex(key.key_id),
        key_uri_template=KEY_URI_TEMPLATE.format(base=base_url.rstrip("/")),
    )


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
