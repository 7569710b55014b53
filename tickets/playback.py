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

Heartbeats and refreshes are most of the service's database work, so :func:`decide` reads
everything the rule needs in one statement (the session row locked, its ticket's rental
clock, its release's packaging, and the licence through catalog's SQL twin of
``availability.decide``) and hands back plain values, not ORM objects. Only a refusal of the
licence asks :func:`catalog.availability.offer_for` again, for the refusal's exact code.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from catalog.availability import OutsideLicenceWindow, offer_for
from catalog.models import Release
from catalog.service import playable_release
from core.db import new_id
from core.errors import Forbidden, Gone, InvalidInput, NotFound
from core.settings import get_settings
from tickets import repository, screeners
from tickets.models import PlaybackSession, TicketState
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


@dataclass
class LiveSession:
    """A playback session as a decision sees it (plain values, not an ORM row)."""

    id: str
    ticket_id: str | None  # None for a screener session
    screener_id: str | None  # the invitation, for a screener session
    viewer_id: str
    title_id: str
    release_id: str
    device_id: str
    country: str
    started_at: datetime
    last_heartbeat_at: datetime
    last_seq: int | None
    position_seconds: float

    @classmethod
    def of(cls, row: Any) -> LiveSession:
        """From a PlaybackSession row or a result row with the same names."""
        return cls(
            id=row.id,
            ticket_id=row.ticket_id,
            screener_id=row.screener_id,
            viewer_id=row.viewer_id,
            title_id=row.title_id,
            release_id=row.release_id,
            device_id=row.device_id,
            country=row.country,
            started_at=row.started_at,
            last_heartbeat_at=row.last_heartbeat_at,
            last_seq=row.last_seq,
            position_seconds=float(row.position_seconds or 0.0),
        )


@dataclass(frozen=True)
class Packaging:
    """What a grant needs of the session's release (plain values)."""

    id: str
    hls_prefix: str | None
    master_playlist_key: str | None
    content_key_id: str | None
    outputs: dict[str, Any]
    duration_seconds: float | None

    @classmethod
    def of(cls, release: Release) -> Packaging:
        return cls(
            release.id,
            release.hls_prefix,
            release.master_playlist_key,
            release.content_key_id,
            release.outputs or {},
            release.duration_seconds,
        )


@dataclass(frozen=True)
class TicketClock:
    """A ticket's state and rental clock (satisfies tickets.service.RentalClock)."""

    state: TicketState
    start_by: datetime | None
    first_played_at: datetime | None
    watch_until: datetime | None


@dataclass(frozen=True)
class Entitled:
    """A "yes": the session may play until the next decision."""

    session: LiveSession
    ticket: TicketClock | None  # None for a screener session (no ticket, no window)
    release: Packaging


@dataclass(frozen=True)
class Caller:
    """Who a grant says is asking (checked against the session row)."""

    viewer_id: str
    ticket_id: str
    device_id: str


def timeout() -> timedelta:
    return timedelta(seconds=get_settings().playback_session_timeout_seconds)


def is_live(playback: PlaybackSession, at: datetime) -> bool:
    return _live(playback.ended_at, playback.last_heartbeat_at, at)


def _live(ended_at: datetime | None, last_heartbeat_at: datetime, at: datetime) -> bool:
    return ended_at is None and last_heartbeat_at > at - timeout()


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
    position_seconds: float = 0.0,
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
        position_seconds=position_seconds,
    )
    session.add(playback)
    session.flush()
    clock = TicketClock(ticket.state, ticket.start_by, ticket.first_played_at, ticket.watch_until)
    return Entitled(LiveSession.of(playback), clock, Packaging.of(release))


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
    return Entitled(LiveSession.of(playback), None, Packaging.of(release))


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
    facts = repository.decision_facts(session, session_id, country or "", at)
    if (
        facts is None
        or facts.viewer_id != caller.viewer_id
        or (facts.ticket_id or "") != caller.ticket_id
        or facts.device_id != caller.device_id
    ):
        # The grant was signed by us for this session, so this fails only if ids were
        # reused; still, a mismatch must never grant anything.
        raise SessionNotFound("no such playback session")
    if not _live(facts.ended_at, facts.last_heartbeat_at, at):
        raise SessionEnded(
            "this playback session has ended; start playback again",
            reason=facts.end_reason or "timed_out",
        )
    clock: TicketClock | None = None
    if facts.screener_id is not None:
        # A buyer's screener: the invitation is the entitlement (no ticket, no window).
        screeners.check(session, facts, at)
    else:
        clock = TicketClock(facts.state, facts.start_by, facts.first_played_at, facts.watch_until)
        require_watchable(clock, at)
    if country != facts.country:
        raise CountryChanged(
            f"this session plays in {facts.country}; heartbeats from elsewhere "
            f"({country or 'unknown'}) do not count: start playback again",
            session_country=facts.country,
        )
    if clock is not None and not facts.licensed:
        # The rule on plain values names the refusal (window closed, territory, collection).
        offer_for(session, facts.title_id, facts.country, at)
        raise OutsideLicenceWindow(f"this title is not available in {facts.country} now")
    if not facts.hls_prefix:  # pragma: no cover - a session is started on a ready release
        raise NotFound("this release is no longer available", code="release_not_ready")
    packaging = Packaging(
        facts.release_id,
        facts.hls_prefix,
        facts.master_playlist_key,
        facts.content_key_id,
        facts.outputs or {},
        facts.duration_seconds,
    )
    return Entitled(LiveSession.of(facts), clock, packaging)


def revoke(session: Session, session_id: str, at: datetime, refusal: Exception) -> None:
    """End a live session that a decision refused (ticket, licence or country): its grant
    runs out and no new one is issued. Already ended or unknown sessions stay as they are."""
    if isinstance(refusal, SessionEnded | SessionNotFound):
        return
    code = getattr(refusal, "code", "revoked")
    repository.end_session(session, session_id, at, code[:30])


def beat(
    session: Session, playback: LiveSession, *, seq: int, position_seconds: float, at: datetime
) -> bool:
    """Keep the (locked) session alive and remember where the viewer is; False when this
    seq was seen before (a retried request)."""
    fresh = playback.last_seq is None or seq > playback.last_seq
    playback.last_heartbeat_at = max(at, playback.last_heartbeat_at)
    if fresh:
        playback.last_seq = seq
        playback.position_seconds = position_seconds
    repository.save_beat(
        session,
        playback.id,
        heard_at=playback.last_heartbeat_at,
        seq=playback.last_seq,
        position=playback.position_seconds,
    )
    return fresh


def move_playhead(session: Session, playback: LiveSession, position_seconds: float) -> None:
    """A seek reported with a refresh: the next grants open the key periods around it."""
    playback.position_seconds = position_seconds
    repository.save_beat(
        session,
        playback.id,
        heard_at=playback.last_heartbeat_at,
        seq=playback.last_seq,
        position=position_seconds,
    )


def stop(session: Session, session_id: str, caller: Caller, *, at: datetime) -> None:
    """End the session now and free its stream slot (idempotent)."""
    found = repository.get_session(session, session_id)
    if found is None or found.viewer_id != caller.viewer_id or found.device_id != caller.device_id:
        raise SessionNotFound("no such playback session")
    if found.ended_at is None:
        repository.end_session(session, found.id, at, "stopped")


def end_viewer_sessions(session: Session, viewer_id: str, at: datetime) -> int:
    """A disabled account plays no more: its sessions end now, so the next heartbeat or
    grant refresh is refused (``session_ended``) and the grants already issued run out
    within their short lifetime."""
    return repository.end_viewer_sessions(session, viewer_id, at, "account_disabled")
