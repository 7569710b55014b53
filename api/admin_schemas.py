"""The request and response schemas of `api/routes/admin.py`."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from accounts.models import Role


class StudioCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    webhook_url: str | None = Field(default=None, max_length=2000, pattern=r"^https?://\S+$")


class StudioRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    webhook_url: str | None
    created_at: datetime


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str = Field(max_length=320)
    password: str | None = Field(
        default=None,
        max_length=1024,
        description="None: the account signs in only via Apple/Google",
    )
    role: Role
    studio_id: str | None = Field(default=None, description="Required for role studio")
    display_name: str | None = Field(default=None, max_length=200)
