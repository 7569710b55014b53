"""Viewer playback: start a session, heartbeats and refreshes (each a new grant), and the
hot paths (playlists, keys, media) that trust the grant alone.

Decisions (start, refresh, heartbeat, stop) parse on the event loop and run the whole
transaction in one threadpool call (:func:`api.deps.in_transaction`: no connection held
while waiting for a thread). The hot paths (served by api/hot_paths.py) do no I/O on the
event loop: they verify the grant (an HMAC) and read immutable things from memory, loading
a missing playlist template or content key in the threadpool. The grant is sent as
``Authorization: Bearer <grant>`` or, for players that cannot set headers, as ``?token=``,
which is then carried into every URL of the rewritten playlists. docs/playback.md has the model and the numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel
from sqlalchemy.orm import Session

from api.contract import PLAYBACK_GRANT, problems
from api.deps import (
    BearerCredentials,
    bearer_token,
    in_group_transaction,
    in_transaction,
    principal_of,
    scope_country,
)
from api.playback_schemas import (
    AudioTrackRead,
    GrantRead,
    Heartbeat,
    HeartbeatRead,
    PlaybackStart,
    PlaybackStarted,
    Seek,
    SubtitleTrackRead,
)
from api.problems import app_error_response
from api.screener_schemas import ScreenerPlaybackStart
from core.db import utcnow
from core.errors import InvalidInput, NotAuthenticated, NotFound
from core.settings import get_settings
from core.storage import get_store
from drm import keys as content_keys
from drm import manifests
from drm.license import LicenseSystem
from drm.playlists import templates
from playback import service as playback
from playback.service import Issued, Refused

router = APIRouter(prefix="/v1/playback", tags=["playback"])

MPEGURL = "application/vnd.apple.mpegurl"
NO_STORE = {"Cache-Control": "no-store"}
SESSION_ID = r"[0-9a-f]{32}"
KEY_ID = r"[0-9a-fA-F]{32}"
PATH_MAX = 300
SessionId = Annotated[str, Path(pattern=f"^{SESSION_ID}$", description="Playback session id")]
TOKEN_MAX = 4096
DEVICE_MAX = 200
TokenQuery = Annotated[
    str | None,
    Query(
        alias="token",
        max_length=TOKEN_MAX,
        description="Playback grant, for players that cannot send an Authorization header",
    ),
]
DeviceHeader = Annotated[
    str | None,
    Header(
        alias="X-Device-Id",
        max_length=DEVICE_MAX,
        description="This device's id; required for keys, must be the grant's",
    ),
]


def _grant_token(request: Request, token_query: str | None) -> tuple[str, str]:
    """The grant sent with the request, and the query suffix carrying it into child URIs."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip(), ""
    if token_query:
        return token_query, f"?token={token_query}"
    raise NotAuthenticated(
        "send the playback grant: 'Authorization: Bearer <grant>' or ?token=",
        code="not_authenticated",
    )


def _json(answer: BaseModel) -> Response:
    """A decision's answer, serialised once: the same bytes the framework writes for the
    declared response model, without its second validation of a model we just built."""
    return Response(answer.model_dump_json(), media_type="application/json")


def _refused(request: Request, refused: Refused) -> JSONResponse:
    # Returned, not raised: the session's end commits with the request's transaction.
    return app_error_response(request, refused.error)


# --- the hot paths: keys, media, playlists (the grant alone; no I/O on the event loop) --------
#
# Declared first: routes are matched in order and these are the most frequent requests. The
# grant and device id are read from the request by one parser (checked against the limits
# below) and documented as parameters through openapi_extra, which spares per-request
# parameter validation by the framework: it cost more than the route's own work.

GRANT_PARAMETERS: dict[str, Any] = {
    "parameters": [
        {
            "name": "token",
            "in": "query",
            "required": False,
            "description": "Playback grant, for players that cannot send an Authorization header",
            "schema": {"type": "string", "maxLength": TOKEN_MAX},
        },
        {
            "name": "X-Device-Id",
            "in": "header",
            "required": False,
            "description": "This device's id; required for keys, must be the grant's",
            "schema": {"type": "string", "maxLength": DEVICE_MAX},
        },
    ]
}


