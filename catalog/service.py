"""Catalog rules. Other packages call the catalog through this module."""

from __future__ import annotations

import re
from collections.abc import Sequence

from sqlalchemy.orm import Session

from catalog import repository
from catalog.models import Title
from catalog.search import fold
from core.db import utcnow
from core.errors import Conflict, InvalidInput, NotFound
from core.outbox import enqueue

INDEX_JOB = "catalog.title.index"
_SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


def create_title(
    session: Session,
    *,
    studio_id: str,
    slug: str,
    original_title: str,
    original_language: str,
    runtime_seconds: int | None = None,
) -> Title:
    if not _SLUG.match(slug):
        raise InvalidInput("slug must be lower-case words joined by '-'", code="invalid_slug")
    if repository.get_title_by_slug(session, slug) is not None:
        raise Conflict(f"slug {slug!r} is taken", code="slug_taken")
    title = Title(
        studio_id=studio_id,
        slug=slug,
        original_title=original_title,
        original_language=original_language,
        runtime_seconds=runtime_seconds,
    )
    session.add(title)
    session.flush()
    # Search text is derived in the background so that a burst of studio edits does not
    # slow their requests; the outbox guarantees the job exists iff the title does.
    enqueue(session, INDEX_JOB, title_id=title.id)
    return title


def get_title(session: Session, title_id: str) -> Title:
    title = repository.get_title(session, title_id)
    if title is None:
        raise NotFound("no such title", code="title_not_found")
    return title


def list_titles(
    session: Session, *, offset: int, limit: int, query: str | None = None
) -> tuple[Sequence[Title], int]:
    folded = fold(query) if query else None
    rows = repository.list_titles(session, offset=offset, limit=limit, query=folded)
    return rows, repository.count_titles(session, query=folded)


def index_title(session: Session, title_id: str) -> None:
    title = repository.get_title(session, title_id)
    if title is None:
        return  # deleted since; nothing to index
    title.search_text = fold(" ".join([title.original_title, title.slug.replace("-", " ")]))
    title.indexed_at = utcnow()
