"""Screeners: studios invite buyers to a title (studio scope), buyers redeem the e-mailed
code and see their screeners. Playing one is ``POST /v1/playback/screener-sessions``
(api/routes/playback.py); screener views are reported here, never in box office."""

from __future__ import annotations

from fastapi import APIRouter

from accounts import service as accounts
from api.contract import problems
from api.deps import CallerScope, CurrentUser, DbSession, ReadDb, StudioUser
from api.screener_schemas import (
    BuyerScreenerRead,
    ScreenerInvitationRead,
    ScreenerInvite,
    ScreenerInvited,
    ScreenerRedeem,
)
from core.db import utcnow
from core.settings import get_settings
from tickets import screeners

studio = APIRouter(prefix="/v1/studio", tags=["screeners"])
buyer = APIRouter(prefix="/v1/screeners", tags=["screeners"])


def _read(found: screeners.ScreenerReport) -> ScreenerInvitationRead:
    invitation, views, seconds = found.invitation, found.views, found.watched_seconds
    return ScreenerInvitationRead(
        id=invitation.id,
        title_id=invitation.title_id,
        email=invitation.email,
        expires_at=invitation.expires_at,
        view_limit=invitation.view_limit,
        redeemed_at=invitation.redeemed_at,
        revoked_at=invitation.revoked_at,
        views=views,
        watched_seconds=round(seconds, 1),
    )


@studio.post(
    "/titles/{title_id}/screeners",
    operation_id="screeners_invite",
    summary="Invite a buyer by e-mail to watch a title without paying",
    status_code=201,
    response_model=ScreenerInvited,
    responses=problems(
        "title_not_found", "invalid_email", "invalid_screener_expiry", "invalid_view_limit"
    ),
)
def invite(
    session: DbSession,
    principal: StudioUser,
    scope: CallerScope,
    title_id: str,
    body: ScreenerInvite,
) -> ScreenerInvited:
    """A single-use code (256 random bits, stored only as its hash) is mailed to the buyer
    through the outbox, and answered here once so the studio can send it another way. The
    screener has an expiry and a view limit; its views are reported apart from box office."""
    invitation, code = screeners.invite(
        session,
        scope,
        title_id=title_id,
        email=body.email,
        expires_at=body.expires_at,
        view_limit=body.view_limit,
        invited_by=principal.user_id,
        link_base=get_settings().base_url,
        at=utcnow(),
    )
    link = screeners.invitation_link(get_settings().base_url, code)
    fresh = screeners.ScreenerReport(invitation, 0, 0.0)
    return ScreenerInvited(**_read(fresh).model_dump(), code=code, link=link)


@studio.get(
    "/titles/{title_id}/screeners",
    operation_id="screeners_list_for_title",
    summary="A title's screener invitations and their views (reported apart from box office)",
    response_model=list[ScreenerInvitationRead],
    responses=problems("title_not_found"),
)
def list_for_title(
    session: ReadDb, _: StudioUser, scope: CallerScope, title_id: str
) -> list[ScreenerInvitationRead]:
    """Each invitation with its buyer, expiry, view limit, views counted and watched time."""
    return [_read(r) for r in screeners.title_report(session, scope, title_id)]


@studio.post(
    "/screeners/{screener_id}/revoke",
    operation_id="screeners_revoke",
    summary="Withdraw a screener: its sessions stop within a grant's life",
    response_model=ScreenerInvitationRead,
    responses=problems("screener_not_found"),
)
def revoke(
    session: DbSession, _: StudioUser, scope: CallerScope, screener_id: str
) -> ScreenerInvitationRead:
    """The next heartbeat or refresh of any of its sessions is refused (screener_revoked)."""
    found = screeners.revoke(session, scope, screener_id, utcnow())
    return _read(screeners.report(session, [found])[0])


def _buyer_read(found: screeners.ScreenerReport) -> BuyerScreenerRead:
    invitation, views = found.invitation, found.views
    return BuyerScreenerRead(
        id=invitation.id,
        title_id=invitation.title_id,
        expires_at=invitation.expires_at,
        view_limit=invitation.view_limit,
        views_used=views,
    )


@buyer.post(
    "/redeem",
    operation_id="screeners_redeem",
    summary="Redeem an e-mailed screener code with the invited address's account",
    response_model=BuyerScreenerRead,
    responses=problems(
        "screener_not_found",
        "screener_wrong_account",
        "screener_code_used",
        "screener_expired",
        "screener_revoked",
    ),
)
def redeem(session: DbSession, principal: CurrentUser, body: ScreenerRedeem) -> BuyerScreenerRead:
    """Only the account of the invited address can redeem, once; the screener is then the
    buyer's to start with POST /v1/playback/screener-sessions."""
    user = accounts.get_user(session, principal.user_id)
    found = screeners.redeem(
        session, code=body.code, buyer_id=user.id, buyer_email=user.email, at=utcnow()
    )
    return _buyer_read(screeners.report(session, [found])[0])


@buyer.get(
    "",
    operation_id="screeners_list_mine",
    summary="My screeners",
    response_model=list[BuyerScreenerRead],
)
def mine(session: ReadDb, principal: CurrentUser) -> list[BuyerScreenerRead]:
    """The screeners I redeemed, with their expiry and the views left."""
    return [_buyer_read(r) for r in screeners.buyer_screeners(session, principal.user_id)]
