"""The request and response schemas of `api/routes/boxoffice.py`."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel, Field


class FxLoadRead(BaseModel):
    rates: int
    first_day: date | None
    last_day: date | None
    currencies: list[str]


class RevenueShareWrite(BaseModel):
    studio_share_percent: Decimal = Field(
        ge=0, le=100, description="Studio's share of net, e.g. 70 or 62.5"
    )
    territory: str | None = Field(default=None, description="Only for this territory; omit for all")


class RevenueShareRead(BaseModel):
    title_id: str
    territory: str | None
    studio_share_percent: Decimal


class RollupRead(BaseModel):
    day: date
    rows: int


class ReportFormat(StrEnum):
    json = "json"
    csv = "csv"
    xlsx = "xlsx"
