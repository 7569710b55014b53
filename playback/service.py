"""Playback, orchestrated: start, heartbeat, refresh and stop decide against the database
and issue a grant; keys, playlists and media trust the grant alone.

It sits above tickets (sessions and their rule, tickets/playback.py) and boxoffice (views),
below the API, whose routes parse, call one function here and map the answer. The hot-path
functions (``*_for_grant``) do no I/O; where a request needs something not yet in memory
(a playlist template, a content key: both immutable) the route loads it off the event loop
with the blocking twin named here.

Refusals of a decision are *returned* (:class:`Refused`), not raised, together with the
session end they cause, so the request's transaction commits that end.
"""

from __future__ import annotations

import math
import posixpath
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from boxoffice import views as boxoffice
from core.errors import AppError, Forbidden, NotFound
from core.settings import get_settings
from core.storage import check_key, get_store
from drm import grants, manifests, vendors, watermark
from drm import keys as content_keys
from drm import license as drm_license
from drm.grants import Grant
from drm.license import LicenseSystem
from drm.playlists import SessionUrls, Template, render, templates
from drm.ratelimit import first_sighting, key_limiter
from drm.urls import media_base, media_signer
from tickets import playback as sessions
from tickets import screeners
from tickets.playback import LiveSession, Packaging


@dataclass(frozen=True)
class Issued:
    """A "yes": the grant (signed) and what it says."""

    token: str
    grant: Grant
    session: LiveSession
    release: Packaging


@dataclass(frozen=True)
class Refused:
    """A "no" whose bookkeeping (the session's end) must commit with the request."""

    error: AppError


@dataclass(frozen=True)
class Beat:
    issued: Issued
    recorded: bool  # False when this seq was already received


# --- what a grant names --------------------------------------------------------------------


@dataclass(frozen=True)
class ReleaseLayout:
    """What never changes about a packaged release: its master, the folders its media
    lives in, and the key of each key period."""

    master: str
    renditions: tuple[str, ...]
    period_seconds: float
    key_ids: tuple[str, ...]
    marked: tuple[str, ...] = ()  # folders with watermark variants (B in renditions too)
    mark_every: int = 1  # only every k-th segment of those carries a bit


# A packaging (storage folder, master, key ids) never changes once written: a new transcode
# writes a new folder. Its layout is worked out once per process.
_layouts: dict[tuple[Any, ...], ReleaseLayout] = {}
_LAYOUTS_MAX = 10_000


def layout(release: Packaging) -> ReleaseLayout:
    """Read (and cache, by storage key) the release's playlists: blocking on a miss, so it
    is called only by decisions, which run in the threadpool with the database."""
    if not release.hls_prefix or not release.master_playlist_key:
        raise NotFound("this release is no longer available", code="release_not_ready")
    periods = release.outputs.get("key_periods") or {}
    packaging = (
        release.hls_prefix,
        release.master_playlist_key,
        release.content_key_id,
        periods.get("seconds"),
        tuple(periods.get("key_ids") or ()),
    )
    found = _layouts.get(packaging)
    if found is None:
        if len(_layouts) >= _LAYOUTS_MAX:
            _layouts.clear()
        found = _layouts[packaging] = _read_layout(
            release, release.hls_prefix, release.master_playlist_key
        )
    return found


def _read_layout(release: Packaging, prefix: str, master_key: str) -> ReleaseLayout:
    master = master_key.removeprefix(prefix + "/")
    load = get_store().get_bytes
    folders: set[str] = set()
    for playlist in templates.get(f"{prefix}/{master}", master, load).playlists:
        folders |= templates.get(f"{prefix}/{playlist}", playlist, load).folders
    outputs: dict[str, Any] = release.outputs
    periods = outputs.get("key_periods") or {}
    key_ids = tuple(str(k).lower() for k in periods.get("key_ids", []))
    if not key_ids and release.content_key_id:  # packaged before keys rotated: one key
        key_ids = (release.content_key_id.lower(),)
    seconds = float(periods.get("seconds") or math.inf)
    marks = outputs.get("watermark") or {}
    marked = tuple(str(f) for f in marks.get("folders", ()))
    folders |= {watermark.variant_folder(f) for f in marked}
    return ReleaseLayout(
        master,
        tuple(sorted(f for f in folders if f)),
        seconds,
        key_ids,
        marked,
        int(marks.get("every") or 1),
    )


