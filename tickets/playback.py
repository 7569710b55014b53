"""Playback sessions: who may watch right now, on how many screens, and for how long.

The rules, checked when playback starts and again on every playlist and key fetch:

* the ticket is the caller's and is *active* (paid; not refunded, disputed or expired);
* the title is licensed in the caller's country now (:func:`catalog.availability.offer_for`);
* the session is live: not stopped, and heard from (start or heartbeat) within
  ``playback_session_timeout_seconds``;
* starting one more live session than ``playback_streams_per_ticket`` is refused with
  ``stream_limit_reached``. Starting again on the *same device* replaces that device's
  session (the app crashed or was reinstalled), it does not count twice.

The first play starts the ticket's watch window (:func:`tickets.service.mark_first_play`).
Box-office events are recorded by the API layer (``boxoffice`` sits above ``tickets``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from sqlalchemy.orm import Session

from catalog.availability import Offer, offer_for, offer_for_playback
from catalog.models import Release
from catalog.service import playable_release
from core.cache import TtlCache
from core.db import new_id, read_only
from core.errors import AppError, Forbidden, Gone, InvalidInput, NotFound
from core.settings import get_settings
from drm.tokens import PlaybackClaims, issue_playback_token, require_session
from tickets import repository, snapshots
from tickets.models import PlaybackSession, Ticket, TicketState
from tickets.service import RentalClock, get_ticket_for_viewer, mark_first_play, state_at
from tickets.snapshots import SessionSnapshot

MAX_DEVICE_ID = 200


class StreamLimitReached(Forbidden):
    code = "stream_limit_reached"


class SessionEnded(Gone):
    code = "session_ended"


@dataclass(frozen=True)
class Started:
    session: PlaybackSession
    release: Release
    token: str
    token_expires_at: datetime


@dataclass(frozen=True)
class Authorized:
    """What a playlist or key request may use, after every check passed. Plain values, so
    they outlive the (read-only) database session that produced them."""

    session_id: str
    ticket_id: str
    viewer_id: str
    title_id: str
    device_id: str
    release_id: str
    hls_prefix: str
    master_playlist_key: str
    territory: str  # the country licensed right now
    first_key_at: datetime | None


def timeout() -> timedelta:
    return timedelta(seconds=get_settings().playback_session_timeout_seconds)


def is_live(playback: PlaybackSession | SessionSnapshot, at: datetime) -> bool:
    return playback.ended_at is None and playback.last_heartbeat_at > at - timeout()


def require_watchable(ticket: RentalClock, at: datetime) -> None:
    """403 with a code the app can show: ticket_refunded, ticket_disputed, ticket_expired,
    ticket_pending or ticket_failed."""
    state = state_at(ticket, at)
    if state is not TicketState.active:
        raise Forbidden(f"this ticket is {state.value}", code=f"ticket_{state.value}")


def _device(device_id: str | None) -> str:
    device = (device_id or "").strip()
    if not device:
        raise InvalidInput(
            "sign in with a device id (login's device_id) to play", code="device_required"
        )
    return device[:MAX_DEVICE_ID]


def start(
    session: Session,
    *,
    viewer_id: str,
    device_id: str | None,
    ticket_id: str,
    country: str | None,
    at: datetime,
) -> Started:
    device = _device(device_id)
    get_ticket_for_viewer(session, viewer_id, ticket_id)  # 404 for someone else's ticket
    # Row lock (PostgreSQL; SQLite already holds its write lock): two devices pressing
    # play at once are serialised here, so the stream limit cannot be overrun by a race.
    ticket = repository.lock_ticket(session, ticket_id)
    require_watchable(ticket, at)
    offer = offer_for(session, ticket.title_id, country, at)  # refuses an unknown country
    release = playable_release(session, ticket.title_id)

    live = 0
    for other in repository.open_sessions(session, ticket.id):
        if not is_live(other, at):
            repository.end_session(
                session, other.id, other.last_heartbeat_at + timeout(), "timed_out"
            )
        elif other.device_id == device:
            repository.end_session(session, other.id, at, "replaced")
        else:
            live += 1
    limit = get_settings().playback_streams_per_ticket
    if live >= limit:
        raise StreamLimitReached(
            f"this ticket is already playing on {live} other screen(s); "
            "stop one of them or wait for it to time out",
            limit=limit,
            retry_after_seconds=get_settings().playback_session_timeout_seconds,
        )
    mark_first_play(session, ticket, at)
    playback = PlaybackSession(
        id=new_id(),
        ticket_id=ticket.id,
        viewer_id=viewer_id,
        title_id=ticket.title_id,
        release_id=release.id,
        device_id=device,
        country=offer.country,
        started_at=at,
        last_heartbeat_at=at,
        position_seconds=0.0,
    )
    session.add(playback)
    session.flush()
    token, expires = issue_playback_token(
        viewer_id=viewer_id, ticket_id=ticket.id, session_id=playback.id, device_id=device
    )
    return Started(playback, release, token, expires)


def _owned(session: Session, claims: PlaybackClaims, session_id: str) -> PlaybackSession:
    require_session(claims, session_id)
    return _check_owner(repository.get_session(session, session_id), claims)


S = TypeVar("S", PlaybackSession, SessionSnapshot)


def _check_owner(playback: S | None, claims: PlaybackClaims) -> S:
    # The token was signed by us for this session, so these only fail if ids were reused;
    # still, a mismatch must never grant anything.
    if (
        playback is None
        or playback.viewer_id != claims.viewer_id
        or playback.ticket_id != claims.ticket_id
        or playback.device_id != claims.device_id
    ):
        raise NotFound("no such playback session", code="session_not_found")
    return playback


def _require_live(playback: PlaybackSession | SessionSnapshot, at: datetime) -> None:
    if not is_live(playback, at):
        raise SessionEnded(
            "this playback session has ended; start playback again",
            reason=playback.end_reason or "timed_out",
        )


@dataclass(frozen=True)
class ReleaseFiles:
    hls_prefix: str
    master_playlist_key: str


# Where a release's HLS lives changes only when the studio re-transcodes it; key and playlist
# requests read it from here instead of the database (at most this old on other processes).
_release_files_cache: TtlCache[str, ReleaseFiles | None] = TtlCache(15.0)


def _release_files(release_id: str, *, fresh: bool = False) -> ReleaseFiles:
    def load() -> ReleaseFiles | None:
        with read_only() as session:
            release = session.get(Release, release_id)
            if release is None or not release.master_playlist_key or not release.hls_prefix:
                return None
            return ReleaseFiles(release.hls_prefix, release.master_playlist_key)

    if fresh:
        _release_files_cache.forget(release_id)
    files = _release_files_cache.get_or_load(release_id, load)
    if files is None:
        raise NotFound("this release is no longer available", code="release_not_ready")
    return files


def authorize(
    claims: PlaybackClaims,
    session_id: str,
    *,
    country: str | None,
    at: datetime,
    device_id: str | None = None,
) -> Authorized:
    """Every check a playlist or key fetch needs, made on every call. The session, ticket,
    licensing terms and release come from caches (tickets/snapshots.py, the change feed);
    before anything is refused all of them are read again from the database, so a stale
    copy can never refuse a viewer wrongly."""
    require_session(claims, session_id)
    try:
        return _authorize(claims, session_id, country, at, device_id, fresh=False)
    except AppError:
        return _authorize(claims, session_id, country, at, device_id, fresh=True)


def _authorize(
    claims: PlaybackClaims,
    session_id: str,
    country: str | None,
    at: datetime,
    device_id: str | None,
    *,
    fresh: bool,
) -> Authorized:
    playback = _check_owner(snapshots.playback_session(session_id, fresh=fresh), claims)
    if device_id is not None and device_id.strip()[:MAX_DEVICE_ID] != playback.device_id:
        raise Forbidden("this session belongs to another device", code="device_mismatch")
    _require_live(playback, at)
    ticket = snapshots.ticket(playback.ticket_id, fresh=fresh)
    if ticket is None:  # pragma: no cover - foreign key
        raise NotFound("no such ticket", code="ticket_not_found")
    require_watchable(ticket, at)
    offer: Offer = offer_for_playback(ticket.title_id, country, at, fresh=fresh)
    release = _release_files(playback.release_id, fresh=fresh)
    return Authorized(
        session_id=playback.id,
        ticket_id=ticket.id,
        viewer_id=playback.viewer_id,
        title_id=playback.title_id,
        device_id=playback.device_id,
        release_id=playback.release_id,
        hls_prefix=release.hls_prefix,
        master_playlist_key=release.master_playlist_key,
        territory=offer.country,
        first_key_at=playback.first_key_at,
    )


def refresh_token(
    claims: PlaybackClaims,
    session_id: str,
    *,
    country: str | None,
    at: datetime,
) -> tuple[str, datetime]:
    """A fresh token for a session that may still play (same checks as a key fetch)."""
    auth = authorize(claims, session_id, country=country, at=at)
    return issue_playback_token(
        viewer_id=auth.viewer_id,
        ticket_id=auth.ticket_id,
        session_id=auth.session_id,
        device_id=auth.device_id,
    )


def first_key_delivery(session: Session, session_id: str, at: datetime) -> bool:
    """Stamp the session's first key delivery; True only for the call that stamped it."""
    return repository.stamp_first_key(session, session_id, at)


