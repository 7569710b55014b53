"""A release's tracks through the pipeline: detected when the uploads are probed, encoded and
labelled when the release is packaged, relabelled when the studio corrects them later.

Labels (language, name, role, default, forced, SDH) live only in the master playlist's
``EXT-X-MEDIA`` lines, so a correction after packaging writes a new master playlist next to
the old one and points the release at it: no re-encode, no new transcode run, and no
object that a cache may hold is ever overwritten (the new master has a new key).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from sqlalchemy.orm import Session

from catalog import service as catalog
from catalog import tracks as catalog_tracks
from catalog.models import Release, ReleaseStatus, ReleaseTrack, TrackKind, TrackStatus
from core.db import unit_of_work
from core.outbox import enqueue
from core.storage import get_store
from transcoding.audio_groups import encode_audio_group
from transcoding.encode import encode_audio, extract_text_subtitles
from transcoding.ladder import LadderProfile
from transcoding.package import (
    AudioRole,
    AudioTrack,
    RenditionLabel,
    SubtitleTrack,
    relabel_master,
)
from transcoding.policy import check_audio_sidecar, check_subtitle_sidecar
from transcoding.probe import ProbeResult
from transcoding.steps import RunSuperseded, Step, warning_for
from transcoding.subtitles import load_subtitle_file
from transcoding.tracks import AudioGroup, SidecarInfo, detect_tracks, plan_audio_groups

REPUBLISH_JOB = "transcoding.release.republish"
STEP = "tracks"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrackSpec:
    """A track row as the slow steps need it, read in a short transaction."""

    id: str
    kind: TrackKind
    source: str
    status: TrackStatus
    playlist: str | None
    label: RenditionLabel

    @classmethod
    def of(cls, row: ReleaseTrack) -> TrackSpec:
        return cls(
            id=row.id,
            kind=row.kind,
            source=row.source,
            status=row.status,
            playlist=row.playlist,
            label=RenditionLabel(
                language=row.language,
                name=row.name,
                default=row.is_default,
                role=AudioRole(row.role.value) if row.role is not None else None,
                forced=row.forced,
                sdh=row.sdh,
            ),
        )


def specs(session: Session, release_id: str) -> list[TrackSpec]:
    return [TrackSpec.of(row) for row in catalog_tracks.tracks(session, release_id)]


# --- probe step ------------------------------------------------------------------------------


def record_detected(
    session: Session,
    release: Release,
    master: ProbeResult,
    sidecars: Sequence[SidecarInfo],
    original_language: str,
) -> None:
    """Detect the release's tracks, store them (keeping the studio's corrections) and warn
    about what a viewer would otherwise miss silently."""
    detected, warnings = detect_tracks(
        master, sidecars, original_language=original_language, channel_map=release.channel_map
    )
    catalog_tracks.record_detected(session, release.id, detected)
    for warning in warnings:
        catalog.add_warning(release, code=warning.code, detail=warning.detail, step="probe")


# --- package step ----------------------------------------------------------------------------


Warnings = list[dict[str, str]]


def _encode_audio_track(
    master: ProbeResult,
    spec: TrackSpec,
    groups: Mapping[str, AudioGroup],
    out: Path,
    asset_path: Callable[[str], Path],
    profile: LadderProfile,
) -> None:
    kind, _, ref = spec.source.partition(":")
    if kind == "asset":
        # Sidecars are checked against the input policy again: never an unchecked file.
        encode_audio(check_audio_sidecar(asset_path(ref)), out, profile=profile)
    else:
        encode_audio_group(master, groups[spec.source], out, profile=profile)


def published_audio(tracks: Sequence[TrackSpec]) -> list[TrackSpec]:
    return [t for t in tracks if t.status is TrackStatus.published and t.kind is TrackKind.audio]


def encode_tracks_early(
    master: ProbeResult,
    tracks: Sequence[TrackSpec],
    *,
    channel_map: Sequence[Sequence[int]] | None,
    asset_path: Callable[[str], Path],
    work: Path,
    profile: LadderProfile,
) -> list[tuple[TrackSpec, Path]]:
    """Every published audio track encoded ahead of packaging, while the chunks encode; a
    track that fails is left out (packaging encodes it again and reports it)."""
    groups = {g.source: g for g in plan_audio_groups(master, channel_map)[0]}
    done = []
    for n, spec in enumerate(published_audio(tracks)):
        out = work / f"{n:03d}.mp4"
        try:
            _encode_audio_track(master, spec, groups, out, asset_path, profile)
        except RunSuperseded:
            raise
        except Exception:
            log.warning("audio track %s left to packaging", spec.id, exc_info=True)
            continue
        done.append((spec, out))
    return done


def build_audio(
    master: ProbeResult,
    tracks: Sequence[TrackSpec],
    *,
    channel_map: Sequence[Sequence[int]] | None,
    asset_path: Callable[[str], Path],
    work: Path,
    profile: LadderProfile,
    warnings: Warnings,
    encoded: Callable[[TrackSpec, Path], bool] | None = None,
) -> list[tuple[str, AudioTrack]]:
    """Encode every published audio track: (track id, what the packager needs).
    ``encoded(spec, out)`` puts a track encoded ahead of time at ``out`` when there is one
    (:func:`encode_tracks_early`); the others are encoded here.

    One track that fails becomes a warning and the film is published without it; when every
    track fails the film would be silent, so the audio step fails with the first error."""
    groups = {g.source: g for g in plan_audio_groups(master, channel_map)[0]}
    audio: list[tuple[str, AudioTrack]] = []
    first_error: Exception | None = None
    for n, spec in enumerate(published_audio(tracks)):
        label = spec.label
        out = work / "audio" / f"{n:03d}.mp4"
        try:
            if encoded is None or not encoded(spec, out):
                _encode_audio_track(master, spec, groups, out, asset_path, profile)
        except RunSuperseded:
            raise
        except Exception as exc:
            first_error = first_error or exc
            what = f"audio track {label.name!r} ({label.language})"
            warnings.append(warning_for(Step.audio, "audio_track_failed", what, exc))
            continue
        role = label.role or AudioRole.original
        audio.append((spec.id, AudioTrack(out, label.language, label.name, role, label.default)))
    if first_error is not None and not audio:
        raise first_error
    if audio and not any(track.default for _, track in audio):
        # The default track was the one that failed: players still need one to start with.
        track_id, first = audio[0]
        audio[0] = (track_id, replace(first, default=True))
    return audio


def build_subtitles(
    master: ProbeResult,
    tracks: Sequence[TrackSpec],
    *,
    asset_path: Callable[[str], Path],
    work: Path,
    warnings: Warnings,
) -> list[tuple[str, SubtitleTrack]]:
    """Convert every published subtitle track to cues. A track that fails (unreadable text,
    an extraction error) becomes a warning: the film plays without it, and the studio can
    upload a file instead."""
    streams = {s.index: s for s in master.subtitles}
    subtitles: list[tuple[str, SubtitleTrack]] = []
    published = [t for t in tracks if t.status is TrackStatus.published]
    for spec in (t for t in published if t.kind is TrackKind.subtitle):
        label = spec.label
        kind, _, ref = spec.source.partition(":")
        try:
            if kind == "asset":
                cues = check_subtitle_sidecar(asset_path(ref))
            else:
                vtt = extract_text_subtitles(
                    master, streams[int(ref)], work / "subs" / f"embedded-{ref}.vtt"
                )
                cues = load_subtitle_file(vtt)
        except RunSuperseded:
            raise
        except Exception as exc:
            what = f"subtitles {label.name!r} ({label.language})"
            warnings.append(warning_for(Step.subtitles, "subtitle_track_failed", what, exc))
            continue
        subtitles.append(
            (
                spec.id,
                SubtitleTrack(
                    cues, label.language, label.name, label.default, label.forced, label.sdh
                ),
            )
        )
    return subtitles


def outputs_of(tracks: Sequence[TrackSpec]) -> dict[str, list[dict[str, object]]]:
    """The release's ``outputs`` entries for its published, packaged tracks."""
    packaged = [t for t in tracks if t.playlist and t.status is TrackStatus.published]
    return {
        "audio": [
            {
                "language": t.label.language,
                "name": t.label.name,
                "role": (t.label.role or AudioRole.original).value,
                "default": t.label.default,
                "playlist": t.playlist,
            }
            for t in packaged
            if t.kind is TrackKind.audio
        ],
        "subtitles": [
            {
                "language": t.label.language,
                "name": t.label.name,
                "default": t.label.default,
                "forced": t.label.forced,
                "sdh": t.label.sdh,
                "playlist": t.playlist,
            }
            for t in packaged
            if t.kind is TrackKind.subtitle
        ],
    }


