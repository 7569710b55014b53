"""Studio routes: review and correct a release's audio and subtitle tracks; channel map."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from api.contract import problems
from api.deps import CallerScope, DbSession, ReadDb, StudioUser
from api.track_schemas import ChannelMap, ChannelMapRead, TrackRead, TrackUpdate
from catalog import service as catalog
from catalog import tracks
from catalog.tracks import TrackChanges
from transcoding import service as transcoding

router = APIRouter(prefix="/v1/studio", tags=["studio: tracks"])

Id = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[0-9a-f]+$")]


@router.get(
    "/releases/{release_id}/tracks",
    summary="The release's audio and subtitle tracks, as detected and corrected",
    response_model=list[TrackRead],
    responses=problems("release_not_found"),
)
def list_tracks(
    session: ReadDb, _: StudioUser, scope: CallerScope, release_id: Id
) -> list[TrackRead]:
    """Audio and subtitle tracks found in the master and the files uploaded with it, with the corrections made since."""
    release = catalog.get_studio_release(session, release_id, scope)
    return [TrackRead.model_validate(t) for t in tracks.tracks(session, release.id)]


@router.patch(
    "/releases/{release_id}/tracks/{track_id}",
    summary="Correct a track's language, name, role or flags (no re-encode)",
    response_model=TrackRead,
    responses=problems(
        "commentary_not_default",
        "invalid_locale",
        "release_not_found",
        "track_field_not_applicable",
        "track_not_found",
    ),
)
def update_track(
    session: DbSession,
    _: StudioUser,
    scope: CallerScope,
    release_id: Id,
    track_id: Id,
    body: TrackUpdate,
) -> TrackRead:
    """Metadata only: the next packaging uses it; nothing is encoded again."""
    catalog.get_studio_release(session, release_id, scope)
    # Locked: a correction and the end of packaging must not interleave (see
    # transcoding.track_publishing.record_packaged).
    release = catalog.get_release(session, release_id, for_update=True)
    changes = TrackChanges(
        language=body.language,
        name=body.name,
        role=body.role,
        is_default=body.is_default,
        forced=body.forced,
        sdh=body.sdh,
    )
    return TrackRead.model_validate(transcoding.relabel_track(session, release, track_id, changes))


@router.get(
    "/releases/{release_id}/channel-map",
    summary="How the master's audio streams are grouped into tracks",
    response_model=ChannelMapRead,
    responses=problems("release_not_found"),
)
def get_channel_map(
    session: ReadDb, _: StudioUser, scope: CallerScope, release_id: Id
) -> ChannelMapRead:
    """Masters with one mono stream per channel need a map saying which streams form which track."""
    release = catalog.get_studio_release(session, release_id, scope)
    return ChannelMapRead(groups=release.channel_map)


@router.put(
    "/releases/{release_id}/channel-map",
    summary="Group the master's mono audio streams into stereo / 5.1 / 7.1 tracks",
    response_model=ChannelMapRead,
    responses=problems("release_busy", "release_not_found", "channel_map_invalid"),
)
def set_channel_map(
    session: DbSession, _: StudioUser, scope: CallerScope, release_id: Id, body: ChannelMap
) -> ChannelMapRead:
    """Applies to the next transcode of the release."""
    release = catalog.get_studio_release(session, release_id, scope)
    transcoding.set_channel_map(session, release, body.groups)
    return ChannelMapRead(groups=release.channel_map)