@dataclass(frozen=True)
class Beat:
    session: PlaybackSession
    ticket: Ticket
    fresh: bool  # False when this seq was seen before (a retried request)


def heartbeat(
    session: Session,
    claims: PlaybackClaims,
    session_id: str,
    *,
    seq: int,
    position_seconds: float,
    at: datetime,
) -> Beat:
    """Keep the session alive and remember where the viewer is. A refunded ticket's
    heartbeat is refused (and its session ended) so box office never counts it."""
    playback = _owned(session, claims, session_id)
    playback = repository.lock_session(session, playback.id)
    _require_live(playback, at)
    ticket = repository.get_ticket(session, playback.ticket_id)
    if ticket is None:  # pragma: no cover - foreign key
        raise NotFound("no such ticket", code="ticket_not_found")
    try:
        require_watchable(ticket, at)
    except AppError:
        playback.ended_at = at
        playback.end_reason = "revoked"
        session.flush()
        raise
    fresh = playback.last_seq is None or seq > playback.last_seq
    previous = playback.last_heartbeat_at
    playback.last_heartbeat_at = max(at, previous)
    if fresh:
        playback.last_seq = seq
        playback.position_seconds = position_seconds
    session.flush()
    return Beat(playback, ticket, fresh)


def stop(session: Session, claims: PlaybackClaims, session_id: str, *, at: datetime) -> None:
    """End the session now and free its stream slot (idempotent)."""
    playback = _owned(session, claims, session_id)
    if playback.ended_at is None:
        repository.end_session(session, playback.id, at, "stopped")


def release_prefix(session: Session, session_id: str) -> str | None:
    """Where a session's release lives in storage (for serving its segments)."""
    return repository.release_prefix(session, session_id)
