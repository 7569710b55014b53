"""Viewer playback: start a session, per-session playlists, segments, keys, heartbeats.

The hot paths (playlists, keys, segments) are ``async def`` and read the database only on a
cache miss (tickets/snapshots.py, the change feed); keys and playlists are also served by
api/direct.py ahead of the router, through the same ``*_body`` functions (docs/playback.md
has the numbers). They authenticate with the *playback* token, sent as
``Authorization: Bearer <token>`` or, for players that cannot set headers, as ``?token=``;
a query token is carried into the playlist and key URIs of the rewritten playlists.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Request, Response
from fastapi.responses import FileResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.datastructures import QueryParams
from starlette.types import Scope

from api.deps import CurrentUser, DbSession, RequestCountry, scope_country
from api.direct import DirectRoute
from api.problems import PROBLEM_RESPONSES
from boxoffice import views as boxoffice
from core.cache import TtlCache
from core.db import read_only, unit_of_work, utcnow
from core.errors import AppError, InvalidInput, NotAuthenticated, NotFound
from core.settings import get_settings
from core.storage import check_key, get_store
from drm import keys as content_keys
from drm.playlists import SessionUrls, render, templates
from drm.ratelimit import key_limiter
from drm.tokens import PlaybackClaims, decode_playback_token, require_session
from drm.urls import media_signer, verify_media_signature
from tickets import playback

router = APIRouter(prefix="/v1/playback", tags=["playback"], responses=PROBLEM_RESPONSES)

MPEGURL = "application/vnd.apple.mpegurl"
NO_STORE = {"Cache-Control": "no-store"}
SessionId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$", description="Playback session id")]
TOKEN_MAX = 4096
DEVICE_MAX = 200
TokenQuery = Annotated[
    str | None,
    Query(
        alias="token",
        max_length=TOKEN_MAX,
        description="Playback token, for players that cannot send an Authorization header",
    ),
]
DeviceHeader = Annotated[
    str | None,
    Header(
        alias="X-Device-Id", max_length=DEVICE_MAX, description="If sent, must be the session's"
    ),
]


def _claims(request: Request, token_query: str | None) -> tuple[PlaybackClaims, str]:
    """The playback token's claims, and the query suffix to carry it into child URIs."""
    return claims_from(request.headers.get("authorization"), token_query)


def claims_from(authorization: str | None, token_query: str | None) -> tuple[PlaybackClaims, str]:
    scheme, _, value = (authorization or "").partition(" ")
    if scheme.lower() == "bearer" and value:
        return decode_playback_token(value.strip()), ""
    if token_query:
        return decode_playback_token(token_query), f"?token={token_query}"
    raise NotAuthenticated(
        "send the playback token: 'Authorization: Bearer <token>' or ?token=",
        code="not_authenticated",
    )


@dataclass(frozen=True)
class PlaybackCall:
    """What a playlist or key request brings: who (the token's claims), from where, on which
    device; ``token_suffix`` carries a query token into the URIs of rewritten playlists."""

    claims: PlaybackClaims
    token_suffix: str
    device: str | None
    country: str | None


def call_from_scope(scope: Scope) -> PlaybackCall | None:
    """The call, read straight from the ASGI scope (routed and direct alike); None when a
    parameter is over its declared limit (the router then answers with invalid_input)."""
    authorization = device = None
    for name, value in scope["headers"]:  # the first of repeated headers, as Starlette
        if name == b"authorization" and authorization is None:
            authorization = value.decode("latin-1")
        elif name == b"x-device-id" and device is None:
            device = value.decode("latin-1")
    token = QueryParams(scope["query_string"]).get("token") if scope["query_string"] else None
    if (token is not None and len(token) > TOKEN_MAX) or (
        device is not None and len(device) > DEVICE_MAX
    ):
        return None
    claims, suffix = claims_from(authorization, token)
    return PlaybackCall(claims, suffix, device, scope_country(scope))


# --- start, refresh, heartbeat, stop --------------------------------------------------------