def _hot_call(request: Request) -> tuple[str, str, str | None]:
    """(grant, query suffix carrying it into child URIs, device id) of a hot-path request."""
    token = request.query_params.get("token") if request.scope["query_string"] else None
    device = request.headers.get("x-device-id")
    if (token is not None and len(token) > TOKEN_MAX) or (
        device is not None and len(device) > DEVICE_MAX
    ):
        raise InvalidInput("the token or X-Device-Id is too long", code="invalid_input")
    grant_token, suffix = _grant_token(request, token)
    return grant_token, suffix, device


KEY_HEADERS = {"Cache-Control": "no-store", "Pragma": "no-cache"}
KEY_TYPE = "application/octet-stream"


class KeyResponse(Response):
    """A content key's answer with its header block encoded once: the framework's Response
    encodes and lower-cases every header anew for each answer, on the busiest route."""

    _HEADERS = (
        *((name.lower().encode(), value.encode()) for name, value in KEY_HEADERS.items()),
        (b"content-type", KEY_TYPE.encode()),
    )

    def __init__(self, key: bytes) -> None:
        self.status_code = 200
        self.background = None
        self.body = key
        self.raw_headers = [*self._HEADERS, (b"content-length", str(len(key)).encode())]


@router.get(
    "/sessions/{session_id}/keys/{key_id}",
    summary="A 16-byte content key of a key period the grant opens (never cached)",
    response_class=Response,
    responses={
        **problems(
            "license_required",
            "grant_expired",
            "grant_session_mismatch",
            "invalid_grant",
            (401, "not_authenticated"),
            (403, "device_mismatch"),
            (403, "device_required"),
            "key_not_granted",
            (404, "key_not_found"),
            "key_rate_limited",
        ),
        **{
            200: {"content": {KEY_TYPE: {}}},
        },
    },
    openapi_extra={**GRANT_PARAMETERS, "security": PLAYBACK_GRANT},
    operation_id="playback_key",
)
async def content_key(
    request: Request,
    session_id: SessionId,
    key_id: Annotated[str, Path(pattern=f"^{KEY_ID}$")],
) -> Response:
    """The key is read from memory (loaded once per key id); the grant must open its key period, and the request must come from the grant's device (`X-Device-Id`). Answers `application/octet-stream`, never cached; rate limited per session."""
    grant_token, _, device = _hot_call(request)
    grant = playback.grant_for(grant_token, session_id, device, key=True)
    playback.check_key_request(grant, key_id)
    found = content_keys.cached_key(key_id)
    if found is None:  # database read and key unwrap (KMS in production) off the loop
        found = await run_in_threadpool(content_keys.load_key, key_id)
    return KeyResponse(playback.key_bytes(grant, found))


_MEDIA_TYPES = {
    ".m4s": "video/iso.segment",
    ".mp4": "video/mp4",
    ".vtt": "text/vtt; charset=utf-8",
    ".ts": "video/mp2t",
    ".aac": "audio/aac",
}


@router.get(
    "/sessions/{session_id}/media/{path:path}",
    summary="A segment of a granted rendition (embedded default delivery)",
    response_class=Response,
    openapi_extra={**GRANT_PARAMETERS, "security": PLAYBACK_GRANT},
    operation_id="playback_media",
    responses={
        **problems(
            "grant_expired",
            "grant_session_mismatch",
            "invalid_grant",
            (401, "not_authenticated"),
            (403, "device_mismatch"),
            (403, "device_required"),
            "media_not_granted",
            "segment_not_found",
            "invalid_storage_key",
        ),
        200: {
            "description": "The file: an MPEG-TS or fMP4 segment, AAC audio or WebVTT",
            "content": {"video/mp2t": {}, "video/mp4": {}, "audio/aac": {}, "text/vtt": {}},
        },
    },
)
async def media_segment(
    request: Request,
    session_id: SessionId,
    path: Annotated[str, Path(max_length=PATH_MAX)],
) -> Response:
    """Only files of the rendition folders the grant names; with `MEDIA_DELIVERY=api` the API serves them, otherwise the playlists point at signed storage or CDN URLs."""
    grant_token, _, device = _hot_call(request)
    grant = playback.grant_for(grant_token, session_id, device)
    storage_key = playback.media_location(grant, path)
    media_type = _MEDIA_TYPES.get(path[path.rfind(".") :], "application/octet-stream")
    # Private and no longer than the grant: a shared cache must not serve it to others.
    max_age = max(0, grant.expires_at - int(utcnow().timestamp()))
    headers = {"Cache-Control": f"private, max-age={max_age}"}
    store = get_store()
    local = store.local_path(storage_key)
    if local is not None:
        # FileResponse stats and reads the file in the threadpool, not on the loop.
        if not await run_in_threadpool(local.is_file):
            raise NotFound("no such segment", code="segment_not_found")
        return FileResponse(local, media_type=media_type, headers=headers)
    stream = await run_in_threadpool(store.open_read, storage_key)
    # A sync iterator: Starlette pulls each chunk in the threadpool.
    return StreamingResponse(
        iter(lambda: stream.read(256 * 1024), b""), media_type=media_type, headers=headers
    )


