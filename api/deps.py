"""Request dependencies: the request's transaction, the caller, the caller's country."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from accounts.models import Role
from accounts.service import Principal, principal_from_token
from core.db import session_factory
from core.errors import NotAuthenticated
from core.geo import request_country
from core.settings import get_settings


def get_db() -> Iterator[Session]:
    """The request's one transaction: commit after the endpoint returns, before the response
    is sent (scope="function"), so a failed commit is a 500 and never a 200 already sent."""
    session = session_factory()()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


DbSession = Annotated[Session, Depends(get_db, scope="function")]

_bearer = HTTPBearer(auto_error=False, description="Access token from /v1/auth/login")


def get_principal(
    session: DbSession,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise NotAuthenticated(
            "send 'Authorization: Bearer <access token>'", code="not_authenticated"
        )
    return principal_from_token(session, credentials.credentials)


CurrentUser = Annotated[Principal, Depends(get_principal)]


def require_role(*roles: Role) -> object:
    def check(principal: CurrentUser) -> Principal:
        principal.require(*roles)
        return principal

    return Depends(check)


StudioUser = Annotated[Principal, require_role(Role.studio)]
FinanceUser = Annotated[Principal, require_role(Role.finance)]
AdminUser = Annotated[Principal, require_role(Role.admin)]


class Page:
    """Offset pagination shared by every list endpoint."""

    def __init__(
        self,
        offset: Annotated[int, Query(ge=0, le=1_000_000, description="Items to skip")] = 0,
        limit: Annotated[int, Query(ge=1, le=200, description="Items per page")] = 50,
    ) -> None:
        self.offset = offset
        self.limit = limit


PageParams = Annotated[Page, Depends()]


def get_request_country(request: Request) -> str | None:
    """The caller's country (ISO 3166-1 alpha-2), or None when it cannot be told."""
    peer = request.client.host if request.client else None
    headers = {k.lower(): v for k, v in request.headers.items()}
    return request_country(peer, headers, get_settings())


RequestCountry = Annotated[str | None, Depends(get_request_country)]