def key_window(layout: ReleaseLayout, position_seconds: float) -> tuple[int, int]:
    """The key periods a grant opens around ``position_seconds``: the current one and
    ``playback_key_periods_around`` on each side (seeks nearby, the next period's key
    fetched ahead), never the whole film."""
    if not layout.key_ids:
        return (0, -1)
    around = get_settings().playback_key_periods_around
    current = (
        0 if math.isinf(layout.period_seconds) else int(position_seconds // layout.period_seconds)
    )
    current = min(max(current, 0), len(layout.key_ids) - 1)
    return max(0, current - around), min(len(layout.key_ids) - 1, current + around)


def _issue(entitled: sessions.Entitled, position_seconds: float) -> Issued:
    release = entitled.release
    found = layout(release)
    first, last = key_window(found, position_seconds)
    playback = entitled.session
    grant = Grant(
        session_id=playback.id,
        ticket_id=playback.ticket_id or "",  # "" for a screener session
        viewer_id=playback.viewer_id,
        title_id=playback.title_id,
        release_id=release.id,
        hls_prefix=release.hls_prefix or "",
        master=found.master,
        country=playback.country,
        device_id=playback.device_id,
        renditions=found.renditions,
        key_periods=(first, last),
        key_ids=found.key_ids[first : last + 1],
        expires_at=int(time.time()) + get_settings().playback_grant_seconds,
        marked=found.marked,
        mark_every=found.mark_every,
        watch_until=(
            int(entitled.ticket.watch_until.replace(tzinfo=UTC).timestamp())
            if entitled.ticket is not None and entitled.ticket.watch_until is not None
            else None
        ),
        protection=str((release.outputs or {}).get("protection") or "aes128"),
    )
    return Issued(grants.encode(grant), grant, playback, release)


# --- decisions (database) --------------------------------------------------------------------


def start(
    session: Session,
    *,
    viewer_id: str,
    device_id: str | None,
    ticket_id: str,
    country: str | None,
    at: datetime,
    take_over: bool = False,
    position_seconds: float = 0.0,
) -> Issued:
    entitled = sessions.start(
        session,
        viewer_id=viewer_id,
        device_id=device_id,
        ticket_id=ticket_id,
        country=country,
        at=at,
        take_over=take_over,
        position_seconds=position_seconds,
    )
    return _issue(entitled, position_seconds)


def start_screener(
    session: Session,
    *,
    viewer_id: str,
    device_id: str | None,
    screener_id: str,
    country: str | None,
    at: datetime,
) -> Issued:
    """A buyer's screener session: the same grants, keys, playlists and watermark as a
    ticket holder's; counted as a screener view, never as box office."""
    entitled = sessions.start_screener(
        session,
        viewer_id=viewer_id,
        device_id=device_id,
        invitation_id=screener_id,
        country=country,
        at=at,
    )
    return _issue(entitled, 0.0)


def grant_caller(token: str, session_id: str, device_id: str | None) -> sessions.Caller:
    """Who a decision's grant says is asking (no I/O: the routes check it on the event loop
    before a request joins a group of decisions)."""
    # An expired grant still says who is asking: the decision itself re-checks everything,
    # so a player back from a pause longer than a grant's life can carry on.
    grace = get_settings().playback_session_timeout_seconds
    grant = grants.decode(token, grace_seconds=grace)
    grants.require_session(grant, session_id)
    grants.require_device(grant, device_id, required=False)
    return sessions.Caller(grant.viewer_id, grant.ticket_id, grant.device_id)


def _decide(
    session: Session, session_id: str, caller: sessions.Caller, country: str | None, at: datetime
) -> sessions.Entitled | Refused:
    try:
        return sessions.decide(session, session_id, caller, country=country, at=at)
    except (
        Forbidden,
        sessions.SessionEnded,
        sessions.SessionNotFound,
        screeners.ScreenerRevoked,
        screeners.ScreenerExpired,
        screeners.ScreenerNotFound,
    ) as refusal:
        sessions.revoke(session, session_id, at, refusal)
        session.flush()
        return Refused(refusal)


def refresh(
    session: Session,
    token: str,
    session_id: str,
    *,
    device_id: str | None,
    country: str | None,
    at: datetime,
    position_seconds: float | None = None,
) -> Issued | Refused:
    """A new grant, if the database still says yes. ``position_seconds`` (after a seek)
    moves the key periods the grant opens."""
    caller = grant_caller(token, session_id, device_id)
    decided = _decide(session, session_id, caller, country, at)
    if isinstance(decided, Refused):
        return decided
    if position_seconds is not None:
        sessions.move_playhead(session, decided.session, position_seconds)
    return _issue(decided, decided.session.position_seconds)


def heartbeat(
    session: Session,
    token: str,
    session_id: str,
    *,
    device_id: str | None,
    country: str | None,
    seq: int,
    position_seconds: float,
    watched_seconds: float,
    at: datetime,
) -> Beat | Refused:
    """Keep the session alive, count the watched time (box office's rules), and answer
    with a new grant. A refused heartbeat counts nothing and ends the session."""
    caller = grant_caller(token, session_id, device_id)
    decided = _decide(session, session_id, caller, country, at)
    if isinstance(decided, Refused):
        return decided
    playback = decided.session
    first = playback.last_seq is None
    fresh = sessions.beat(session, playback, seq=seq, position_seconds=position_seconds, at=at)
    recorded = False
    if playback.screener_id is not None:
        # Screener views are the studio's own report (tickets/screeners.py), never box office.
        try:
            screeners.record_beat(
                session, playback, first=first, fresh=fresh, watched_seconds=watched_seconds
            )
        except screeners.ScreenerViewLimitReached as refusal:
            sessions.revoke(session, session_id, at, refusal)
            session.flush()
            return Refused(refusal)
        return Beat(_issue(decided, playback.position_seconds), fresh)
    if first:
        # The first heartbeat is the view start: the player has the stream and plays. No
        # key request ever has to write. Idempotent (one row per session): a first
        # heartbeat whose transaction failed is simply first again.
        boxoffice.record_view_started(
            session,
            playback_session_id=playback.id,
            ticket_id=playback.ticket_id or "",
            viewer_id=playback.viewer_id,
            title_id=playback.title_id,
            territory=playback.country,
            at=playback.started_at,
        )
    if fresh:
        recorded = boxoffice.record_heartbeat(
            session,
            playback_session_id=playback.id,
            ticket_id=playback.ticket_id or "",
            viewer_id=playback.viewer_id,
            title_id=playback.title_id,
            territory=playback.country,
            seq=seq,
            watched_seconds=watched_seconds,
            position_seconds=position_seconds,
            at=at,
            runtime_seconds=decided.release.duration_seconds,
        )
    return Beat(_issue(decided, playback.position_seconds), recorded)


def stop(
    session: Session, token: str, session_id: str, *, device_id: str | None, at: datetime
) -> None:
    sessions.stop(session, session_id, grant_caller(token, session_id, device_id), at=at)


# --- the hot paths: no database, no I/O ---------------------------------------------------------


def grant_for(token: str, session_id: str, device_id: str | None, *, key: bool = False) -> Grant:
    """The request's grant: ours, unexpired, for this session and this device (key
    requests must say which device they come from)."""
    grant = grants.decode(token)
    grants.require_session(grant, session_id)
    grants.require_device(grant, device_id, required=key)
    return grant


def license_grant(token: str, device_id: str | None) -> Grant:
    """The grant of a license request: ours, unexpired, and the device it names must say
    it is asking (the license route names no session: the grant does)."""
    grant = grants.decode(token)
    grants.require_device(grant, device_id, required=True)
    return grant


class KeyNotGranted(Forbidden):
    code = "key_not_granted"


class LicenseRequired(Forbidden):
    code = "license_required"


def check_key_request(grant: Grant, key_id: str) -> None:
    """Before any key bytes: the grant opens this key's period, and the session is within
    its key request rate. A DRM-protected (cbcs) release gives no raw key: licenses only."""
    if grant.protection == "cbcs":
        raise LicenseRequired(
            "this release's keys are delivered only in DRM licenses (/v1/playback/license/…)"
        )
    if not grant.allows_key(key_id):
        raise KeyNotGranted(
            "this key's period is not open to this grant: send a heartbeat or refresh with "
            "the playhead position",
            key_periods=list(grant.key_periods),
        )
    key_limiter.take(grant.session_id, get_settings().playback_key_requests_per_minute)


def key_bytes(grant: Grant, found: tuple[bytes, str]) -> bytes:
    key, release_id = found
    if release_id != grant.release_id:  # a grant lists only its release's keys
        raise NotFound("no such key", code="key_not_found")
    return key


def playlist_location(grant: Grant, path: str | None) -> tuple[str, str]:
    """(storage key, path in the release) of the master (``path`` None) or of a media
    playlist of the grant's release."""
    rel = grant.master if path is None else path
    if not rel.endswith(".m3u8"):
        raise NotFound("no such playlist in this release", code="playlist_not_found")
    try:
        return check_key(f"{grant.hls_prefix}/{rel}"), rel
    except AppError:
        raise NotFound("no such playlist in this release", code="playlist_not_found") from None


def load_playlist(storage_key: str, rel_path: str) -> Template:
    """Blocking twin of :meth:`drm.playlists.TemplateCache.cached` (reads storage)."""
    return templates.get(storage_key, rel_path, get_store().get_bytes)


def _own_variant(grant: Grant) -> Callable[[str], str]:
    """The file this session gets for a segment path: its own watermark variant."""
    marked, session_id, every = frozenset(grant.marked), grant.session_id, grant.mark_every

    def own_variant(path: str) -> str:
        return watermark.session_path(session_id, path, marked, every)

    return own_variant


def render_playlist(grant: Grant, template: Template, token_suffix: str) -> bytes:
    if not template.folders <= set(grant.renditions):
        raise NotFound("no such playlist in this release", code="playlist_not_found")
    urls = SessionUrls(grant.session_id, media_signer(grant, token_suffix), token_suffix)
    if grant.marked and not template.folders.isdisjoint(grant.marked):
        own_variant = _own_variant(grant)

        return render(template, urls, own_variant).encode()
    return render(template, urls).encode()


def manifest_location(grant: Grant) -> str:
    """The storage key of the release's DASH manifest (cbcs releases have one)."""
    if grant.protection != "cbcs":
        raise NotFound("this release has no DASH manifest", code="manifest_not_found")
    return check_key(
        f"{grant.hls_prefix}/{posixpath.join(posixpath.dirname(grant.master), manifests.MANIFEST)}"
    )


def load_manifest(storage_key: str) -> tuple[str, str]:
    """Blocking twin of :func:`drm.manifests.cached` (reads storage)."""
    return manifests.load(storage_key, get_store().get_bytes)


def render_manifest(grant: Grant, parts: tuple[str, str]) -> bytes:
    base = media_base(grant)
    if base is None:
        raise NotFound(
            "DASH needs MEDIA_DELIVERY api or cloudfront (presigned URLs cannot be templated)",
            code="manifest_not_found",
        )
    return manifests.render(parts, base, _own_variant(grant) if grant.marked else None).encode()


class MediaNotGranted(Forbidden):
    code = "media_not_granted"


def media_location(grant: Grant, path: str) -> str:
    """The storage key of one file of a granted rendition (segments, init segments,
    subtitle cues); anything else of the release, or of another, is refused."""
    if not grant.allows_media(path) or posixpath.normpath(path) != path:
        raise MediaNotGranted("this file is not part of the renditions this grant opens")
    if grant.marked and not watermark.allowed(
        grant.session_id, path, frozenset(grant.marked), grant.mark_every
    ):
        # The other watermark variant of a segment: never this session's.
        raise MediaNotGranted("this file is not part of this session's stream")
    return check_key(f"{grant.hls_prefix}/{path}")


# --- the license proxy ---------------------------------------------------------------------------


@dataclass(frozen=True)
class License:
    body: bytes
    media_type: str


def license_for(grant: Grant, system: LicenseSystem, challenge: bytes) -> License:
    """A DRM license for the grant's session (blocking: a key read or a vendor call).

    The grant was checked by :func:`grant_for` (``key=True``: the device must say who it
    is) before this runs, so no challenge is ever looked at, let alone forwarded, without a
    valid grant. Then: the challenge's size and shape, a vendor challenge seen before
    (replay), the key request rate, and only then the key store or the vendor."""
    settings = get_settings()
    drm_license.check_size(challenge, settings.drm_max_challenge_bytes)
    now = int(time.time())
    seconds = drm_license.license_seconds(
        now=now, watch_until=grant.watch_until, max_seconds=settings.drm_license_max_seconds
    )
    if seconds <= 0:
        raise Forbidden("the rental of this ticket is over", code="ticket_expired")
    if system is LicenseSystem.clearkey:
        # W3C ClearKey requests carry no nonce: the same key ids make the same request,
        # so a repeat is a player reloading, not a replay. The grant decides.
        kids = drm_license.clearkey_key_ids(challenge)
        for kid in kids:
            if not grant.allows_key(kid):
                raise drm_license.KeyNotGranted(
                    "a key in this request is not of a key period this grant opens",
                    key_periods=list(grant.key_periods),
                )
        key_limiter.take(grant.session_id, settings.playback_key_requests_per_minute)
        found = [(kid, key_bytes(grant, content_keys.load_key(kid))) for kid in kids]
        return License(drm_license.clearkey_license(found), "application/json")
    drm_license.CHALLENGE_CHECKS[system](challenge)
    if not first_sighting(
        "license-challenge",
        drm_license.challenge_digest(challenge),
        settings.drm_challenge_replay_seconds,
    ):
        raise drm_license.ChallengeReplayed("this license challenge was already answered")
    key_limiter.take(grant.session_id, settings.playback_key_requests_per_minute)
    entitlement = drm_license.Entitlement(
        session_id=grant.session_id,
        release_id=grant.release_id,
        key_ids=grant.key_ids,
        license_seconds=seconds,
        rungs=tuple(
            drm_license.rung_policy(
                height,
                hardware_min_height=settings.drm_hardware_min_height,
                hdcp_min_height=settings.drm_hdcp_min_height,
            )
            for height in drm_license.rung_heights(grant.renditions)
        ),
    )
    answer = vendors.request_license(system, challenge, entitlement, settings)
    return License(answer.body, answer.media_type)
