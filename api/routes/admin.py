"""Admin: studios and staff accounts."""

from __future__ import annotations

from fastapi import APIRouter

from accounts import service as accounts
from accounts.schemas import UserRead
from api.admin_schemas import (
    StudioCreate,
    StudioRead,
    UserCreate,
)
from api.contract import problems
from api.deps import AdminUser, DbSession

router = APIRouter(prefix="/v1/admin", tags=["admin"])


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