def record_packaged(
    session: Session, release: Release, playlists: Mapping[str, str], used: Sequence[TrackSpec]
) -> None:
    """After packaging, in the step's final transaction (the release row locked): note each
    track's playlist, and if the studio corrected a label while the release was packaging,
    republish so the correction is not lost."""
    rows = catalog_tracks.tracks(session, release.id)
    for row in rows:
        row.playlist = playlists.get(row.id)
    now = [TrackSpec.of(row) for row in rows]
    if [t.label for t in now] != [t.label for t in used]:
        request_republish(session, release)
    publish_labels(session, release, now)


def publish_labels(session: Session, release: Release, tracks: Sequence[TrackSpec]) -> None:
    """What the catalog and the studio see of the tracks (languages a viewer can choose)."""
    release.outputs = {**(release.outputs or {}), **outputs_of(tracks)}
    packaged = [t for t in tracks if t.playlist and t.status is TrackStatus.published]
    catalog.set_track_languages(
        session,
        release.title_id,
        audio=sorted(
            {
                t.label.language
                for t in packaged
                if t.kind is TrackKind.audio
                and t.label.role not in (AudioRole.commentary, AudioRole.description)
            }
        ),
        subtitles=sorted({t.label.language for t in packaged if t.kind is TrackKind.subtitle}),
    )


