"""Schemas of the screener routes (studio invitations, buyers' screeners)."""

from __future__ import annotations

from datetime import datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class ScreenerInvite(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str = Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")
    expires_at: AwareDatetime = Field(description="Within a year from now")
    view_limit: int = Field(ge=1, le=100, description="Screener views the buyer may start")


class ScreenerInvitationRead(BaseModel):
    """A studio's view of one invitation and its views (never box office)."""

    id: str
    title_id: str
    email: str
    expires_at: datetime
    view_limit: int
    redeemed_at: datetime | None
    revoked_at: datetime | None
    views: int = Field(description="Screener views counted (sessions that played)")
    watched_seconds: float


class ScreenerInvited(ScreenerInvitationRead):
    """The new invitation with its single-use code and link: shown once, also e-mailed."""

    code: str
    link: str


class ScreenerRedeem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=20, max_length=100, pattern=r"^[A-Za-z0-9_-]+$")


class BuyerScreenerRead(BaseModel):
    """A buyer's screener: what they may watch, until when, how many views are left."""

    id: str
    title_id: str
    expires_at: datetime
    view_limit: int
    views_used: int


class ScreenerPlaybackStart(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"screener_id": "5f0c3a9e2b7d4c1e8a6f0b3d9c2e7a41"}]},
    )

    screener_id: str = Field(pattern=r"^[0-9a-f]{32}$", description="One of my screeners")
