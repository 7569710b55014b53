"""Views of the catalog that the viewer's and the studio's routes share."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from catalog.models import Collection, Title, TrackKind


def title_facts(title: Title) -> dict[str, Any]:
    """The fields every view of a title shares, the viewer's and the studio's."""
    return {
        "original_title": title.original_title,
        "original_language": title.original_language,
        "runtime_seconds": title.runtime_seconds,
        "genres": [g.genre for g in title.genres],
        "audio_languages": [t.language for t in title.tracks if t.kind is TrackKind.audio],
        "subtitle_languages": [t.language for t in title.tracks if t.kind is TrackKind.subtitle],
        "trailer_url": title.trailer_url,
        "trailer_key": title.trailer_key,
    }


class CollectionRead(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "0a1b2c3d4e5f60718293a4b5c6d7e8f9",
                    "slug": "midnight-section",
                    "name": "Midnight Section",
                    "description": "Films after dark",
                    "starts_at": "2026-03-01T00:00:00Z",
                    "ends_at": "2026-03-15T00:00:00Z",
                }
            ]
        }
    )

    id: str
    slug: str
    name: str
    description: str | None
    starts_at: datetime | None
    ends_at: datetime | None


def collection_read(collection: Collection) -> CollectionRead:
    return CollectionRead(
        id=collection.id,
        slug=collection.slug,
        name=collection.name,
        description=collection.description,
        starts_at=collection.starts_at,
        ends_at=collection.ends_at,
    )
