from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from accounts.models import Studio, User


def get_user(session: Session, user_id: str) -> User | None:
    return session.get(User, user_id)


def get_user_by_email(session: Session, email: str) -> User | None:
    return session.scalar(select(User).where(User.email == email))


def get_studio(session: Session, studio_id: str) -> Studio | None:
    return session.get(Studio, studio_id)


def get_studio_by_name(session: Session, name: str) -> Studio | None:
    return session.scalar(select(Studio).where(Studio.name == name))
