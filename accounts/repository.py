from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, exists, select, update
from sqlalchemy.orm import Session

from accounts.models import ExternalIdentity, LoginAttempt, RefreshToken, Studio, User


def get_user(session: Session, user_id: str) -> User | None:
    return session.get(User, user_id)


def get_user_by_email(session: Session, email: str) -> User | None:
    return session.scalar(select(User).where(User.email == email))


def get_studio(session: Session, studio_id: str) -> Studio | None:
    return session.get(Studio, studio_id)


def get_studio_by_name(session: Session, name: str) -> Studio | None:
    return session.scalar(select(Studio).where(Studio.name == name))


def refresh_token_by_hash(session: Session, token_hash: str) -> RefreshToken | None:
    # FOR UPDATE: two refreshes racing with one token serialize here, so exactly one
    # rotates and the other sees it spent (SQLite serializes writers at BEGIN anyway).
    return session.scalar(
        select(RefreshToken).where(RefreshToken.token_hash == token_hash).with_for_update()
    )


def revoke_family(session: Session, family_id: str, at: datetime) -> None:
    session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=at)
        .execution_options(synchronize_session=False)
    )


def family_revoked(session: Session, family_id: str) -> bool:
    return bool(
        session.scalar(
            select(
                exists().where(
                    RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_not(None)
                )
            )
        )
    )


def device_signed_in_before(session: Session, user_id: str, device_id: str) -> bool:
    """Whether this device ever started a sign-in session of this user (any refresh token)."""
    return bool(
        session.scalar(
            select(
                exists().where(RefreshToken.user_id == user_id, RefreshToken.device_id == device_id)
            )
        )
    )


def recent_failures(session: Session, email: str, ip: str, since: datetime) -> list[datetime]:
    return list(
        session.scalars(
            select(LoginAttempt.at)
            .where(LoginAttempt.email == email, LoginAttempt.ip == ip, LoginAttempt.at > since)
            .order_by(LoginAttempt.at)
        )
    )


def record_failure(
    session: Session, email: str, ip: str, at: datetime, keep_after: datetime
) -> None:
    session.execute(
        delete(LoginAttempt).where(
            LoginAttempt.email == email, LoginAttempt.ip == ip, LoginAttempt.at <= keep_after
        )
    )
    session.add(LoginAttempt(email=email, ip=ip, at=at))


def clear_failures(session: Session, email: str, ip: str) -> None:
    session.execute(delete(LoginAttempt).where(LoginAttempt.email == email, LoginAttempt.ip == ip))


def external_identity(session: Session, provider: str, subject: str) -> ExternalIdentity | None:
    return session.scalar(
        select(ExternalIdentity).where(
            ExternalIdentity.provider == provider, ExternalIdentity.subject == subject
        )
    )
