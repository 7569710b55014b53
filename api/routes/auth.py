"""Sign-up and sign-in: email + password, Apple, Google; refresh and sign-out."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from accounts import service as accounts
from accounts.identity import Provider
from api.account_schemas import Accepted, Tokens
from api.auth_schemas import (
    Login,
    Logout,
    Me,
    ProviderSignIn,
    Refresh,
    SignUp,
)
from api.contract import PUBLIC, problems
from api.deps import ClientIp, CurrentUser, DbSession, MailLocale, ReadDb
from api.problems import committed_problem, problem_response

router = APIRouter(prefix="/v1", tags=["auth"])

DeviceHeader = Annotated[
    str | None,
    Header(
        alias="X-Device-Id",
        max_length=128,
        pattern=r"^[A-Za-z0-9._:-]+$",
        description="The app's device id; travels with the session (claim `dev`)",
    ),
]


def _no_store(response: Response) -> None:
    response.headers["Cache-Control"] = "no-store"


@router.post(
    "/auth/signup",
    summary="Create a viewer account with email and password",
    description=(
        "Answers 202 and the same body whether the address is new or already has an account, "
        "after the same work, so sign-up does not tell who has an account. A new address gets "
        "a six-digit code by mail (in the caller's language: `lang` or Accept-Language); "
        "confirm it with `/v1/account/email/verify`, which signs in. An address that already "
        "has a confirmed account gets a mail saying someone tried to sign up with it, and "
        "nothing changes; one whose account was never confirmed gets a new code bound to this "
        "password. Passwords: 10 to 256 characters, not only spaces, not on the list of common "
        "passwords (`password_common`). Limited per client address and globally "
        "(429 `signup_rate_limited`), and mails per address (429 `mail_rate_limited`), with "
        "Retry-After."
    ),
    status_code=202,
    response_model=Accepted,
    responses=problems(
        "invalid_email",
        "password_blank",
        "password_common",
        "password_too_long",
        "password_too_short",
        "mail_rate_limited",
        "signup_rate_limited",
        "mail_rejected",
    ),
    openapi_extra={"security": PUBLIC},
)
def sign_up(
    session: DbSession,
    request: Request,
    body: SignUp,
    ip: ClientIp,
    locale: MailLocale,
    response: Response,
    device: DeviceHeader = None,
) -> Accepted | JSONResponse:
    _no_store(response)
    try:
        accounts.sign_up(
            session,
            body.email,
            body.password,
            ip,
            device or body.device_id,
            body.display_name,
            locale,
        )
    except accounts.SignUpRateLimited as exc:
        return _rate_limited(request, exc)
    return Accepted(detail="enter the code we mailed to this address to continue")


def _rate_limited(request: Request, exc: accounts.LoginRateLimited) -> JSONResponse:
    limited = problem_response(exc.status, exc.code, exc.title, exc.detail, request)
    limited.headers["Retry-After"] = str(exc.retry_after)
    return limited


@router.post(
    "/auth/login",
    summary="Sign in with email and password",
    response_model=Tokens,
    description=(
        "Wrong email and wrong password answer the same (`invalid_credentials`). The right "
        "password for an account whose address was never confirmed answers 403 "
        "`email_not_verified` (only someone who knows the password learns it). Limits "
        "(429 with Retry-After): failed sign-ins per client address (`login_rate_limited`), "
        "per account and address, and, for devices that never signed in to the account, "
        "per account and overall (`login_throttled`: a device used before still gets in)."
    ),
    responses=problems(
        "invalid_credentials",
        "email_not_verified",
        "login_rate_limited",
        "login_throttled",
        "account_disabled",
    ),
    openapi_extra={"security": PUBLIC},
)
def login(
    session: DbSession,
    request: Request,
    body: Login,
    ip: ClientIp,
    response: Response,
    device: DeviceHeader = None,
) -> Tokens | JSONResponse:
    _no_store(response)
    try:
        pair = accounts.login(session, body.email, body.password, ip, device or body.device_id)
    except accounts.AuthFailure as exc:
        return committed_problem(request, exc)
    except accounts.LoginRateLimited as exc:
        return _rate_limited(request, exc)
    return Tokens.of(pair)


@router.post(
    "/auth/refresh",
    summary="Trade a refresh token for new tokens (rotation)",
    description=(
        "Each refresh token works once. Presenting one again ends the whole sign-in session "
        "(`refresh_token_reused`): every token of it stops working."
    ),
    response_model=Tokens,
    responses=problems(
        (401, "device_mismatch"),
        "invalid_refresh_token",
        "refresh_token_expired",
        "refresh_token_reused",
        "account_disabled",
        "session_revoked",
    ),
    openapi_extra={"security": PUBLIC},
)
def refresh(
    session: DbSession,
    request: Request,
    body: Refresh,
    response: Response,
    device: DeviceHeader = None,
) -> Tokens | JSONResponse:
    _no_store(response)
    try:
        pair = accounts.refresh(session, body.refresh_token, device or body.device_id)
    except accounts.AuthFailure as exc:
        return committed_problem(request, exc)
    return Tokens.of(pair)


@router.post(
    "/auth/logout",
    summary="End this sign-in session",
    status_code=204,
    openapi_extra={"security": PUBLIC},
)
def logout(session: DbSession, body: Logout) -> Response:
    """Revokes the refresh token family of this sign-in; access tokens already issued run out on their own."""
    accounts.logout(session, body.refresh_token)
    return Response(status_code=204)


def _sign_in_with(
    provider: Provider,
    session: Session,
    body: ProviderSignIn,
    response: Response,
    device: str | None,
) -> Tokens:
    _no_store(response)
    pair = accounts.sign_in_with(
        session, provider, body.id_token, device or body.device_id, body.nonce
    )
    return Tokens.of(pair)


@router.post(
    "/auth/apple",
    summary="Sign in with Apple (ID token)",
    response_model=Tokens,
    responses=problems(
        "id_token_expired",
        "invalid_id_token",
        "provider_sign_in_not_for_staff",
        "provider_not_configured",
        "identity_provider_unavailable",
        "account_disabled",
    ),
    openapi_extra={"security": PUBLIC},
)
def sign_in_with_apple(
    session: DbSession, body: ProviderSignIn, response: Response, device: DeviceHeader = None
) -> Tokens:
    """Verifies Apple's ID token (signature from Apple's keys, audience, expiry) and signs in the account bound to it, creating a viewer account on first sign-in."""
    return _sign_in_with(Provider.apple, session, body, response, device)


@router.post(
    "/auth/google",
    summary="Sign in with Google (ID token)",
    response_model=Tokens,
    responses=problems(
        "id_token_expired",
        "invalid_id_token",
        "provider_sign_in_not_for_staff",
        "provider_not_configured",
        "identity_provider_unavailable",
        "account_disabled",
    ),
    openapi_extra={"security": PUBLIC},
)
def sign_in_with_google(
    session: DbSession, body: ProviderSignIn, response: Response, device: DeviceHeader = None
) -> Tokens:
    """Verifies Google's ID token (signature from Google's keys, audience, expiry) and signs in the account bound to it, creating a viewer account on first sign-in."""
    return _sign_in_with(Provider.google, session, body, response, device)


@router.get("/me", summary="Who am I", response_model=Me)
def me(session: ReadDb, principal: CurrentUser) -> Me:
    """The account behind the access token: id, e-mail, role, studio."""
    user = accounts.get_user(session, principal.user_id)
    return Me(
        user_id=user.id,
        email=user.email,
        role=user.role.value,
        studio_id=user.studio_id,
        display_name=user.display_name,
        device_id=principal.device_id,
    )
