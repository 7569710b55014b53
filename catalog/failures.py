"""Releases that failed to transcode, for support: the code and reason the studio also sees."""

from __future__ import annotations

from sqlalchemy.orm import Session

from catalog import repository
from catalog.models import Release


def failed_releases(session: Session, offset: int, limit: int) -> tuple[list[Release], int]:
    return repository.failed_releases(session, offset, limit)
