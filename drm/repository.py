from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from drm.models import ContentKey


def get_by_key_id(session: Session, key_id: str) -> ContentKey | None:
    return session.scalar(select(ContentKey).where(ContentKey.key_id == key_id))


def get_for_release(session: Session, release_id: str) -> ContentKey | None:
    return session.scalar(
        select(ContentKey)
        .where(ContentKey.release_id == release_id)
        .order_by(ContentKey.created_at.desc())
    )


def not_wrapped_by(session: Session, kek_ref: str, limit: int) -> Sequence[ContentKey]:
    return session.scalars(
        select(ContentKey).where(ContentKey.kek_ref != kek_ref).limit(limit)
    ).all()
