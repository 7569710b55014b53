"""What support sends and reads about accounts and studios."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from accounts.models import AccountActionKind, Role


class AccountDecision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Annotated[str, StringConstraints(strip_whitespace=True)] = Field(
        min_length=3, max_length=500, description="Why, in words other staff will read later"
    )


class AccountActionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    kind: AccountActionKind
    actor_id: str = Field(description="The admin who decided")
    reason: str
    created_at: datetime


class UserRead(BaseModel):
    """An account as the admin who created it reads it back."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    email: str
    role: Role
    studio_id: str | None
    display_name: str | None
    created_at: datetime


class AccountSummary(UserRead):
    """An account as support sees it: who, which role, and whether it may sign in."""

    email_verified_at: datetime | None
    disabled_at: datetime | None
    deleted_at: datetime | None


class AccountDetail(AccountSummary):
    actions: list[AccountActionRead] = Field(description="Disable/enable decisions, newest first")


class AccountPage(BaseModel):
    items: list[AccountSummary]
    total: int
    offset: int
    limit: int


class StudioSummary(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    webhook_url: str | None
    created_at: datetime


class StudioPage(BaseModel):
    items: list[StudioSummary]
    total: int
    offset: int
    limit: int