class PlaybackStart(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ticket_id: str = Field(min_length=1, max_length=64, description="One of my tickets")


class AudioTrackRead(BaseModel):
    language: str
    name: str
    role: str = Field(description="original, dub or commentary")


class SubtitleTrackRead(BaseModel):
    language: str
    name: str


class PlaybackStarted(BaseModel):
    session_id: str
    ticket_id: str
    title_id: str
    token: str = Field(description="Playback token (audience 'playback'); refresh before expiry")
    token_expires_at: datetime
    master_playlist_url: str
    refresh_url: str
    heartbeat_url: str
    stop_url: str
    heartbeat_interval_seconds: int
    session_timeout_seconds: int
    duration_seconds: float | None
    audio: list[AudioTrackRead]
    subtitles: list[SubtitleTrackRead]


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
    summary="Start playback of one of my tickets: a session, its master playlist and a token",
    status_code=201,
    response_model=PlaybackStarted,
)
def start_playback(
    session: DbSession, principal: CurrentUser, country: RequestCountry, body: PlaybackStart
) -> PlaybackStarted:
    settings = get_settings()
    started = playback.start(
        session,
        viewer_id=principal.user_id,
        device_id=principal.device_id,
        ticket_id=body.ticket_id,
        country=country,
        at=utcnow(),
    )
    outputs: dict[str, Any] = started.release.outputs or {}
    return PlaybackStarted(
        session_id=started.session.id,
        ticket_id=started.session.ticket_id,
        title_id=started.session.title_id,
        token=started.token,
        token_expires_at=started.token_expires_at,
        heartbeat_interval_seconds=settings.playback_heartbeat_seconds,
        session_timeout_seconds=settings.playback_session_timeout_seconds,
        duration_seconds=started.release.duration_seconds,
        audio=[AudioTrackRead(**a) for a in outputs.get("audio", [])],
        subtitles=[SubtitleTrackRead(**s) for s in outputs.get("subtitles", [])],
        **_session_urls(started.session.id),
    )


class TokenRead(BaseModel):
    token: str
    token_expires_at: datetime


@router.post(
    "/sessions/{session_id}/token",
    summary="Refresh the playback token (send the current, unexpired one)",
    response_model=TokenRead,
)
def refresh_playback_token(
    request: Request, session_id: SessionId, country: RequestCountry, token: TokenQuery = None
) -> TokenRead:
    claims, _ = _claims(request, token)
    fresh, expires = playback.refresh_token(claims, session_id, country=country, at=utcnow())
    return TokenRead(token=fresh, token_expires_at=expires)