async def _playlist(request: Request, session_id: str, path: str | None) -> Response:
    grant_token, suffix, device = _hot_call(request)
    grant = playback.grant_for(grant_token, session_id, device)
    storage_key, rel = playback.playlist_location(grant, path)
    template = templates.cached(storage_key)
    if template is None:  # first request for this playlist in this process: read storage
        template = await run_in_threadpool(playback.load_playlist, storage_key, rel)
    body = playback.render_playlist(grant, template, suffix)
    return Response(body, media_type=MPEGURL, headers=NO_STORE)


@router.get(
    "/sessions/{session_id}/playlists/{path:path}",
    summary="A media playlist of this session, its URLs under the session's grant",
    response_class=Response,
    responses={
        **problems(
            "grant_expired",
            "grant_session_mismatch",
            "invalid_grant",
            (401, "not_authenticated"),
            (403, "device_mismatch"),
            (403, "device_required"),
            "playlist_not_found",
            "invalid_storage_key",
        ),
        200: {"content": {MPEGURL: {}}},
    },
    openapi_extra={**GRANT_PARAMETERS, "security": PLAYBACK_GRANT},
    operation_id="playback_playlist",
)
async def media_playlist(
    request: Request,
    session_id: SessionId,
    path: Annotated[str, Path(max_length=PATH_MAX)],
) -> Response:
    """The packaged playlist rewritten per request: its key URIs point at this session, its segments at the configured media delivery; a `?token=` grant is carried into every URL."""
    return await _playlist(request, session_id, path)


@router.get(
    "/sessions/{session_id}/master.m3u8",
    summary="This session's master playlist (variants, audio and subtitle renditions)",
    response_class=Response,
    responses={
        **problems(
            "grant_expired",
            "grant_session_mismatch",
            "invalid_grant",
            (401, "not_authenticated"),
            (403, "device_mismatch"),
            (403, "device_required"),
            "playlist_not_found",
            "invalid_storage_key",
        ),
        200: {"content": {MPEGURL: {}}},
    },
    openapi_extra={**GRANT_PARAMETERS, "security": PLAYBACK_GRANT},
    operation_id="playback_master_playlist",
)
async def master_playlist(request: Request, session_id: SessionId) -> Response:
    """The packaged master playlist rewritten for this session: variant, audio and subtitle playlists point at this session's playlist route."""
    return await _playlist(request, session_id, None)


DASH_MPD = "application/dash+xml"


@router.get(
    "/sessions/{session_id}/manifest.mpd",
    summary="This session's DASH manifest (cbcs releases): segments under the session's grant",
    response_class=Response,
    responses={
        **problems(
            "grant_expired",
            "grant_session_mismatch",
            "invalid_grant",
            (401, "not_authenticated"),
            (403, "device_mismatch"),
            (403, "device_required"),
            "manifest_not_found",
            "invalid_storage_key",
        ),
        **{200: {"content": {DASH_MPD: {}}}},
    },
    openapi_extra={**GRANT_PARAMETERS, "security": PLAYBACK_GRANT},
    operation_id="playback_dash_manifest",
)
async def dash_manifest(request: Request, session_id: SessionId) -> Response:
    """The packaged DASH manifest rewritten for this session, its segment and license URLs under the session's grant."""
    grant_token, _, device = _hot_call(request)
    grant = playback.grant_for(grant_token, session_id, device)
    storage_key = playback.manifest_location(grant)
    parts = manifests.cached(storage_key)
    if parts is None:  # first request for this manifest in this process: read storage
        parts = await run_in_threadpool(playback.load_manifest, storage_key)
    return Response(playback.render_manifest(grant, parts), media_type=DASH_MPD, headers=NO_STORE)


