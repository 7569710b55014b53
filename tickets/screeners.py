"""Screeners: a studio invites a buyer to watch a title without paying.

* The studio invites an e-mail address to a title with an expiry and a view limit
  (:func:`invite`). The invitation carries a random code (256 bits), returned once and sent
  in the e-mail's link through the outbox (``screeners.invitation.mail``); only the code's
  SHA-256 is stored.
* The buyer signs in with the invited address and redeems the code (:func:`redeem`): the
  code is single-use, it binds the invitation to that account for good.
* The buyer plays through the same playback service, grants, keys and per-session
  watermark as a ticket holder (:func:`start`, :func:`check`); the entitlement is the
  invitation instead of a ticket: not revoked, not expired, views left. No licence window
  applies (buyers watch before a territory is sold) and nothing is paid.
* A screener view is a screener session that played (its first heartbeat), counted once
  in ``screener_view`` (:func:`record_beat`), never in box office. The view limit is
  checked at start and again, under the invitation's row lock, when a view is counted, so
  concurrent starts cannot overrun it.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy.orm import Session

from catalog.models import Release
from catalog.service import get_title, playable_release, studio_title
from core import mail
from core.db import new_id
from core.errors import Conflict, Forbidden, Gone, InvalidInput, NotFound
from core.outbox import enqueue
from core.scope import StudioScope
from core.settings import get_settings
from tickets import repository
from tickets.models import PlaybackSession, ScreenerInvitation

MAIL_JOB = "screeners.invitation.mail"
MAX_VIEWS = 100
MAX_LIFETIME = timedelta(days=366)
CODE_BYTES = 32


class ScreenerNotFound(NotFound):
    code = "screener_not_found"


class ScreenerCodeUsed(Conflict):
    code = "screener_code_used"


class ScreenerWrongAccount(Forbidden):
    code = "screener_wrong_account"


class ScreenerExpired(Gone):
    code = "screener_expired"


class ScreenerRevoked(Gone):
    code = "screener_revoked"


class ScreenerViewLimitReached(Forbidden):
    code = "screener_view_limit_reached"


def code_hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


def invite(
    session: Session,
    scope: StudioScope,
    *,
    title_id: str,
    email: str,
    expires_at: datetime,
    view_limit: int,
    invited_by: str,
    link_base: str,
    at: datetime,
) -> tuple[ScreenerInvitation, str]:
    """A new invitation and its code (the only time the code is known)."""
    title = studio_title(session, scope, title_id)  # 404 for another studio's title
    address = email.strip().lower()
    if "@" not in address.strip("@"):
        raise InvalidInput("an e-mail address is needed", code="invalid_email")
    if expires_at <= at or expires_at > at + MAX_LIFETIME:
        raise InvalidInput(
            "a screener expires in the future, within a year", code="invalid_screener_expiry"
        )
    if not 1 <= view_limit <= MAX_VIEWS:
        raise InvalidInput(f"view_limit is 1 to {MAX_VIEWS}", code="invalid_view_limit")
    code = secrets.token_urlsafe(CODE_BYTES)
    invitation = ScreenerInvitation(
        id=new_id(),
        studio_id=title.studio_id,
        title_id=title.id,
        email=address,
        code_hash=code_hash(code),
        expires_at=expires_at,
        view_limit=view_limit,
        invited_by=invited_by,
    )
    session.add(invitation)
    session.flush()
    link = invitation_link(link_base, code)
    # The e-mail goes out after commit (the outbox): a rolled-back invitation sends nothing.
    enqueue(session, MAIL_JOB, invitation_id=invitation.id, email=address, link=link)
    return invitation, code


def invitation_link(base_url: str, code: str) -> str:
    """The link the buyer gets. The code sits in the fragment, which browsers never send
    to a server or write to its access log; the app posts it to the redeem route."""
    return f"{base_url.rstrip('/')}/screeners/redeem#code={code}"


def studio_invitation(
    session: Session, scope: StudioScope, invitation_id: str
) -> ScreenerInvitation:
    found = repository.get_invitation(session, scope, invitation_id)
    if found is None:
        raise ScreenerNotFound("no such screener invitation")
    return found


def revoke(
    session: Session, scope: StudioScope, invitation_id: str, at: datetime
) -> ScreenerInvitation:
    """Stop the invitation: its live sessions end at their next decision (within a grant's
    life), no new one starts. Idempotent."""
    found = studio_invitation(session, scope, invitation_id)
    if found.revoked_at is None:
        found.revoked_at = at
        session.flush()
    return found


def redeem(
    session: Session, *, code: str, buyer_id: str, buyer_email: str, at: datetime
) -> ScreenerInvitation:
    """Bind the invitation to the signed-in buyer; the same buyer again is a no-op."""
    found = repository.invitation_by_code_hash(session, code_hash(code))
    if found is None:
        raise ScreenerNotFound("no such screener invitation")
    if found.buyer_id is not None:
        if found.buyer_id != buyer_id:
            raise ScreenerCodeUsed("this screener code has already been used")
        return found
    if buyer_email.strip().lower() != found.email:
        raise ScreenerWrongAccount("sign in with the address this screener was sent to")
    require_open(found, at)
    found.buyer_id = buyer_id
    found.redeemed_at = at
    session.flush()
    return found


def require_open(invitation: ScreenerInvitation, at: datetime) -> None:
    if invitation.revoked_at is not None:
        raise ScreenerRevoked("the studio has withdrawn this screener")
    if invitation.expires_at <= at:
        raise ScreenerExpired("this screener has expired")


def _require_views_left(session: Session, invitation: ScreenerInvitation) -> None:
    used = repository.count_screener_views(session, invitation.id)
    if used >= invitation.view_limit:
        raise ScreenerViewLimitReached(
            f"all {invitation.view_limit} views of this screener have been used",
            view_limit=invitation.view_limit,
        )


def start(
    session: Session, *, invitation_id: str, buyer_id: str, at: datetime
) -> tuple[ScreenerInvitation, Release, list[PlaybackSession]]:
    """May the buyer start a screener session? Returns the invitation (row locked: starts
    are serialised), the release and the invitation's open sessions."""
    found = repository.lock_invitation(session, invitation_id)
    if found is None or found.buyer_id != buyer_id:
        raise ScreenerNotFound("no such screener")
    require_open(found, at)
    _require_views_left(session, found)
    release = playable_release(session, found.title_id)
    return found, release, list(repository.open_screener_sessions(session, found.id))


