"""Views of the catalog that the viewer's and the studio's routes share."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from catalog.models import Collection, Title, TrackKind

# The examples the OpenAPI document shows, one of each kind (pages and the studio's view
# reuse them).
PRICE_EXAMPLE: dict[str, Any] = {
    "amount_minor": 1299,
    "currency": "USD",
    "country": "US",
    "available_until": "2026-06-30T00:00:00Z",
}
TITLE_EXAMPLE: dict[str, Any] = {
    "id": "7d0c5a4e2b8f4a61b3f09c2d8e1a6b55",
    "slug": "lanterns",
    "locale": "fr",
    "name": "Lanternes",
    "synopsis": "Une nuit, un port, des lanternes.",
    "tagline": None,
    "artwork_url": "https://cdn.example.com/posters/lanterns-fr.jpg",
    "artwork_key": None,
    "original_title": "Lanterns",
    "original_language": "en",
    "runtime_seconds": 5820,
    "genres": ["drama"],
    "audio_languages": ["en", "de"],
    "subtitle_languages": ["en", "fr"],
    "trailer_url": None,
    "trailer_key": None,
    "price": PRICE_EXAMPLE,
    "playable": True,
}
COLLECTION_EXAMPLE: dict[str, Any] = {
    "id": "0a1b2c3d4e5f60718293a4b5c6d7e8f9",
    "slug": "midnight-section",
    "name": "Midnight Section",
    "description": "Films after dark",
    "starts_at": "2026-03-01T00:00:00Z",
    "ends_at": "2026-03-15T00:00:00Z",
}


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
    model_config = ConfigDict(json_schema_extra={"examples": [COLLECTION_EXAMPLE]})

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


class PriceRead(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [PRICE_EXAMPLE]})

    amount_minor: int = Field(description="Price in minor units of the currency (cents)")
    currency: str = Field(description="ISO 4217")
    country: str = Field(description="ISO 3166-1 alpha-2 country the price applies in")
    available_until: datetime = Field(description="When this offer ends (UTC)")


class TitleRead(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [TITLE_EXAMPLE]})

    id: str
    slug: str
    locale: str = Field(description="BCP 47 locale of name/synopsis/tagline/artwork")
    name: str
    synopsis: str | None
    tagline: str | None
    artwork_url: str | None
    artwork_key: str | None
    original_title: str
    original_language: str
    runtime_seconds: int | None
    genres: list[str]
    audio_languages: list[str]
    subtitle_languages: list[str]
    trailer_url: str | None = Field(description="The free trailer, when a public URL is set")
    trailer_key: str | None = Field(description="The free trailer's storage key, if stored")
    price: PriceRead
    playable: bool = Field(
        description="A release is ready to watch. False: listed but not yet for sale (coming "
        "soon); buying answers 409 `release_not_ready`.",
        examples=[True],
    )


class TitlePage(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [TITLE_EXAMPLE],
                    "total": 1,
                    "offset": 0,
                    "limit": 50,
                    "country": "US",
                }
            ]
        }
    )

    items: list[TitleRead]
    total: int
    offset: int
    limit: int
    country: str | None = Field(description="The country we placed you in (None: unknown)")