# --- the license proxy --------------------------------------------------------------------------

LICENSE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The license: a W3C ClearKey JSON Web Key Set, a Widevine license, "
        "a PlayReady SOAP answer or a FairPlay CKC",
        "content": {
            "application/json": {"schema": {"type": "object", "description": "ClearKey JWKS"}},
            "application/octet-stream": {},
            "text/xml": {},
        },
    },
}


@router.post(
    "/license/{system}",
    summary="A DRM license for this grant's key periods (challenge in, license out)",
    response_class=Response,
    responses={
        **problems(
            "grant_expired",
            "grant_session_mismatch",
            "invalid_grant",
            (401, "not_authenticated"),
            (403, "device_mismatch"),
            (403, "device_required"),
            "invalid_challenge",
            "challenge_too_large",
            "challenge_replayed",
            "license_system_off",
            "license_refused",
            "license_server_unavailable",
            "key_rate_limited",
        ),
        **LICENSE_RESPONSES,
    },
    openapi_extra={
        **{
            **GRANT_PARAMETERS,
            "requestBody": {
                "required": True,
                "description": "The CDM's challenge: ClearKey JSON, Widevine or PlayReady "
                "challenge, FairPlay SPC",
                "content": {"application/octet-stream": {"schema": {"type": "string"}}},
            },
        },
        "security": PLAYBACK_GRANT,
    },
    operation_id="playback_license",
)
async def drm_license(request: Request, system: LicenseSystem) -> Response:
    """The CDM's challenge in, a license for the key periods the grant opens out (ClearKey, Widevine, PlayReady or FairPlay), from the grant's device only."""
    grant_token, _, device = _hot_call(request)
    # The grant before the body: nothing is read, checked or forwarded without one.
    grant = playback.license_grant(grant_token, device)
    challenge = await request.body()
    issued = await run_in_threadpool(playback.license_for, grant, system, challenge)
    return Response(issued.body, media_type=issued.media_type, headers=KEY_HEADERS)


# --- decisions: start, refresh, heartbeat, stop ------------------------------------------------


def _started(started: Issued) -> PlaybackStarted:
    """The answer to a start, ticket or screener (``ticket_id`` empty for a screener)."""
    settings = get_settings()
    outputs: dict[str, Any] = started.release.outputs or {}
    return PlaybackStarted(
        session_id=started.session.id,
        ticket_id=started.session.ticket_id or "",
        title_id=started.session.title_id,
        heartbeat_interval_seconds=settings.playback_heartbeat_seconds,
        session_timeout_seconds=settings.playback_session_timeout_seconds,
        duration_seconds=started.release.duration_seconds,
        audio=[AudioTrackRead(**a) for a in outputs.get("audio", [])],
        subtitles=[SubtitleTrackRead(**s) for s in outputs.get("subtitles", [])],
        protection=started.grant.protection,
        dash_manifest_url=(
            f"{_session_urls(started.session.id)['master_playlist_url'].removesuffix('master.m3u8')}"
            "manifest.mpd"
            if started.grant.protection == "cbcs"
            else None
        ),
        license_url=(
            f"{settings.base_url.rstrip('/')}/v1/playback/license/{{system}}"
            if started.grant.protection == "cbcs"
            else None
        ),
        **_session_urls(started.session.id),
        **_grant_read(started),
    )


def _grant_read(issued: Issued) -> dict[str, Any]:
    return {
        "token": issued.token,
        "token_expires_at": datetime.fromtimestamp(issued.grant.expires_at, UTC),
        "key_periods": list(issued.grant.key_periods),
    }


def _session_urls(session_id: str) -> dict[str, str]:
    base = get_settings().base_url.rstrip("/")
    prefix = f"{base}/v1/playback/sessions/{session_id}"
    return {
        "master_playlist_url": f"{prefix}/master.m3u8",
        "refresh_url": f"{prefix}/token",
        "heartbeat_url": f"{prefix}/heartbeat",
        "stop_url": f"{prefix}/stop",
    }


