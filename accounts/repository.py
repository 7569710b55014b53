from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, exists, func, or_, select, update
from sqlalchemy.orm import Session

from accounts.models import (
    AccountAction,
    AccountCode,
    AccountMail,
    CodePurpose,
    ExternalIdentity,
    LoginAttempt,
    RefreshToken,
    Studio,
    User,
)
from core.db import page_of


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


# --- one-time codes and account mail ---------------------------------------------------------


def codes_for(
    session: Session, user_id: str, purpose: CodePurpose, since: datetime
) -> list[AccountCode]:
    """The account's codes of one purpose made after ``since`` (live, spent and expired),
    newest first, locked: two checks of one code serialize, so it is spent once."""
    return list(
        session.scalars(
            select(AccountCode)
            .where(
                AccountCode.user_id == user_id,
                AccountCode.purpose == purpose,
                AccountCode.created_at > since,
            )
            .order_by(AccountCode.created_at.desc())
            .with_for_update()
        )
    )


def spend_codes(session: Session, user_id: str, purpose: CodePurpose, at: datetime) -> None:
    session.execute(
        update(AccountCode)
        .where(
            AccountCode.user_id == user_id,
            AccountCode.purpose == purpose,
            AccountCode.used_at.is_(None),
        )
        .values(used_at=at)
        .execution_options(synchronize_session=False)
    )


def get_code(session: Session, code_id: str) -> AccountCode | None:
    return session.get(AccountCode, code_id)


def get_mail(session: Session, mail_id: str) -> AccountMail | None:
    return session.get(AccountMail, mail_id, with_for_update=True)


def mails_of(session: Session, user_id: str) -> list[AccountMail]:
    return list(
        session.scalars(
            select(AccountMail)
            .where(AccountMail.user_id == user_id)
            .order_by(AccountMail.created_at)
        )
    )


def identities_of(session: Session, user_id: str) -> list[ExternalIdentity]:
    return list(
        session.scalars(
            select(ExternalIdentity)
            .where(ExternalIdentity.user_id == user_id)
            .order_by(ExternalIdentity.created_at)
        )
    )


def refresh_tokens_of(session: Session, user_id: str) -> list[RefreshToken]:
    return list(
        session.scalars(
            select(RefreshToken)
            .where(RefreshToken.user_id == user_id)
            .order_by(RefreshToken.created_at)
        )
    )


def family_started_at(session: Session, family_id: str) -> datetime | None:
    """When the sign-in that began this session family happened (its first token)."""
    return session.scalar(
        select(RefreshToken.created_at)
        .where(RefreshToken.family_id == family_id)
        .order_by(RefreshToken.created_at)
        .limit(1)
    )


def ever_signed_in(session: Session, user_id: str) -> bool:
    return bool(
        session.scalar(
            select(
                exists().where(RefreshToken.user_id == user_id)
                | exists().where(ExternalIdentity.user_id == user_id)
            )
        )
    )


def delete_user(session: Session, user: User) -> None:
    session.delete(user)
    session.flush()


def forget_person(session: Session, user_id: str, email: str) -> None:
    """Everything that ties an account to a person, except the user row itself (the caller
    scrubs it): sign-in sessions, provider links, codes, mails, failed attempts."""
    session.execute(delete(RefreshToken).where(RefreshToken.user_id == user_id))
    session.execute(delete(ExternalIdentity).where(ExternalIdentity.user_id == user_id))
    session.execute(delete(AccountMail).where(AccountMail.user_id == user_id))
    session.execute(delete(AccountCode).where(AccountCode.user_id == user_id))
    session.execute(delete(LoginAttempt).where(LoginAttempt.email == email))


# --- support look-ups and account decisions --------------------------------------------------


def find_users(session: Session, q: str, offset: int, limit: int) -> tuple[list[User], int]:
    """Accounts whose id is ``q`` or whose address starts with it (all when ``q`` is empty),
    by address; and how many there are in all."""
    stmt = select(User)
    if q:
        stmt = stmt.where(or_(User.id == q, User.email.startswith(q.lower(), autoescape=True)))
    return page_of(session, stmt, (User.email, User.id), offset, limit)


def find_studios(session: Session, q: str, offset: int, limit: int) -> tuple[list[Studio], int]:
    """Studios whose id is ``q`` or whose name starts with it, ignoring case (all when
    ``q`` is empty), by name; and how many there are in all."""
    stmt = select(Studio)
    if q:
        stmt = stmt.where(
            or_(
                Studio.id == q,
                func.lower(Studio.name).startswith(q.lower(), autoescape=True),
            )
        )
    return page_of(session, stmt, (Studio.name, Studio.id), offset, limit)


def get_user_for_update(session: Session, user_id: str) -> User | None:
    # Two admins deciding about one account at once serialise here, so the audit trail
    # and the account's state tell the same story.
    return session.scalar(select(User).where(User.id == user_id).with_for_update())


def revoke_all_sessions(session: Session, user_id: str, at: datetime) -> None:
    session.execute(
        update(RefreshToken)
        .where(RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=at)
        .execution_options(synchronize_session=False)
    )


def account_actions(session: Session, user_id: str) -> list[AccountAction]:
    return list(
        session.scalars(
            select(AccountAction)
            .where(AccountAction.user_id == user_id)
            .order_by(AccountAction.created_at.desc(), AccountAction.id.desc())
        )
    )
