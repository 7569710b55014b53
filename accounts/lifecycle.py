"""An account's life after sign-up: confirming the address, resetting the password,
changing the address, deleting the account, and exporting what we hold.

Every proof of an address is a mailed one-time code (accounts/codes.py). What the outside
sees never depends on whether an address has an account: a reset request for a known and an
unknown address does the very same work in the request (it only queues a job that decides
later), and a code for an unknown address is refused exactly like a wrong code.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from accounts import codes, mails, repository, throttling
from accounts.models import CodePurpose, MailKind, Role, User
from accounts.passwords import check_password
from accounts.service import (
    _EMAIL,
    SignUpRateLimited,
    TokenPair,
    _start_or_continue,
    get_user,
    normalize_email,
)
from core.db import utcnow
from core.errors import Conflict, Forbidden, InvalidInput, TooManyRequests
from core.outbox import enqueue
from core.security import hash_password, verify_password
from core.settings import get_settings

RESET_JOB = "accounts.password_reset.start"


class CodeChecksRateLimited(TooManyRequests):
    code = "code_rate_limited"

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail, retry_after=retry_after)
        self.retry_after = retry_after


def _check_codes_allowed(ip: str) -> None:
    wait = throttling.code_checks_per_ip().retry_after(ip)
    if wait:
        raise CodeChecksRateLimited("too many codes tried from your address; wait a while", wait)
    throttling.code_checks_per_ip().hit(ip)


def _valid_email(email: str) -> str:
    email = normalize_email(email)
    if not _EMAIL.match(email) or len(email) > 320:
        raise InvalidInput("that is not an email address", code="invalid_email")
    return email


def _count_mail_to(email: str) -> None:
    wait = throttling.mails_per_address().retry_after(email)
    if wait:
        raise SignUpRateLimited(
            "too many mails to this address; try again later", wait, code="mail_rate_limited"
        )
    throttling.mails_per_address().hit(email)


# --- confirming the address ------------------------------------------------------------------


def verify_email(
    session: Session, email: str, code: str, ip: str, device_id: str | None = None
) -> TokenPair:
    """Confirm the address with the sign-up code and sign in (reading the mail is the proof).
    The password becomes the one chosen by the sign-up that the code was mailed for."""
    _check_codes_allowed(ip)
    user = repository.get_user_by_email(session, normalize_email(email))
    if user is None or user.disabled_at is not None:
        raise codes.unknown(code)
    row = codes.redeem(session, user, CodePurpose.verify_email, code)
    user.email_verified_at = utcnow()
    if row.password_hash is not None:
        user.password_hash = row.password_hash
    return _start_or_continue(session, user, device_id)


# --- password reset --------------------------------------------------------------------------


def request_password_reset(session: Session, email: str, locale: str | None) -> None:
    """Queue the reset; the job mails a code if the address has an account. The request's
    work is the same for every address, so neither answer nor timing says which have one."""
    email = _valid_email(email)
    _count_mail_to(email)
    enqueue(session, RESET_JOB, email=email, locale=locale or mails.DEFAULT_LOCALE)


def start_password_reset(session: Session, email: str, locale: str) -> None:
    """The job behind :func:`request_password_reset`: a code for a live account, else nothing."""
    user = repository.get_user_by_email(session, email)
    if user is None or user.disabled_at is not None:
        return
    row = codes.issue(session, user, CodePurpose.reset_password)
    mails.queue(
        session,
        MailKind.reset_password,
        user.email,
        mails.locale_of(user, locale),
        user=user,
        code_id=row.id,
    )


def reset_password(
    session: Session,
    email: str,
    code: str,
    new_password: str,
    ip: str,
    device_id: str | None = None,
) -> TokenPair:
    """Set a new password with a reset code, end every sign-in session, and sign in here.
    The code also confirms the address (it was read in that mailbox)."""
    email = normalize_email(email)
    check_password(new_password, email)  # before the code is spent: a weak password costs no code
    _check_codes_allowed(ip)
    user = repository.get_user_by_email(session, email)
    if user is None or user.disabled_at is not None:
        raise codes.unknown(code)
    codes.redeem(session, user, CodePurpose.reset_password, code)
    now = utcnow()
    user.password_hash = hash_password(new_password)
    if user.email_verified_at is None:
        user.email_verified_at = now
    for token in repository.refresh_tokens_of(session, user.id):
        repository.revoke_family(session, token.family_id, now)
    repository.clear_failures(session, email, ip)
    return _start_or_continue(session, user, device_id)


# --- proving it is still the owner -----------------------------------------------------------


def _reauthenticate(
    session: Session, user: User, password: str | None, session_id: str | None
) -> None:
    """Deleting the account or moving it to another address wants more than a token that
    may have been left on a shared device: the password, or for an account without one a
    sign-in (Apple, Google) from the last ``account_reauth_minutes``."""
    if user.password_hash is not None:
        if password is None:
            raise Forbidden("enter your password to do this", code="password_required")
        wait = throttling.login_per_account().retry_after(user.email)
        if wait:
            raise TooManyRequests("too many wrong passwords; try again later", retry_after=wait)
        if not verify_password(user.password_hash, password):
            throttling.login_per_account().hit(user.email)
            raise Forbidden("that password is not right", code="password_incorrect")
        return
    started = repository.family_started_at(session, session_id) if session_id else None
    window = timedelta(minutes=get_settings().account_reauth_minutes)
    if started is None or utcnow() - started > window:
        raise Forbidden(
            "sign in again (with Apple or Google) and retry within a few minutes",
            code="recent_sign_in_required",
        )


# --- changing the address --------------------------------------------------------------------


def request_email_change(
    session: Session,
    user_id: str,
    new_email: str,
    password: str | None,
    session_id: str | None,
    locale: str | None,
) -> None:
    """Mail a code to the new address. If that address belongs to another account, its
    owner is told instead and no code exists: the answer is the same either way."""
    user = get_user(session, user_id)
    new_email = _valid_email(new_email)
    if new_email == user.email:
        raise InvalidInput("that is already your address", code="email_unchanged")
    _reauthenticate(session, user, password, session_id)
    _count_mail_to(new_email)
    language = mails.locale_of(user, locale)
    other = repository.get_user_by_email(session, new_email)
    if other is not None:
        mails.queue(session, MailKind.address_in_use, new_email, mails.locale_of(other, language))
        return
    row = codes.issue(session, user, CodePurpose.change_email, new_email=new_email)
    mails.queue(session, MailKind.change_email, new_email, language, user=user, code_id=row.id)


def confirm_email_change(session: Session, user_id: str, code: str, ip: str) -> User:
    """Move the account to the address the code was mailed to; tell the old address."""
    _check_codes_allowed(ip)
    user = get_user(session, user_id)
    row = codes.redeem(session, user, CodePurpose.change_email, code)
    new_email = row.new_email or ""
    old_email = user.email
    if repository.get_user_by_email(session, new_email) is not None:
        raise Conflict("another account took that address meanwhile", code="email_taken")
    try:
        with session.begin_nested():
            user.email = new_email
            user.email_verified_at = utcnow()
            session.flush()
    except IntegrityError:
        raise Conflict("another account took that address meanwhile", code="email_taken") from None
    mails.queue(
        session,
        MailKind.email_changed,
        old_email,
        mails.locale_of(user, None),
        user=user,
        note=mails.mask(new_email),
    )
    return user


# --- deleting the account --------------------------------------------------------------------


def delete_account(
    session: Session, user_id: str, password: str | None, session_id: str | None
) -> None:
    """Delete the account from inside the app (as Apple's review asks of every app that
    makes accounts). Tickets, payments and ledger rows keep their numbers and still point at
    the account's id, but the row no longer says who it was: no address, name, password or
    language, no provider links, sign-in sessions, codes or mails. A farewell goes to the
    address it had. Staff accounts are removed by an admin, not by themselves."""
    user = get_user(session, user_id)
    if user.role is not Role.viewer:
        raise Forbidden("staff accounts are closed by an admin", code="staff_account")
    _reauthenticate(session, user, password, session_id)
    now = utcnow()
    email, language = user.email, mails.locale_of(user, None)
    repository.forget_person(session, user.id, email)
    user.email = f"deleted.{user.id}@users.invalid"
    user.password_hash = None
    user.display_name = None
    user.locale = None
    user.email_verified_at = None
    user.disabled_at = now
    user.deleted_at = now
    session.flush()
    if not email.endswith("@users.invalid"):
        mails.queue(session, MailKind.account_deleted, email, language)


# --- export ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class AccountRecord:
    """What the accounts package holds about one person."""

    account: dict[str, Any]
    sign_in_providers: list[dict[str, Any]]
    sign_in_sessions: list[dict[str, Any]]
    mails: list[dict[str, Any]]


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


def export_account(session: Session, user_id: str) -> AccountRecord:
    user = get_user(session, user_id)
    families: dict[str, dict[str, Any]] = {}
    for token in repository.refresh_tokens_of(session, user.id):
        family = families.setdefault(
            token.family_id,
            {"device_id": token.device_id, "started_at": _iso(token.created_at)},
        )
        family["last_refreshed_at"] = _iso(token.created_at)
        family["ended"] = token.revoked_at is not None
    return AccountRecord(
        account={
            "user_id": user.id,
            "email": user.email,
            "email_verified_at": _iso(user.email_verified_at),
            "display_name": user.display_name,
            "role": user.role.value,
            "studio_id": user.studio_id,
            "locale": user.locale,
            "created_at": _iso(user.created_at),
            "has_password": user.password_hash is not None,
        },
        sign_in_providers=[
            {"provider": i.provider, "email": i.email, "linked_at": _iso(i.created_at)}
            for i in repository.identities_of(session, user.id)
        ],
        sign_in_sessions=list(families.values()),
        mails=[
            {"kind": m.kind.value, "created_at": _iso(m.created_at), "sent_at": _iso(m.sent_at)}
            for m in repository.mails_of(session, user.id)
        ],
    )