@router.post(
    "/sessions",
    summary="Start playback of one of my tickets: a session, its master playlist and a grant",
    status_code=201,
    response_model=PlaybackStarted,
    operation_id="playback_start",
    responses=problems(
        "account_disabled",
        "invalid_token",
        "not_authenticated",
        "session_revoked",
        "token_expired",
        "country_unknown",
        "not_licensed_in_country",
        "outside_licence_window",
        "ticket_pending",
        "ticket_expired",
        "ticket_refunded",
        (403, "ticket_disputed"),
        "ticket_failed",
        (422, "device_required"),
        (404, "release_not_ready"),
        "stream_limit_reached",
        "ticket_not_found",
        "ticket_not_watchable",
        "title_not_found",
    ),
)
async def start_playback(
    request: Request, credentials: BearerCredentials, body: PlaybackStart
) -> PlaybackStarted:
    """The database decides: the ticket is mine and watchable, the title is licensed in my country now, and the ticket plays on fewer devices than its stream limit (`take_over` ends the longest-silent other one). Needs a login token with a device id. The first play starts the rental clock."""
    access_token = bearer_token(credentials)

    def work(session: Session) -> Issued:
        principal = principal_of(session, access_token)
        return playback.start(
            session,
            viewer_id=principal.user_id,
            device_id=principal.device_id,
            ticket_id=body.ticket_id,
            country=scope_country(request.scope),
            at=utcnow(),
            take_over=body.take_over,
            position_seconds=body.position_seconds,
        )

    return _started(await in_transaction(work))


@router.post(
    "/screener-sessions",
    operation_id="playback_screener_start",
    summary="Start playback of one of my screeners (buyers): the same session, grant and watermark",
    status_code=201,
    response_model=PlaybackStarted,
    responses=problems(
        "account_disabled",
        "invalid_token",
        "not_authenticated",
        "session_revoked",
        "token_expired",
        "screener_view_limit_reached",
        (404, "release_not_ready"),
        "screener_not_found",
        "screener_expired",
        "screener_revoked",
        (422, "device_required"),
        "unknown_country",
    ),
)
async def start_screener_playback(
    request: Request, credentials: BearerCredentials, body: ScreenerPlaybackStart
) -> PlaybackStarted:
    """A redeemed screener plays like a ticket (grants, keys, playlists, watermark) with the
    invitation as the entitlement: one stream at a time, a view counted at the first
    heartbeat up to the view limit, never box office. Needs a login token with a device id."""
    access_token = bearer_token(credentials)

    def work(session: Session) -> Issued:
        principal = principal_of(session, access_token)
        return playback.start_screener(
            session,
            viewer_id=principal.user_id,
            device_id=principal.device_id,
            screener_id=body.screener_id,
            country=scope_country(request.scope),
            at=utcnow(),
        )

    return _started(await in_transaction(work))


# What a refresh and a heartbeat can answer: the grant they carry, then every refusal of the
# database's decision (playback.service._decide) for a ticket or a screener session.
DECISION_PROBLEMS: tuple[str | tuple[int, str], ...] = (
    "grant_expired",
    "grant_session_mismatch",
    "invalid_grant",
    (401, "not_authenticated"),
    (403, "device_mismatch"),
    (403, "device_required"),
    "country_unknown",
    "not_licensed_in_country",
    "outside_licence_window",
    "ticket_pending",
    "ticket_expired",
    "ticket_refunded",
    (403, "ticket_disputed"),
    "ticket_failed",
    "country_changed",
    (404, "release_not_ready"),
    "session_ended",
    "session_not_found",
    "ticket_not_found",
    "title_not_found",
    "screener_not_found",
    "screener_expired",
    "screener_revoked",
)


@router.post(
    "/sessions/{session_id}/token",
    summary="Refresh the grant: the database decides again (send the current grant)",
    response_model=GrantRead,
    operation_id="playback_refresh",
    responses=problems(*DECISION_PROBLEMS),
    openapi_extra={**GRANT_PARAMETERS, "security": PLAYBACK_GRANT},
)
async def refresh_grant(
    request: Request,
    session_id: SessionId,
    body: Annotated[Seek | None, Body()] = None,
) -> Response:
    """Send the current grant (Authorization or `?token=`) and, after a seek, the new position. A refusal ends the session and is answered with its code."""
    # Grant and device read as on the hot paths (documented through GRANT_PARAMETERS): the
    # framework's per-parameter validation cost more than the parse.
    grant_token, _, device = _hot_call(request)
    playback.grant_caller(grant_token, session_id, device)  # a forged grant never joins a group

    def work(session: Session) -> Issued | Refused:
        return playback.refresh(
            session,
            grant_token,
            session_id,
            device_id=device,
            country=scope_country(request.scope),
            at=utcnow(),
            position_seconds=body.position_seconds if body else None,
        )

    issued = await in_group_transaction(work)
    if isinstance(issued, Refused):
        return _refused(request, issued)
    return _json(GrantRead(**_grant_read(issued)))


