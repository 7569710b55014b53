from __future__ import annotations

from sqlalchemy.orm import Session

from catalog import service
from core.jobs import job


@job(service.INDEX_JOB, lease_seconds=120)
def index_title(session: Session, title_id: str) -> None:
    service.index_title(session, title_id)