class Heartbeat(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seq: int = Field(ge=0, le=10_000_000, description="Increases by one per heartbeat")
    position_seconds: float = Field(ge=0, le=86_400, description="Playhead position")
    watched_seconds: float = Field(
        ge=0, le=3_600, description="Seconds actually played since the previous heartbeat"
    )


class HeartbeatRead(BaseModel):
    session_id: str
    alive_until: datetime = Field(description="Send the next heartbeat before this time")
    recorded: bool = Field(description="False when this seq was already received")


@router.post(
    "/sessions/{session_id}/heartbeat",
    summary="Heartbeat: keeps the session (and its stream slot) alive, records watched time",
    response_model=HeartbeatRead,
)
def send_heartbeat(
    request: Request,
    session: DbSession,
    session_id: SessionId,
    body: Heartbeat,
    token: TokenQuery = None,
) -> HeartbeatRead:
    claims, _ = _claims(request, token)
    at = utcnow()
    beat = playback.heartbeat(
        session, claims, session_id, seq=body.seq, position_seconds=body.position_seconds, at=at
    )
    recorded = False
    if beat.fresh:
        # How much of the reported time counts is box office's rule (heartbeat_credit:
        # bounded per heartbeat and by the session's wall time), applied in one place.
        recorded = boxoffice.record_heartbeat(
            session,
            playback_session_id=beat.session.id,
            ticket_id=beat.ticket.id,
            viewer_id=beat.session.viewer_id,
            title_id=beat.session.title_id,
            territory=beat.session.country,
            seq=body.seq,
            watched_seconds=body.watched_seconds,
            position_seconds=body.position_seconds,
            at=at,
            runtime_seconds=_runtime(session, beat.session.release_id),
        )
    return HeartbeatRead(
        session_id=beat.session.id,
        alive_until=at + playback.timeout(),
        recorded=recorded,
    )


def _runtime(session: Any, release_id: str) -> float | None:
    from catalog.models import Release

    release = session.get(Release, release_id)
    return release.duration_seconds if release is not None else None


@router.post(
    "/sessions/{session_id}/stop",
    summary="Stop playback: ends the session and frees its stream slot",
    status_code=204,
)
def stop_playback(
    request: Request, session: DbSession, session_id: SessionId, token: TokenQuery = None
) -> Response:
    claims, _ = _claims(request, token)
    playback.stop(session, claims, session_id, at=utcnow())
    return Response(status_code=204)


# --- the hot paths: playlists, keys, segments --------------------------------------------------


def _call(request: Request) -> PlaybackCall:
    # The route's declared `token` and `device` parameters have been validated (and are
    # documented) by FastAPI; they are read here by the one parser the direct lane uses.
    call = call_from_scope(request.scope)
    if call is None:  # pragma: no cover - the declared limits were checked already
        raise InvalidInput("a parameter is over its limit", code="invalid_input")
    return call


def _authorize(call: PlaybackCall, session_id: str) -> tuple[playback.Authorized, SessionUrls]:
    auth = playback.authorize(
        call.claims, session_id, country=call.country, at=utcnow(), device_id=call.device
    )
    urls = SessionUrls(session_id, media_signer(session_id, auth.hls_prefix), call.token_suffix)
    return auth, urls


def _playlist(storage_key: str, rel_path: str, urls: SessionUrls) -> bytes:
    template = templates.get(storage_key, rel_path, get_store().get_bytes)
    return render(template, urls).encode()


def master_playlist_body(call: PlaybackCall, session_id: str) -> bytes:
    auth, urls = _authorize(call, session_id)
    master_key = auth.master_playlist_key
    return _playlist(master_key, master_key.removeprefix(auth.hls_prefix + "/"), urls)


def media_playlist_body(call: PlaybackCall, session_id: str, path: str) -> bytes:
    if not path.endswith(".m3u8"):
        raise NotFound("no such playlist in this release", code="playlist_not_found")
    auth, urls = _authorize(call, session_id)
    try:
        storage_key = check_key(f"{auth.hls_prefix}/{path}")
    except AppError:
        raise NotFound("no such playlist in this release", code="playlist_not_found") from None
    return _playlist(storage_key, path, urls)


def key_body(call: PlaybackCall, session_id: str, key_id: str) -> bytes:
    claims = call.claims
    require_session(claims, session_id)  # before the limiter: no draining others' buckets
    key_limiter.take(session_id, get_settings().playback_key_requests_per_minute)
    at = utcnow()
    auth = playback.authorize(
        claims, session_id, country=call.country, at=at, device_id=call.device
    )
    key = content_keys.key_for_release(key_id, auth.release_id)
    if auth.first_key_at is None:
        # Once per session: the first successful key delivery is the "view started" event.
        with unit_of_work() as session:
            if playback.first_key_delivery(session, session_id, at):
                boxoffice.record_view_started(
                    session,
                    playback_session_id=session_id,
                    ticket_id=auth.ticket_id,
                    viewer_id=auth.viewer_id,
                    title_id=auth.title_id,
                    territory=auth.territory,
                    at=at,
                )
    return key


KEY_HEADERS = {"Cache-Control": "no-store", "Pragma": "no-cache"}
KEY_TYPE = "application/octet-stream"


@router.get(
    "/sessions/{session_id}/master.m3u8",
    summary="This session's master playlist (variants, audio and subtitle renditions)",
    response_class=Response,
    responses={200: {"content": {MPEGURL: {}}}},
)
async def master_playlist(
    request: Request,
    session_id: SessionId,
    token: TokenQuery = None,
    device: DeviceHeader = None,
) -> Response:
    body = master_playlist_body(_call(request), session_id)
    return Response(body, media_type=MPEGURL, headers=NO_STORE)


@router.get(
    "/sessions/{session_id}/playlists/{path:path}",
    summary="A media playlist of this session, with signed segment URLs",
    response_class=Response,
    responses={200: {"content": {MPEGURL: {}}}},
)
async def media_playlist(
    request: Request,
    session_id: SessionId,
    path: str,
    token: TokenQuery = None,
    device: DeviceHeader = None,
) -> Response:
    body = media_playlist_body(_call(request), session_id, path)
    return Response(body, media_type=MPEGURL, headers=NO_STORE)


@router.get(
    "/sessions/{session_id}/keys/{key_id}",
    summary="The 16-byte content key, after every entitlement check (never cached)",
    response_class=Response,
    responses={
        200: {"content": {KEY_TYPE: {}}},
        429: {"description": "Rate limited"},
    },
)
async def content_key(
    request: Request,
    session_id: SessionId,
    key_id: Annotated[str, Path(pattern=r"^[0-9a-fA-F]{32}$")],
    token: TokenQuery = None,
    device: DeviceHeader = None,
) -> Response:
    body = key_body(_call(request), session_id, key_id)
    return Response(body, media_type=KEY_TYPE, headers=KEY_HEADERS)


# Served by api/direct.py ahead of the router: the same *_body functions on the same
# PlaybackCall, without routing and dependency resolution. The path patterns enforce what
# SessionId and the key id's Path(pattern=...) declare above.
PREFIX = "/v1/playback/sessions/"
_SESSION = r"(?P<session_id>[0-9a-f]{32})"
DIRECT = [
    DirectRoute(
        f"{PREFIX}{{session_id}}/keys/{{key_id}}",
        re.compile(rf"^{PREFIX}{_SESSION}/keys/(?P<key_id>[0-9a-fA-F]{{32}})\Z"),
        key_body,
        KEY_TYPE,
        KEY_HEADERS,
    ),
    DirectRoute(
        f"{PREFIX}{{session_id}}/master.m3u8",
        re.compile(rf"^{PREFIX}{_SESSION}/master\.m3u8\Z"),
        master_playlist_body,
        MPEGURL,
        NO_STORE,
    ),
    DirectRoute(
        f"{PREFIX}{{session_id}}/playlists/{{path:path}}",
        re.compile(rf"^{PREFIX}{_SESSION}/playlists/(?P<path>.+)\Z"),
        media_playlist_body,
        MPEGURL,
        NO_STORE,
    ),
]


_MEDIA_TYPES = {
    ".m4s": "video/iso.segment",
    ".mp4": "video/mp4",
    ".vtt": "text/vtt; charset=utf-8",
    ".ts": "video/mp2t",
    ".aac": "audio/aac",
}


@router.get(
    "/sessions/{session_id}/media/{path:path}",
    summary="A segment (embedded default delivery), by signed, expiring URL",
    response_class=Response,
)
async def media_segment(
    session_id: SessionId,
    path: str,
    exp: Annotated[int, Query(ge=0, description="Expiry, Unix seconds")],
    sig: Annotated[str, Query(min_length=16, max_length=64, description="URL signature")],
) -> Response:
    # The signature covers this session's release folder until `exp` (drm/urls.py): no
    # entitlement read here; segments are encrypted and the key route enforces entitlement.
    verify_media_signature(session_id, exp, sig)
    prefix = _release_prefix(session_id)
    storage_key = f"{prefix}/{path}"
    media_type = _MEDIA_TYPES.get(path[path.rfind(".") :], "application/octet-stream")
    max_age = max(0, min(exp - int(utcnow().timestamp()), 86_400))
    headers = {"Cache-Control": f"private, max-age={max_age}"}
    store = get_store()
    local = store.local_path(check_key(storage_key))
    if local is not None:
        if not local.is_file():
            raise NotFound("no such segment", code="segment_not_found")
        return FileResponse(local, media_type=media_type, headers=headers)
    stream = store.open_read(storage_key)
    return StreamingResponse(
        iter(lambda: stream.read(256 * 1024), b""), media_type=media_type, headers=headers
    )


# A session's release folder is fixed; an hour bounds the memory of ended sessions.
_prefixes: TtlCache[str, str | None] = TtlCache(3600.0, max_entries=100_000)


def _release_prefix(session_id: str) -> str:
    """The release folder of a session. It never changes for a session, so segment requests
    (the most frequent of all) read the database only on a miss."""

    def load() -> str | None:
        with read_only() as session:
            return playback.release_prefix(session, session_id)

    found = _prefixes.get_or_load(session_id, load)
    if found is None:
        raise NotFound("no such playback session", code="session_not_found")
    return found
