"""Support and admin: finding accounts and studios, disabling an account (and enabling it
again) with the reason on record, and what failed in the background.

Finance may look people and studios up (to answer a refund request); deciding about an
account and reading the failures is for admins."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from accounts import support
from accounts.schemas import (
    AccountActionRead,
    AccountDecision,
    AccountDetail,
    AccountPage,
    AccountSummary,
    StudioPage,
    StudioSummary,
)
from api.contract import problems
from api.deps import AdminUser, DbSession, FinanceUser, PageParams, ReadDb
from api.support_schemas import (
    FailedJobPage,
    FailedJobRead,
    FailedReleasePage,
    FailedReleaseRead,
)
from catalog import failures
from catalog.models import Release
from core import outbox
from core.db import utcnow
from tickets import playback
from transcoding.steps import Step

router = APIRouter(prefix="/v1/admin", tags=["admin"])

SearchQ = Annotated[
    str,
    # No NUL: PostgreSQL text cannot hold one (psycopg refuses it), so it would be a 500.
    Query(
        max_length=320,
        pattern=r"^[^\x00]*$",
        description="An id, or the start of an e-mail address / a name",
    ),
]
UserId = Annotated[str, Path(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9]+$")]
_STEPS = {s.value for s in Step}


@router.get("/users", summary="Find accounts by id or e-mail prefix", response_model=AccountPage)
def find_users(
    session: ReadDb, staff: FinanceUser, page: PageParams, q: SearchQ = ""
) -> AccountPage:
    """Accounts whose id is `q` or whose e-mail address starts with it, by address."""
    rows, total = support.find_users(session, q, page.offset, page.limit)
    return AccountPage(
        items=[AccountSummary.model_validate(u) for u in rows],
        total=total,
        offset=page.offset,
        limit=page.limit,
    )


def _detail(session: ReadDb | DbSession, user_id: str) -> AccountDetail:
    user = support.get_account(session, user_id)
    return AccountDetail.model_validate(
        {
            **AccountSummary.model_validate(user).model_dump(),
            "actions": [
                AccountActionRead.model_validate(a)
                for a in support.account_actions(session, user.id)
            ],
        }
    )


@router.get(
    "/users/{user_id}",
    summary="One account and the decisions made about it",
    response_model=AccountDetail,
    responses=problems("user_not_found"),
)
def get_user(session: ReadDb, staff: FinanceUser, user_id: UserId) -> AccountDetail:
    """The account, and who disabled or enabled it, when and why."""
    return _detail(session, user_id)


@router.post(
    "/users/{user_id}/disable",
    summary="Disable an account: no sign-in, no refresh, its tokens stop working",
    response_model=AccountDetail,
    responses=problems("account_deleted", "own_account", "user_not_found"),
)
def disable_user(
    session: DbSession, admin: AdminUser, user_id: UserId, body: AccountDecision
) -> AccountDetail:
    """Signs the account out everywhere, ends its playback, and records who did it and why. Repeating it changes nothing."""
    user = support.set_disabled(
        session, user_id=user_id, actor_id=admin.user_id, disabled=True, reason=body.reason
    )
    playback.end_viewer_sessions(session, user.id, utcnow())
    return _detail(session, user_id)


@router.post(
    "/users/{user_id}/enable",
    summary="Enable a disabled account again",
    response_model=AccountDetail,
    responses=problems("account_deleted", "own_account", "user_not_found"),
)
def enable_user(
    session: DbSession, admin: AdminUser, user_id: UserId, body: AccountDecision
) -> AccountDetail:
    """The owner may sign in again (old sessions stay ended). Repeating it changes nothing."""
    support.set_disabled(
        session, user_id=user_id, actor_id=admin.user_id, disabled=False, reason=body.reason
    )
    return _detail(session, user_id)


@router.get("/studios", summary="Find studios by id or name prefix", response_model=StudioPage)
def find_studios(
    session: ReadDb, staff: FinanceUser, page: PageParams, q: SearchQ = ""
) -> StudioPage:
    """Studios whose id is `q` or whose name starts with it (any case), by name."""
    rows, total = support.find_studios(session, q, page.offset, page.limit)
    return StudioPage(
        items=[StudioSummary.model_validate(s) for s in rows],
        total=total,
        offset=page.offset,
        limit=page.limit,
    )


def _failed_release(release: Release) -> FailedReleaseRead:
    # Pipeline codes are "<step>_failed" or "<step>_timeout" (transcoding/steps.py).
    prefix = (release.failure_code or "").rsplit("_", 1)[0]
    return FailedReleaseRead(
        id=release.id,
        title_id=release.title_id,
        studio_id=release.studio_id,
        label=release.label,
        attempt=release.attempt,
        failure_code=release.failure_code,
        failure_reason=release.failure_reason,
        step=prefix if prefix in _STEPS else None,
        status_changed_at=release.status_changed_at,
        retry_path=f"/v1/studio/releases/{release.id}/transcode",
    )


@router.get(
    "/failed-releases",
    summary="Releases whose transcoding failed, with the code, reason and step",
    response_model=FailedReleasePage,
)
def failed_releases(session: ReadDb, admin: AdminUser, page: PageParams) -> FailedReleasePage:
    """Most recent failure first; `retry_path` starts the transcode again."""
    rows, total = failures.failed_releases(session, page.offset, page.limit)
    return FailedReleasePage(
        items=[_failed_release(r) for r in rows],
        total=total,
        offset=page.offset,
        limit=page.limit,
    )


@router.get(
    "/failed-jobs",
    summary="Background jobs that gave up, with their last error",
    response_model=FailedJobPage,
)
def failed_jobs(session: ReadDb, admin: AdminUser, page: PageParams) -> FailedJobPage:
    """Jobs out of attempts or failed permanently, most recent first."""
    rows, total = outbox.failed_jobs(session, page.offset, page.limit)
    return FailedJobPage(
        items=[FailedJobRead.model_validate(j) for j in rows],
        total=total,
        offset=page.offset,
        limit=page.limit,
    )
