"""Admin: studios and staff accounts."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from accounts import service as accounts
from accounts.models import Role
from accounts.schemas import UserRead
from api.contract import problems
from api.deps import AdminUser, DbSession

router = APIRouter(prefix="/v1/admin", tags=["admin"])


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


@router.post(
    "/studios",
    summary="Create a studio",
    status_code=201,
    response_model=StudioRead,
    responses=problems("name_empty", "studio_exists", "unsafe_url"),
)
def create_studio(session: DbSession, admin: AdminUser, body: StudioCreate) -> StudioRead:
    """A studio owns titles, releases and their box office."""
    return StudioRead.model_validate(
        accounts.create_studio(session, body.name.strip(), body.webhook_url)
    )


@router.post(
    "/users",
    summary="Create a user (studio, finance, admin or viewer)",
    status_code=201,
    response_model=UserRead,
    responses=problems(
        "email_taken",
        "invalid_email",
        "password_blank",
        "password_common",
        "password_too_long",
        "password_too_short",
        "studio_not_found",
        "studio_required",
    ),
)
def create_user(session: DbSession, admin: AdminUser, body: UserCreate) -> UserRead:
    """Studio users belong to one studio; finance and admin users to none."""
    return UserRead.model_validate(
        accounts.create_user(
            session, body.email, body.password, body.role, body.studio_id, body.display_name
        )
    )
