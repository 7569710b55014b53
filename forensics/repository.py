"""Forensics queries: the releases that carry a watermark, the sessions that played one."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog.models import Release
from tickets.models import PlaybackSession


class Candidate(NamedTuple):
    session_id: str
    ticket_id: str | None
    viewer_id: str
    started_at: datetime


def watermarked_releases(session: Session, release_id: str | None = None) -> list[Release]:
    query = select(Release).where(Release.hls_prefix.is_not(None))
    if release_id is not None:
        query = query.where(Release.id == release_id)
    found: Sequence[Release] = session.scalars(query).all()
    return [r for r in found if isinstance(r.outputs, dict) and _marked(r.outputs)]


def _marked(outputs: dict[str, Any]) -> bool:
    return bool((outputs.get("watermark") or {}).get("reference"))


def sessions_of(session: Session, release_id: str) -> list[Candidate]:
    """Every session ever issued for the release: any of them may have made the copy."""
    rows = session.execute(
        select(
            PlaybackSession.id,
            PlaybackSession.ticket_id,
            PlaybackSession.viewer_id,
            PlaybackSession.started_at,
        ).where(PlaybackSession.release_id == release_id)
    ).all()
    return [Candidate(r[0], r[1], r[2], r[3]) for r in rows]
