"""Support's side of accounts: finding people and studios, and disabling an account (or
enabling it again) with the reason on record.

A disabled account cannot sign in or refresh, and every access token it holds stops at its
next request (``principal_from_token`` reads the account each time); its refresh tokens are
revoked too, so enabling it again does not bring old sessions back.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from accounts import repository
from accounts.models import AccountAction, AccountActionKind, Studio, User
from core.db import utcnow
from core.errors import Conflict, NotFound


def find_users(session: Session, q: str, offset: int, limit: int) -> tuple[list[User], int]:
    return repository.find_users(session, q.strip(), offset, limit)


def find_studios(session: Session, q: str, offset: int, limit: int) -> tuple[list[Studio], int]:
    return repository.find_studios(session, q.strip(), offset, limit)


def get_account(session: Session, user_id: str) -> User:
    user = repository.get_user(session, user_id)
    if user is None:
        raise NotFound("no such account", code="user_not_found")
    return user


def account_actions(session: Session, user_id: str) -> list[AccountAction]:
    return repository.account_actions(session, get_account(session, user_id).id)


def set_disabled(
    session: Session, *, user_id: str, actor_id: str, disabled: bool, reason: str
) -> User:
    """Disable (or enable again) an account. Asking for the state it is already in changes
    nothing and records nothing, so a retried request is harmless."""
    user = repository.get_user_for_update(session, user_id)
    if user is None:
        raise NotFound("no such account", code="user_not_found")
    if user.deleted_at is not None:
        raise Conflict("the account was deleted by its owner", code="account_deleted")
    if user.id == actor_id:
        # An admin who locks themselves out needs another admin to get back in.
        raise Conflict("you cannot disable or enable your own account", code="own_account")
    if (user.disabled_at is not None) == disabled:
        return user
    now = utcnow()
    if disabled:
        user.disabled_at = now
        repository.revoke_all_sessions(session, user.id, now)
    else:
        user.disabled_at = None
    session.add(
        AccountAction(
            user_id=user.id,
            actor_id=actor_id,
            kind=AccountActionKind.disable if disabled else AccountActionKind.enable,
            reason=reason.strip(),
            created_at=now,
        )
    )
    session.flush()
    return user
