"""The request and response schemas of `api/routes/studio_catalog.py`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from api.catalog_schemas import COLLECTION_EXAMPLE
from api.catalog_schemas import CollectionRead as ViewerCollectionRead
from catalog.models import TerritoryMode

Text300 = Annotated[str, Field(min_length=1, max_length=300)]
Url = Annotated[str, Field(max_length=2000, pattern=r"^https?://\S+$")]
Key = Annotated[str, Field(max_length=500, pattern=r"^[A-Za-z0-9._/-]+$")]
CountryCode = Annotated[str, Field(min_length=2, max_length=2, examples=["US"])]
CurrencyCode = Annotated[str, Field(min_length=3, max_length=3, examples=["USD"])]
# Seconds; a week bounds every film (and keeps the value inside the database's integer).
Runtime = Annotated[int, Field(le=7 * 24 * 3600, description="Seconds, at most a week")]
# --- schemas --------------------------------------------------------------------------------


class TitleCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    slug: str = Field(max_length=120, examples=["the-lantern-keeper"])
    original_title: Text300
    original_language: str = Field(max_length=35, examples=["zh-Hant"])
    runtime_seconds: Runtime | None = None
    genres: list[str] = Field(default_factory=list, max_length=20)
    trailer_url: Url | None = None
    trailer_key: Key | None = None
    studio_id: str | None = Field(default=None, description="Admins only: the owning studio")


class TitleUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    original_title: Text300 | None = None
    original_language: str | None = Field(default=None, max_length=35)
    runtime_seconds: Runtime | None = None
    genres: list[str] | None = Field(default=None, max_length=20)
    trailer_url: Url | None = None
    trailer_key: Key | None = None
    clear_trailer: bool = False


class LocalizationPut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Text300
    synopsis: str | None = Field(default=None, max_length=10_000)
    tagline: str | None = Field(default=None, max_length=500)
    artwork_url: Url | None = None
    artwork_key: Key | None = None


class LocalizationRead(LocalizationPut):
    model_config = ConfigDict(from_attributes=True)

    locale: str


class PriceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    country: CountryCode
    amount_minor: int = Field(description="Minor units (cents); must be above zero")
    currency: CurrencyCode


class PricePut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount_minor: int = Field(description="Minor units (cents); must be above zero")
    currency: CurrencyCode


class WindowCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    territory_mode: TerritoryMode = Field(
        description="listed: exactly `countries`; worldwide_except: all but `countries`"
    )
    countries: list[CountryCode] = Field(default_factory=list, max_length=300)
    starts_at: AwareDatetime
    ends_at: AwareDatetime = Field(description="Exclusive: the window is [starts_at, ends_at)")
    prices: list[PriceIn] = Field(default_factory=list, max_length=300)


class WindowUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    territory_mode: TerritoryMode | None = None
    countries: list[CountryCode] | None = Field(default=None, max_length=300)
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None


class WindowPriceRead(BaseModel):
    country: str
    amount_minor: int
    currency: str


class WindowRead(BaseModel):
    id: str
    territory_mode: TerritoryMode
    countries: list[str]
    starts_at: datetime
    ends_at: datetime
    prices: list[WindowPriceRead]


class StudioTitleRead(BaseModel):
    id: str
    studio_id: str
    slug: str
    original_title: str
    original_language: str
    runtime_seconds: int | None
    genres: list[str]
    audio_languages: list[str]
    subtitle_languages: list[str]
    trailer_url: str | None
    trailer_key: str | None
    created_at: datetime
    localizations: list[LocalizationRead]
    windows: list[WindowRead]


class StudioTitlePage(BaseModel):
    items: list[StudioTitleRead]
    total: int
    offset: int
    limit: int


class CollectionWrite(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Text300
    description: str | None = Field(default=None, max_length=10_000)
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None
    territory_mode: TerritoryMode | None = Field(
        default=None, description="None: no territory restriction"
    )
    countries: list[CountryCode] = Field(default_factory=list, max_length=300)


class CollectionCreate(CollectionWrite):
    slug: str = Field(max_length=120, examples=["online-panorama"])


class MemberPut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    position: int = Field(default=0, ge=0, le=100_000)


class StudioCollectionRead(ViewerCollectionRead):
    """What viewers see of a collection, plus how it restricts and what it holds."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                COLLECTION_EXAMPLE
                | {
                    "territory_mode": "listed",
                    "countries": ["US", "CA"],
                    "restricts": True,
                    "title_ids": ["7d0c5a4e2b8f4a61b3f09c2d8e1a6b55"],
                }
            ]
        }
    )

    territory_mode: TerritoryMode | None
    countries: list[str]
    restricts: bool
    title_ids: list[str]
