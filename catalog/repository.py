from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from catalog.models import Title


def get_title(session: Session, title_id: str) -> Title | None:
    return session.get(Title, title_id)


def get_title_by_slug(session: Session, slug: str) -> Title | None:
    return session.scalar(select(Title).where(Title.slug == slug))


def list_titles(session: Session, *, offset: int, limit: int, query: str | None) -> Sequence[Title]:
    stmt = select(Title).order_by(Title.created_at.desc(), Title.id).offset(offset).limit(limit)
    if query:
        stmt = stmt.where(Title.search_text.contains(query, autoescape=True))
    return session.scalars(stmt).all()


def count_titles(session: Session, *, query: str | None) -> int:
    stmt = select(func.count()).select_from(Title)
    if query:
        stmt = stmt.where(Title.search_text.contains(query, autoescape=True))
    return int(session.scalar(stmt) or 0)
