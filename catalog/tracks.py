"""The audio and subtitle tracks of a release, as detected and as the studio corrected them.

Transcoding detects a release's tracks when it probes the uploads (every audio stream of
the master, or the groups of mono streams its channel map makes; embedded subtitle
streams; uploaded dubs, commentaries and subtitle files) and stores one
:class:`ReleaseTrack` per track. The studio reviews and corrects language, name, role and
the default flags; the packager labels the HLS renditions from these rows, and a
correction after packaging republishes the master playlist from them.

A track is keyed by its ``source`` (``stream:3``, ``streams:1+2``, ``asset:<id>``), so a
studio's corrections survive a new transcode run of the same uploads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from catalog import repository
from catalog.locales import canonical_locale
from catalog.models import ReleaseTrack, TrackKind, TrackRole, TrackStatus
from core.errors import InvalidInput, NotFound


@dataclass(frozen=True)
class DetectedTrack:
    """One track as transcoding found it; ``language`` is already BCP 47."""

    kind: TrackKind
    source: str
    codec: str | None
    channels: int | None
    channel_layout: str | None
    language: str
    detected_language: str | None
    name: str
    role: TrackRole | None
    is_default: bool
    forced: bool
    sdh: bool
    status: TrackStatus


@dataclass(frozen=True)
class TrackChanges:
    """A studio's correction; None leaves a field as it is."""

    language: str | None = None
    name: str | None = None
    role: TrackRole | None = None
    is_default: bool | None = None
    forced: bool | None = None
    sdh: bool | None = None


def tracks(session: Session, release_id: str) -> Sequence[ReleaseTrack]:
    return repository.release_tracks(session, release_id)


def get_track(session: Session, release_id: str, track_id: str) -> ReleaseTrack:
    track = repository.find_track(session, track_id)
    if track is None or track.release_id != release_id:
        raise NotFound("no such track on this release", code="track_not_found")
    return track


def record_detected(
    session: Session, release_id: str, detected: Sequence[DetectedTrack]
) -> list[ReleaseTrack]:
    """Replace the release's tracks with ``detected``; a track the studio has corrected
    keeps the studio's labels. Tracks whose source is gone are deleted."""
    existing = {t.source: t for t in repository.release_tracks(session, release_id)}
    kept: list[ReleaseTrack] = []
    for position, found in enumerate(detected):
        row = existing.pop(found.source, None)
        if row is None:
            row = ReleaseTrack(release_id=release_id, source=found.source)
            session.add(row)
        row.position = position
        row.kind = found.kind
        row.codec = found.codec
        row.channels = found.channels
        row.channel_layout = found.channel_layout
        row.detected_language = found.detected_language
        row.status = found.status
        row.playlist = None
        if not row.edited:
            row.language = found.language
            row.name = found.name
            row.role = found.role
            row.is_default = found.is_default
            row.forced = found.forced
            row.sdh = found.sdh
        kept.append(row)
    for gone in existing.values():
        session.delete(gone)
    # A default the studio chose wins over a detected one: HLS allows one per group.
    for kind in TrackKind:
        if any(r.edited and r.is_default and r.kind is kind for r in kept):
            for row in kept:
                if row.kind is kind and not row.edited:
                    row.is_default = False
    session.flush()
    return kept


def apply_changes(session: Session, track: ReleaseTrack, changes: TrackChanges) -> ReleaseTrack:
    """Apply a studio's correction, with the rules a player needs: one default per kind,
    roles only on audio, forced/SDH only on subtitles."""
    if track.kind is TrackKind.subtitle and changes.role is not None:
        raise InvalidInput("subtitle tracks have no role", code="track_field_not_applicable")
    if track.kind is TrackKind.audio and (changes.forced is not None or changes.sdh is not None):
        raise InvalidInput(
            "forced and sdh apply to subtitle tracks only", code="track_field_not_applicable"
        )
    if changes.language is not None:
        track.language = canonical_locale(changes.language)
    if changes.name is not None:
        track.name = changes.name.strip()
    if changes.role is not None:
        track.role = changes.role
    if changes.forced is not None:
        track.forced = changes.forced
    if changes.sdh is not None:
        track.sdh = changes.sdh
    if changes.is_default is not None:
        if changes.is_default:
            for other in repository.release_tracks(session, track.release_id):
                if other.kind is track.kind and other.id != track.id:
                    other.is_default = False
        track.is_default = changes.is_default
    if track.is_default and track.kind is TrackKind.audio and track.role is TrackRole.commentary:
        # A player must never start a film in its commentary.
        raise InvalidInput(
            "a commentary track cannot be the default audio", code="commentary_not_default"
        )
    track.edited = True
    session.flush()
    return track
