"""Accounts: creating users and studios, and turning access tokens back into users."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.orm import Session

from accounts import repository
from accounts.models import Role, Studio, User
from core.errors import Conflict, Forbidden, NotAuthenticated
from core.security import KeyRing, decode_token, hash_password, issue_token
from core.settings import get_settings

ACCESS_AUDIENCE = "pocketcinema-api"
ACCESS_TTL = timedelta(minutes=15)


@dataclass(frozen=True)
class Principal:
    """The caller of a request: who, in which role, for which studio, on which device."""

    user_id: str
    role: Role
    studio_id: str | None
    device_id: str | None

    def require(self, *roles: Role) -> None:
        if self.role not in roles and self.role is not Role.admin:
            raise Forbidden("your role may not do this", code="role_forbidden")


def login_keyring() -> KeyRing:
    return KeyRing.single(get_settings().secret_key.get_secret_value(), "login")


def normalize_email(email: str) -> str:
    return email.strip().lower()


def create_studio(session: Session, name: str, webhook_url: str | None = None) -> Studio:
    if repository.get_studio_by_name(session, name) is not None:
        raise Conflict(f"a studio named {name!r} exists", code="studio_exists")
    studio = Studio(name=name, webhook_url=webhook_url)
    session.add(studio)
    session.flush()
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
    if repository.get_user_by_email(session, email) is not None:
        raise Conflict("an account with this email exists", code="email_taken")
    if role is Role.studio and studio_id is None:
        raise Conflict("a studio user needs a studio", code="studio_required")
    user = User(
        email=email,
        password_hash=hash_password(password) if password else None,
        role=role,
        studio_id=studio_id,
        display_name=display_name,
    )
    session.add(user)
    session.flush()
    return user


def issue_access_token(user: User, device_id: str | None = None) -> str:
    claims = {"role": user.role.value, "studio": user.studio_id, "dev": device_id}
    return issue_token(
        login_keyring(), subject=user.id, audience=ACCESS_AUDIENCE, ttl=ACCESS_TTL, claims=claims
    )


def principal_from_token(session: Session, token: str) -> Principal:
    claims = decode_token(login_keyring(), token, audience=ACCESS_AUDIENCE)
    user = repository.get_user(session, str(claims["sub"]))
    if user is None or user.disabled_at is not None:
        raise NotAuthenticated("account not found or disabled", code="account_disabled")
    return Principal(user.id, user.role, user.studio_id, claims.get("dev"))
