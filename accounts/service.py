"""Accounts: users and studios, sign-up and sign-in, access and refresh tokens.

Access tokens are short-lived JWTs (HS256, audience ``pocketcinema-api``) carrying the
role, studio, device (``dev``) and sign-in session (``sid``). Refresh tokens are opaque
random strings stored as SHA-256 hashes, one *family* per sign-in; every refresh spends the
presented token and issues its successor, and presenting a spent token revokes the family
(the session is over on every copy, including access tokens, which check ``sid``).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from accounts import codes, mails, repository, throttling
from accounts.identity import ExternalClaims, Provider, verify_id_token
from accounts.models import (
    CodePurpose,
    ExternalIdentity,
    MailKind,
    RefreshToken,
    Role,
    Studio,
    User,
)
from accounts.passwords import check_password
from core import outbound
from core.db import new_id, utcnow
from core.errors import Conflict, Forbidden, InvalidInput, NotAuthenticated, TooManyRequests
from core.scope import StudioScope
from core.security import KeyRing, decode_token, hash_password, issue_token, verify_password
from core.settings import PasswordHashCost, get_settings

ACCESS_AUDIENCE = "pocketcinema-api"
ACCESS_TTL = timedelta(minutes=15)


@dataclass(frozen=True)
class Principal:
    """The caller of a request: who, in which role, for which studio, on which device."""

    user_id: str
    role: Role
    studio_id: str | None
    device_id: str | None
    session_id: str | None = None  # the sign-in session (refresh token family) of the token

    def require(self, *roles: Role) -> None:
        if self.role not in roles and self.role is not Role.admin:
            raise Forbidden("your role may not do this", code="role_forbidden")


def studio_scope(principal: Principal) -> StudioScope:
    """The one answer to "which studios' data may this caller touch?": every studio for
    admins and finance, its own for a studio user, none for anyone else (a viewer, or a
    studio account not yet attached to a studio)."""
    if principal.role in (Role.admin, Role.finance):
        return StudioScope.all_studios()
    if principal.role is Role.studio and principal.studio_id is not None:
        return StudioScope.one(principal.studio_id)
    return StudioScope.nothing()


def login_keyring() -> KeyRing:
    return KeyRing.single(get_settings().secret_key.get_secret_value(), "login")


def normalize_email(email: str) -> str:
    return email.strip().lower()


_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MIN_PASSWORD = 10
MAX_PASSWORD = 256  # argon2 would happily hash megabytes; we do not offer that DoS lever


@lru_cache(maxsize=4)
def _dummy_hash(cost: PasswordHashCost) -> str:
    # Verified against when the email is unknown, so a miss costs as much as a wrong password
    # and response time does not reveal which emails have accounts; made with the current
    # cost, once per cost.
    return hash_password("dummy password for timing " + secrets.token_hex(8))


def create_studio(session: Session, name: str, webhook_url: str | None = None) -> Studio:
    if not name.strip():
        raise InvalidInput("a studio needs a name", code="name_empty")
    if repository.get_studio_by_name(session, name) is not None:
        raise Conflict(f"a studio named {name!r} exists", code="studio_exists")
    if webhook_url is not None:
        outbound.check_url(webhook_url)
    studio = Studio(name=name, webhook_url=webhook_url)
    session.add(studio)
    session.flush()
    return studio


def get_studio(session: Session, studio_id: str) -> Studio:
    studio = repository.get_studio(session, studio_id)
    if studio is None:
        raise InvalidInput("no such studio", code="studio_not_found")
    return studio


def create_user(
    session: Session,
    email: str,
    password: str | None,
    role: Role = Role.viewer,
    studio_id: str | None = None,
    display_name: str | None = None,
) -> User:
    email = normalize_email(email)
    if not _EMAIL.match(email) or len(email) > 320:
        raise InvalidInput("that is not an email address", code="invalid_email")
    if password is not None:
        check_password(password, email)
    if repository.get_user_by_email(session, email) is not None:
        raise Conflict("an account with this email exists", code="email_taken")
    if role is Role.studio and studio_id is None:
        raise InvalidInput("a studio user needs a studio", code="studio_required")
    if studio_id is not None and repository.get_studio(session, studio_id) is None:
        raise InvalidInput("no such studio", code="studio_not_found")
    user = User(
        email=email,
        password_hash=hash_password(password) if password else None,
        role=role,
        studio_id=studio_id,
        display_name=display_name,
        # An operator or an admin made this account for a person they know: they vouch for
        # the address (a typo is theirs to fix; the person cannot be pre-empted by a stranger).
        email_verified_at=utcnow(),
    )
    session.add(user)
    session.flush()
    return user


def get_user(session: Session, user_id: str) -> User:
    user = repository.get_user(session, user_id)
    if user is None:
        raise NotAuthenticated("account not found", code="account_disabled")
    return user


def issue_access_token(
    user: User, device_id: str | None = None, session_id: str | None = None
) -> str:
    claims = {"role": user.role.value, "studio": user.studio_id, "dev": device_id}
    if session_id is not None:
        claims["sid"] = session_id
    return issue_token(
        login_keyring(), subject=user.id, audience=ACCESS_AUDIENCE, ttl=ACCESS_TTL, claims=claims
    )


def principal_from_token(session: Session, token: str) -> Principal:
    claims = decode_token(login_keyring(), token, audience=ACCESS_AUDIENCE)
    user = repository.get_user(session, str(claims["sub"]))
    if user is None or user.disabled_at is not None:
        raise NotAuthenticated("account not found or disabled", code="account_disabled")
    sid = claims.get("sid")
    if sid is not None and repository.family_revoked(session, str(sid)):
        raise NotAuthenticated("this sign-in session has ended", code="session_revoked")
    return Principal(
        user.id, user.role, user.studio_id, claims.get("dev"), str(sid) if sid else None
    )


# --- sign-in sessions ------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int  # seconds the access token lives
    user: User
    device_id: str | None
    created: bool = False  # a new account was made (sign-up, first Apple/Google sign-in)


class AuthFailure(NotAuthenticated):
    """A refusal whose bookkeeping (a failed attempt, a revoked family) must be committed
    even though the request fails: the API commits, then answers with the problem."""


class InvalidCredentials(AuthFailure):
    code = "invalid_credentials"


class RefreshTokenReused(AuthFailure):
    code = "refresh_token_reused"


class LoginRateLimited(TooManyRequests):
    code = "login_rate_limited"

    def __init__(self, detail: str, retry_after: int, *, code: str | None = None) -> None:
        super().__init__(detail, code=code, retry_after=retry_after)
        self.retry_after = retry_after


class SignUpRateLimited(LoginRateLimited):
    code = "signup_rate_limited"


class EmailNotVerified(AuthFailure):
    """Right password, address never confirmed. Said only after the password checked out,
    so it tells nothing to someone who does not know the password."""

    status = 403
    code = "email_not_verified"
    title = "Address not confirmed"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _start_or_continue(
    session: Session, user: User, device_id: str | None, family_id: str | None = None
) -> TokenPair:
    token = secrets.token_urlsafe(32)
    family = family_id or new_id()
    session.add(
        RefreshToken(
            user_id=user.id,
            family_id=family,
            token_hash=_hash(token),
            device_id=device_id,
            expires_at=utcnow() + timedelta(days=get_settings().refresh_token_days),
        )
    )
    session.flush()
    return TokenPair(
        access_token=issue_access_token(user, device_id, family),
        refresh_token=token,
        expires_in=int(ACCESS_TTL.total_seconds()),
        user=user,
        device_id=device_id,
    )


def sign_up(
    session: Session,
    email: str,
    password: str,
    ip: str,
    device_id: str | None = None,
    display_name: str | None = None,
    locale: str | None = None,
) -> None:
    """Create an unconfirmed viewer account and mail it a code; or, when the address already
    has an account, tell that account's owner by mail and change nothing.

    The caller cannot tell which happened: both answer the same, after the same work (one
    password hash, one mail queued), so sign-up does not reveal which addresses have
    accounts. An address that has an account *not yet confirmed* gets a new code, bound to
    this sign-up's password: whoever reads the mail sets the password, so a stranger who
    signed up first with someone else's address keeps no way in. Sign-ups are limited per
    client address and globally, and mails per e-mail address (counted for every address)."""
    wait = max(
        throttling.signup_per_ip().retry_after(ip), throttling.signup_everyone().retry_after()
    )
    if wait:
        raise SignUpRateLimited("too many sign-ups; try again later", wait)
    throttling.signup_per_ip().hit(ip)
    throttling.signup_everyone().hit()
    email = normalize_email(email)
    if not _EMAIL.match(email) or len(email) > 320:
        raise InvalidInput("that is not an email address", code="invalid_email")
    check_password(password, email)
    wait = throttling.mails_per_address().retry_after(email)
    if wait:
        raise SignUpRateLimited(
            "too many mails to this address; try again later", wait, code="mail_rate_limited"
        )
    throttling.mails_per_address().hit(email)
    password_hash = hash_password(password)
    existing = repository.get_user_by_email(session, email)
    if existing is None:
        try:
            with session.begin_nested():
                user = User(
                    email=email,
                    password_hash=password_hash,
                    role=Role.viewer,
                    display_name=display_name,
                    locale=mails.locale_of(None, locale),
                )
                session.add(user)
                session.flush()
        except IntegrityError:
            return  # a concurrent sign-up with the same address won; same answer either way
        code = codes.issue(session, user, CodePurpose.verify_email, password_hash=password_hash)
        mails.queue(
            session, MailKind.verify_email, email, user.locale or "", user=user, code_id=code.id
        )
        return
    if existing.disabled_at is not None:
        return  # a disabled or deleted account hears nothing; the caller sees the same 202
    language = mails.locale_of(existing, locale)
    if existing.email_verified_at is None:
        code = codes.issue(session, existing, CodePurpose.verify_email, password_hash=password_hash)
        mails.queue(session, MailKind.verify_email, email, language, user=existing, code_id=code.id)
        return
    mails.queue(session, MailKind.sign_up_attempt, email, language, user=existing)


def login(
    session: Session, email: str, password: str, ip: str, device_id: str | None = None
) -> TokenPair:
    """Email + password, behind the limits of accounts/throttling.py: failed sign-ins per
    client address (any account); per (email, client IP) in the database: past
    ``login_max_failures`` within ``login_failure_window_seconds`` further attempts are
    refused until the oldest failure leaves the window (even with the right password); and,
    for devices that never signed in to the account, failures per account and all attempts
    together."""
    settings = get_settings()
    email = normalize_email(email)
    now = utcnow()
    wait = throttling.login_per_ip().retry_after(ip)
    if wait:
        raise LoginRateLimited("too many failed sign-ins from your address; try again later", wait)
    window = timedelta(seconds=settings.login_failure_window_seconds)
    failures = repository.recent_failures(session, email, ip, now - window)
    if len(failures) >= settings.login_max_failures:
        oldest = failures[-settings.login_max_failures]
        retry = max(1, int((oldest + window - now).total_seconds()) + 1)
        raise LoginRateLimited("too many failed attempts; try again later", retry)
    user = repository.get_user_by_email(session, email)
    known_device = (
        user is not None
        and device_id is not None
        and repository.device_signed_in_before(session, user.id, device_id)
    )
    if not known_device:
        # Soft limits: they never stop a device the owner has used (see throttling.py).
        wait = max(
            throttling.login_per_account().retry_after(email),
            throttling.login_everyone().retry_after(),
        )
        if wait:
            raise LoginRateLimited(
                "too many sign-in attempts on this account; sign in from a device you have "
                "used before, or try again later",
                wait,
                code="login_throttled",
            )
        throttling.login_everyone().hit()
    ok = verify_password(
        user.password_hash if user and user.password_hash else _dummy_hash(settings.password_hash),
        password,
    )
    if not ok or user is None or user.password_hash is None or user.disabled_at is not None:
        repository.record_failure(session, email, ip, now, keep_after=now - window)
        throttling.login_per_ip().hit(ip)
        throttling.login_per_account().hit(email)
        raise InvalidCredentials("wrong email or password")
    repository.clear_failures(session, email, ip)
    if user.email_verified_at is None:
        raise EmailNotVerified(
            "confirm your address with the code we mailed you (sign up again for a new one)"
        )
    return _start_or_continue(session, user, device_id)


def refresh(session: Session, refresh_token: str, device_id: str | None = None) -> TokenPair:
    row = repository.refresh_token_by_hash(session, _hash(refresh_token))
    if row is None:
        raise NotAuthenticated("unknown refresh token", code="invalid_refresh_token")
    now = utcnow()
    if row.revoked_at is not None:
        raise NotAuthenticated("this sign-in session has ended", code="session_revoked")
    if row.used_at is not None:
        # A spent token came back: someone holds a copy. End the session everywhere.
        repository.revoke_family(session, row.family_id, now)
        raise RefreshTokenReused("refresh token already used; please sign in again")
    if row.expires_at <= now:
        raise NotAuthenticated("refresh token expired", code="refresh_token_expired")
    if device_id is not None and row.device_id is not None and device_id != row.device_id:
        raise NotAuthenticated("refresh token belongs to another device", code="device_mismatch")
    user = repository.get_user(session, row.user_id)
    if user is None or user.disabled_at is not None:
        raise NotAuthenticated("account not found or disabled", code="account_disabled")
    row.used_at = now
    return _start_or_continue(session, user, row.device_id, row.family_id)


def logout(session: Session, refresh_token: str) -> None:
    """End the sign-in session the token belongs to (unknown tokens: nothing to do)."""
    row = repository.refresh_token_by_hash(session, _hash(refresh_token))
    if row is not None:
        repository.revoke_family(session, row.family_id, utcnow())


def sign_in_with(
    session: Session,
    provider: Provider,
    id_token: str,
    device_id: str | None = None,
    nonce: str | None = None,
) -> TokenPair:
    """Sign in with Apple or Google. The provider's account is linked to ours by its stable
    ``sub``. On first sign-in it joins an existing account with the same address only when
    the provider vouches for the address (``email_verified``), the account confirmed it too,
    and the account is a viewer's: never staff (studio, finance, admin), who sign in with
    their password. Otherwise a new viewer account is made."""
    claims = verify_id_token(provider, id_token, get_settings(), nonce)
    link = repository.external_identity(session, provider.value, claims.subject)
    created = False
    if link is not None:
        user = repository.get_user(session, link.user_id)
        if user is None:  # pragma: no cover - the foreign key cascades
            raise NotAuthenticated("account not found", code="account_disabled")
    else:
        user, created = _user_for(session, claims)
        session.add(
            ExternalIdentity(
                provider=provider.value, subject=claims.subject, user_id=user.id, email=claims.email
            )
        )
    if user.role is not Role.viewer:
        raise Forbidden(
            "staff accounts sign in with their password", code="provider_sign_in_not_for_staff"
        )
    if user.disabled_at is not None:
        raise NotAuthenticated("account disabled", code="account_disabled")
    pair = _start_or_continue(session, user, device_id)
    return TokenPair(**{**pair.__dict__, "created": created})


def _user_for(session: Session, claims: ExternalClaims) -> tuple[User, bool]:
    vouched = claims.email if claims.email and claims.email_verified else None
    if vouched is not None:
        existing = repository.get_user_by_email(session, vouched)
        if (
            existing is not None
            and existing.role is Role.viewer
            and existing.email_verified_at is not None
            and existing.disabled_at is None
        ):
            return existing, False
        if (
            existing is not None
            and existing.role is Role.viewer
            and existing.email_verified_at is None
            and not repository.ever_signed_in(session, existing.id)
        ):
            # A password sign-up nobody confirmed, that never signed in: it holds nothing,
            # and the provider has just shown the address belongs to someone else than
            # whoever may have made it (account pre-hijacking). It is removed, with the
            # password it had, and the address goes to the person the provider vouches for.
            repository.delete_user(session, existing)
    # Never attached to an existing account here (that would hand it to whoever controls
    # the provider account). The address becomes the account's only when the provider
    # vouches for it and it is free; otherwise a placeholder, and the claimed address stays
    # on the link for contact.
    email = vouched
    if email is None or repository.get_user_by_email(session, email) is not None:
        email = f"{claims.provider.value}.{claims.subject}@users.invalid"
    user = User(
        email=email,
        password_hash=None,
        role=Role.viewer,
        display_name=claims.name,
        email_verified_at=utcnow() if email == vouched else None,
    )
    session.add(user)
    session.flush()
    return user, True
