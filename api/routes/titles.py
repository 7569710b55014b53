"""Viewer catalog routes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict

from api.deps import DbSession, PageParams
from api.problems import PROBLEM_RESPONSES
from catalog import service as catalog

router = APIRouter(prefix="/v1/titles", tags=["catalog"], responses=PROBLEM_RESPONSES)


class TitleRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    slug: str
    original_title: str
    original_language: str
    runtime_seconds: int | None
    created_at: datetime


class TitlePage(BaseModel):
    items: list[TitleRead]
    total: int
    offset: int
    limit: int


@router.get("", summary="List titles", response_model=TitlePage)
def list_titles(
    session: DbSession,
    page: PageParams,
    q: Annotated[str | None, Query(max_length=200, description="Search text")] = None,
) -> TitlePage:
    rows, total = catalog.list_studio_titles(
        session, None, offset=page.offset, limit=page.limit, filters=catalog.CatalogQuery(query=q)
    )
    return TitlePage(
        items=[TitleRead.model_validate(t) for t in rows],
        total=total,
        offset=page.offset,
        limit=page.limit,
    )


@router.get("/{title_id}", summary="One title", response_model=TitleRead)
def get_title(session: DbSession, title_id: str) -> TitleRead:
    return TitleRead.model_validate(catalog.get_title(session, title_id))