@router.post(
    "/sessions/{session_id}/heartbeat",
    summary="Heartbeat: the database decides again; records watched time; a new grant",
    response_model=HeartbeatRead,
    operation_id="playback_heartbeat",
    responses=problems(*DECISION_PROBLEMS, "screener_view_limit_reached"),
    openapi_extra={**GRANT_PARAMETERS, "security": PLAYBACK_GRANT},
)
async def send_heartbeat(request: Request, session_id: SessionId, body: Heartbeat) -> Response:
    """Every `heartbeat_interval_seconds`: the playhead and the seconds played since the last one. Each `seq` is recorded once (a repeat answers `recorded: false`), so retries never count watched time twice. Answers a fresh grant."""
    grant_token, _, device = _hot_call(request)  # as refresh_grant does
    playback.grant_caller(grant_token, session_id, device)  # a forged grant never joins a group
    at = utcnow()

    def work(session: Session) -> playback.Beat | Refused:
        return playback.heartbeat(
            session,
            grant_token,
            session_id,
            device_id=device,
            country=scope_country(request.scope),
            seq=body.seq,
            position_seconds=body.position_seconds,
            watched_seconds=body.watched_seconds,
            at=at,
        )

    beat = await in_group_transaction(work)
    if isinstance(beat, Refused):
        return _refused(request, beat)
    timeout = get_settings().playback_session_timeout_seconds
    return _json(
        HeartbeatRead(
            session_id=session_id,
            alive_until=datetime.fromtimestamp(at.timestamp() + timeout, UTC),
            recorded=beat.recorded,
            **_grant_read(beat.issued),
        )
    )


@router.post(
    "/sessions/{session_id}/stop",
    summary="Stop playback: ends the session and frees its stream slot",
    status_code=204,
    operation_id="playback_stop",
    responses=problems(
        "grant_expired",
        "grant_session_mismatch",
        "invalid_grant",
        (401, "not_authenticated"),
        (403, "device_mismatch"),
        (403, "device_required"),
        "session_not_found",
    ),
    openapi_extra={"security": PLAYBACK_GRANT},
)
async def stop_playback(
    request: Request,
    session_id: SessionId,
    token: TokenQuery = None,
    device: DeviceHeader = None,
) -> Response:
    """Ends the session with the grant it was given; its grant stops being renewed. Stopping twice answers 204 again."""
    grant_token, _ = _grant_token(request, token)

    def work(session: Session) -> None:
        playback.stop(session, grant_token, session_id, device_id=device, at=utcnow())

    await in_transaction(work)
    return Response(status_code=204)


# --- the hot paths' lane ------------------------------------------------------------------------
#
# api/hot_paths.py serves these four declared routes without the router (same endpoints, same
# middleware); a path parameter must match the pattern the declaration validates, or the
# request goes on to the declared route.

HOT_ENDPOINTS = (
    content_key,
    media_segment,
    media_playlist,
    master_playlist,
    send_heartbeat,
    refresh_grant,
)
HOT_PARAMETERS = {"session_id": SESSION_ID, "key_id": KEY_ID, "path": f".{{1,{PATH_MAX}}}"}
# The decisions' JSON bodies as the lane parses them: (model, whether the body may be absent).
HOT_BODIES: dict[Callable[..., Any], tuple[type[BaseModel], bool]] = {
    send_heartbeat: (Heartbeat, False),
    refresh_grant: (Seek, True),
}


def hot_routes() -> list[APIRoute]:
    """The declared hot routes, in the router's order."""
    return [
        declared
        for declared in router.routes
        if isinstance(declared, APIRoute) and declared.endpoint in HOT_ENDPOINTS
    ]
