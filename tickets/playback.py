"""Playback sessions: may this session play right now? Decided against the database.

The one rule, applied when a session starts and at every heartbeat and refresh
(:func:`decide`); each "yes" becomes a short-lived grant (playback/service.py), each "no"
ends the session:

* the session is the caller's (viewer, ticket and device the grant names) and is live:
  not ended, and heard from within ``playback_session_timeout_seconds``;
* the ticket is *active* (paid; not refunded, disputed or expired: its rental clock);
* the request comes from the country the session plays in, and the title is licensed
  there now (:func:`catalog.availability.offer_for`: window, territory, collection);
* the stream limit: starting one more live session than ``playback_streams_per_ticket`` is
  refused with ``stream_limit_reached``, unless the start asks to ``take_over``: then the
  longest-silent other session ends (``taken_over``). Starting again on the *same device*
  replaces that device's session (the app crashed or was reinstalled).

The first play starts the ticket's watch window (:func:`tickets.service.mark_first_play`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from catalog.availability import Offer, offer_for
from catalog.models import Release
from catalog.service import playable_release
from core.db import new_id
from core.errors import Forbidden, Gone, InvalidInput, NotFound
from core.settings import get_settings
from tickets import repository, screeners
from tickets.models import PlaybackSession, Ticket, TicketState
from tickets.service import RentalClock, get_ticket_for_viewer, mark_first_play, state_at

MAX_DEVICE_ID = 200


class StreamLimitReached(Forbidden):
    code = "stream_limit_reached"


class SessionEnded(Gone):
    code = "session_ended"


class CountryChanged(Forbidden):
    code = "country_changed"


class SessionNotFound(NotFound):
    code = "session_not_found"


@dataclass(frozen=True)
class Entitled:
    """A "yes": the session may play until the next decision."""

    session: PlaybackSession
    ticket: Ticket | None  # None for a screener session
    offer: Offer | None  # None for a screener session (no licence window applies)
    release: Release


@dataclass(frozen=True)
class Caller:
    """Who a grant says is asking (checked against the session row)."""

    viewer_id: str
    ticket_id: str
    device_id: str


def timeout() -> timedelta:
    return timedelta(seconds=get_settings().playback_session_timeout_seconds)


def is_live(playback: PlaybackSession, at: datetime) -> bool:
    return playback.ended_at is None and playback.last_heartbeat_at > at - timeout()


def require_watchable(ticket: RentalClock, at: datetime) -> None:
    """403 with a code the app can show: ticket_refunded, ticket_disputed, ticket_expired,
    ticket_pending or ticket_failed."""
    state = state_at(ticket, at)
    if state is not TicketState.active:
        raise Forbidden(f"this ticket is {state.value}", code=f"ticket_{state.value}")


def device(device_id: str | None) -> str:
    found = (device_id or "").strip()
    if not found:
        raise InvalidInput(
            "sign in with a device id (login's device_id) to play", code="device_required"
        )
    return found[:MAX_DEVICE_ID]


def start(
    session: Session,
    *,
    viewer_id: str,
    device_id: str | None,
    ticket_id: str,
    country: str | None,
    at: datetime,
    take_over: bool = False,
) -> Entitled:
    this_device = device(device_id)
    get_ticket_for_viewer(session, viewer_id, ticket_id)  # 404 for someone else's ticket
    # Row lock (PostgreSQL; SQLite already holds its write lock): two devices pressing
    # play at once are serialised here, so the stream limit cannot be overrun by a race.
    ticket = repository.lock_ticket(session, ticket_id)
    require_watchable(ticket, at)
    offer = offer_for(session, ticket.title_id, country, at)  # refuses an unknown country
    release = playable_release(session, ticket.title_id)

    live: list[PlaybackSession] = []
    for other in repository.open_sessions(session, ticket.id):
        if not is_live(other, at):
            repository.end_session(
                session, other.id, other.last_heartbeat_at + timeout(), "timed_out"
            )
        elif other.device_id == this_device:
            repository.end_session(session, other.id, at, "replaced")
        else:
            live.append(other)
    limit = get_settings().playback_streams_per_ticket
    if len(live) >= limit:
        if not take_over:
            raise StreamLimitReached(
                f"this ticket is already playing on {len(live)} other screen(s); stop one, "
                "wait for it to time out, or start with take_over to move the stream here",
                limit=limit,
                retry_after_seconds=get_settings().playback_session_timeout_seconds,
            )
        # The other screen keeps its grant until it expires, then its next decision refuses.
        for other in sorted(live, key=lambda s: s.last_heartbeat_at)[: len(live) - limit + 1]:
            repository.end_session(session, other.id, at, "taken_over")
    mark_first_play(session, ticket, at)
    playback = PlaybackSession(
        id=new_id(),
        ticket_id=ticket.id,
        viewer_id=viewer_id,
        title_id=ticket.title_id,
        release_id=release.id,
        device_id=this_device,
        country=offer.country,
        started_at=at,
        last_heartbeat_at=at,
        position_seconds=0.0,
    )
    session.add(playback)
    session.flush()
    return Entitled(playback, ticket, offer, release)


def start_screener(
    session: Session,
    *,
    viewer_id: str,
    device_id: str | None,
    invitation_id: str,
    country: str | None,
    at: datetime,
) -> Entitled:
    """A buyer starts a screener: the same session, one stream at a time (a new start on
    any device replaces the open one), the invitation instead of a ticket."""
    this_device = device(device_id)
    if not country:
        raise InvalidInput(
            "cannot tell which country this request comes from", code="unknown_country"
        )
    invitation, release, open_sessions = screeners.start(
        session, invitation_id=invitation_id, buyer_id=viewer_id, at=at
    )
    for other in open_sessions:
        repository.end_session(session, other.id, at, "replaced")
    playback = PlaybackSession(
        id=new_id(),
        ticket_id=None,
        screener_id=invitation.id,
        viewer_id=viewer_id,
        title_id=invitation.title_id,
        release_id=release.id,
        device_id=this_device,
        country=country,
        started_at=at,
        last_heartbeat_at=at,
        position_seconds=0.0,
    )
    session.add(playback)
    session.flush()
    return Entitled(playback, None, None, release)


def decide(
    session: Session,
    session_id: str,
    caller: Caller,
    *,
    country: str | None,
    at: datetime,
) -> Entitled:
    """Every check, against the database, with the session row locked (so a heartbeat and
    a stop or a takeover cannot interleave). Raises the refusal; :func:`revoke` ends the
    session for the refusals that must end it."""
    playback = repository.lock_session(session, session_id)
    if (
        playback is None
        or playback.viewer_id != caller.viewer_id
        or (playback.ticket_id or "") != caller.ticket_id
        or playback.device_id != caller.device_id
    ):
        # The grant was signed by us for this session, so this fails only if ids were
        # reused; still, a mismatch must never grant anything.
        raise SessionNotFound("no such playback session")
    if not is_live(playback, at):
        raise SessionEnded(
            "this playback session has ended; start playback again",
            reason=playback.end_reason or "timed_out",
        )
    ticket: Ticket | None = None
    offer: Offer | None = None
    if playback.screener_id is not None:
        # A buyer's screener: the invitation is the entitlement (no ticket, no window).
        screeners.check(session, playback, at)
    else:
        ticket = repository.get_ticket(session, playback.ticket_id or "")
        if ticket is None:  # pragma: no cover - foreign key
            raise NotFound("no such ticket", code="ticket_not_found")
        require_watchable(ticket, at)
    if country != playback.country:
        raise CountryChanged(
            f"this session plays in {playback.country}; heartbeats from elsewhere "
            f"({country or 'unknown'}) do not count: start playback again",
            session_country=playback.country,
        )
    if ticket is not None:
        offer = offer_for(session, ticket.title_id, playback.country, at)
    release = repository.find_release(session, playback.release_id)
    if release is None or not release.hls_prefix:  # pragma: no cover - foreign key
        raise NotFound("this release is no longer available", code="release_not_ready")
    return Entitled(playback, ticket, offer, release)


def revoke(session: Session, session_id: str, at: datetime, refusal: Exception) -> None:
    """End a live session that a decision refused (ticket, licence or country): its grant
    runs out and no new one is issued. Already ended or unknown sessions stay as they are."""
    if isinstance(refusal, SessionEnded | SessionNotFound):
        return
    code = getattr(refusal, "code", "revoked")
    repository.end_session(session, session_id, at, code[:30])


def beat(playback: PlaybackSession, *, seq: int, position_seconds: float, at: datetime) -> bool:
    """Keep the (locked) session alive and remember where the viewer is; False when this
    seq was seen before (a retried request)."""
    fresh = playback.last_seq is None or seq > playback.last_seq
    playback.last_heartbeat_at = max(at, playback.last_heartbeat_at)
    if fresh:
        playback.last_seq = seq
        playback.position_seconds = position_seconds
    return fresh


def stop(session: Session, session_id: str, caller: Caller, *, at: datetime) -> None:
    """End the session now and free its stream slot (idempotent)."""
    found = repository.get_session(session, session_id)
    if found is None or found.viewer_id != caller.viewer_id or found.device_id != caller.device_id:
        raise SessionNotFound("no such playback session")
    if found.ended_at is None:
        repository.end_session(session, found.id, at, "stopped")