class ScreenerPlayback(Protocol):
    """What the screener rules read of a playback session: a PlaybackSession row, or the
    plain values a heartbeat decision loaded (tickets.playback.LiveSession)."""

    @property
    def id(self) -> str: ...
    @property
    def screener_id(self) -> str | None: ...
    @property
    def viewer_id(self) -> str: ...
    @property
    def title_id(self) -> str: ...
    @property
    def country(self) -> str: ...
    @property
    def started_at(self) -> datetime: ...


def check(session: Session, playback: ScreenerPlayback, at: datetime) -> ScreenerInvitation:
    """The screener half of a decision: the invitation is still open to this buyer."""
    found = repository.get_invitation_by_id(session, playback.screener_id or "")
    if found is None or found.buyer_id != playback.viewer_id:
        raise ScreenerNotFound("no such screener")
    require_open(found, at)
    return found


def record_beat(
    session: Session,
    playback: ScreenerPlayback,
    *,
    first: bool,
    fresh: bool,
    watched_seconds: float,
) -> None:
    """Count the view at the session's first heartbeat (once per session, under the
    invitation's lock so the limit holds), then its watched time. Refuses the first
    heartbeat of a view past the limit (a start that raced another)."""
    if first:
        invitation = repository.lock_invitation(session, playback.screener_id or "")
        if invitation is None:  # pragma: no cover - foreign key
            raise ScreenerNotFound("no such screener")
        if not repository.has_screener_view(session, playback.id):
            if repository.count_screener_views(session, invitation.id) >= invitation.view_limit:
                raise ScreenerViewLimitReached(
                    f"all {invitation.view_limit} views of this screener have been used",
                    view_limit=invitation.view_limit,
                )
            repository.insert_screener_view(
                session,
                {
                    "playback_session_id": playback.id,
                    "invitation_id": invitation.id,
                    "buyer_id": playback.viewer_id,
                    "title_id": playback.title_id,
                    "country": playback.country,
                    "started_at": playback.started_at,
                    "watched_seconds": 0.0,
                },
            )
    if fresh and watched_seconds > 0:
        # A heartbeat reports at most the time a session may stay silent: a client cannot
        # inflate the studio's report with one large number.
        cap = float(get_settings().playback_session_timeout_seconds)
        repository.add_screener_watch(session, playback.id, min(watched_seconds, cap))


@dataclass(frozen=True)
class ScreenerReport:
    invitation: ScreenerInvitation
    views: int
    watched_seconds: float


def report(session: Session, invitations: list[ScreenerInvitation]) -> list[ScreenerReport]:
    """Each invitation with its views and watched time (one query for the list)."""
    totals = repository.screener_view_totals(session, [i.id for i in invitations])
    return [ScreenerReport(i, *totals.get(i.id, (0, 0.0))) for i in invitations]


def title_report(session: Session, scope: StudioScope, title_id: str) -> list[ScreenerReport]:
    studio_title(session, scope, title_id)  # 404 for another studio's title
    return report(session, list(repository.title_invitations(session, scope, title_id)))


def buyer_screeners(session: Session, buyer_id: str) -> list[ScreenerReport]:
    return report(session, list(repository.buyer_invitations(session, buyer_id)))


def send_invitation(session: Session, invitation_id: str, email: str, link: str) -> None:
    """The invitation e-mail (the job ``screeners.invitation.mail``). Not sent for an
    invitation withdrawn or already redeemed in the meantime."""
    found = repository.get_invitation_by_id(session, invitation_id)
    if found is None or found.revoked_at is not None or found.buyer_id is not None:
        return
    title = get_title(session, found.title_id).original_title
    views = "one view" if found.view_limit == 1 else f"{found.view_limit} views"
    mail.send(
        mail.Mail(
            to=email,
            subject=f"Screener: {title}",
            text=(
                f"You are invited to watch {title} on Pocket Cinema.\n\n"
                f"Sign in with this address ({email}) and open this link:\n{link}\n\n"
                f"It works once, for this address only, until "
                f"{found.expires_at:%Y-%m-%d %H:%M} UTC, for {views}. Please do not forward "
                "it: every screener stream is marked for the account that plays it."
            ),
            language="en",
            message_id=mail.message_id(f"screener-{invitation_id}"),
        )
    )