# --- relabel after packaging -----------------------------------------------------------------


def relabel(
    session: Session, release: Release, track_id: str, changes: catalog_tracks.TrackChanges
) -> ReleaseTrack:
    """A studio's correction of one track. Before packaging it is simply what the packager
    will use; on a ready release the master playlist is republished (a job, after commit)."""
    track = catalog_tracks.get_track(session, release.id, track_id)
    catalog_tracks.apply_changes(session, track, changes)
    if release.status is ReleaseStatus.ready:
        request_republish(session, release)
    return track


def request_republish(session: Session, release: Release) -> None:
    enqueue(session, REPUBLISH_JOB, release_id=release.id, attempt=release.attempt)


def republish(session: Session, release_id: str, attempt: int) -> None:
    """Write the master playlist with the tracks' current labels and point the release at
    it. Every correction enqueues one of these; one that finds the labels changed again
    since it read them leaves the publishing to the job the newer correction enqueued."""
    with unit_of_work() as s:
        release = catalog.get_release(s, release_id)
        if (
            release.attempt != attempt
            or release.status is not ReleaseStatus.ready
            or not release.master_playlist_key
            or not release.hls_prefix
        ):
            return
        used = specs(s, release_id)
        master_key, prefix = release.master_playlist_key, release.hls_prefix
    store = get_store()
    labels = {t.playlist: t.label for t in used if t.playlist}
    text = relabel_master(store.get_bytes(master_key).decode("utf-8"), labels)
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    new_key = f"{prefix}/master-{digest}.m3u8"
    if new_key != master_key:
        store.put_bytes(new_key, text.encode(), "application/vnd.apple.mpegurl")

    release = catalog.get_release(session, release_id, for_update=True)
    if release.attempt != attempt or release.status is not ReleaseStatus.ready:
        return
    now = specs(session, release_id)
    if [t.label for t in now] != [t.label for t in used]:
        return  # corrected again meanwhile: that correction's job publishes
    release.master_playlist_key = new_key
    publish_labels(session, release, now)
